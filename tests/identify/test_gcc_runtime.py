"""libgcc and libstdc++ (the GCC runtime libraries) on real files: OpenWrt images, stripped and unstripped
Debian builds.  Only the library's own file is the component; programs that link it or whose .comment names
a compiler are not."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from cra_fw.identify import identify
from tests.conftest import ROOT, SHARED_FIRMWARE
from tests.identify.treectx import tree_context

EMUX = SHARED_FIRMWARE / "emux" / "DV-MIPSEL-rootfs-mipsel.tar.bz2"
LIBRARYBOX = SHARED_FIRMWARE / "librarybox" / "openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin"
DEB_CACHE = ROOT / "fixtures" / ".cache" / "debs"  # where fixtures/build.py keeps downloaded packages

HOST_LIBGCC = Path("/lib/x86_64-linux-gnu/libgcc_s.so.1")
HOST_LIBSTDCXX = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libstdc++.so.6.0.*[0-9]"))
HOST_CXX_PROGRAM = Path("/usr/bin/apt")  # links libstdc++.so.6 and libgcc_s.so.1
HOST_CXX_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/libapt-pkg.so.6.0")


def _only(components, name):
    found = [c for c in components if c.name == name]
    assert len(found) == 1, found
    return found[0]


def _copy(src: Path, root: Path, dest: str) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)


@pytest.mark.skipif(not EMUX.exists(), reason="emux rootfs (shared firmware) not present")
def test_openwrt_libgcc_is_one_component_from_its_package_and_its_symbol_versions(tmp_path):
    """EMUX DV-MIPSEL (OpenWrt Chaos Calmer, uClibc): libgcc_s.so.1 is stripped (no .comment); its
    GCC_3.0 node proves it and the opkg package `libgcc 4.6-linaro-1` gives the release."""
    with tarfile.open(EMUX) as tf:
        tf.extractall(tmp_path, filter="tar")
    root = tmp_path / "rootfs-mipsel"
    miniweb = (root / "usr/bin/miniweb").read_bytes()
    # the image's programs keep a .comment naming their compiler (two GCC lines): not libgcc
    assert b"GCC: (GNU) 3.3.2\x00GCC: (OpenWrt/Linaro GCC 4.6-2013.05 r49632) 4.6.4\x00" in miniweb
    result = identify(tree_context(root), use_cache=False)
    libgcc = _only(result.components, "libgcc")
    assert libgcc.version == "4.6-linaro"
    assert libgcc.files == ("rootfs:/lib/libgcc_s.so.1",)
    assert sorted((e.method, e.path, e.detail) for e in libgcc.evidence) == [
        ("package-db", "/usr/lib/opkg/status", "opkg: libgcc 4.6-linaro-1"),
        ("symbol", "/lib/libgcc_s.so.1", "GCC_3.0"),
    ]
    assert libgcc.cpe == "cpe:2.3:a:gnu:gcc:4.6-linaro:*:*:*:*:*:*:*"
    # the opkg package's own purl: full package version, the OpenWrt release, the source package
    assert libgcc.purl == (
        "pkg:opkg/openwrt/libgcc@4.6-linaro-1?arch=malta_mipsel&distro=openwrt-Chaos_Calmer&upstream=toolchain"
    )
    assert libgcc.licenses == ("GPL-3.0-or-later WITH GCC-exception-3.1",)
    assert len(libgcc.hashes["SHA-512"]) == 128
    # the compiler named in program .comment sections is no component; no libstdc++ in this image
    assert not [c for c in result.components if c.version in ("4.6.4", "3.3.2")]
    assert "libstdc++" not in {c.name for c in result.components}
    # programs that load libgcc_s depend on it
    deps = {d.ref: d.depends_on for d in result.dependencies}
    assert "libgcc@4.6-linaro" in deps["busybox@1.23.2"]


@pytest.mark.skipif(
    not LIBRARYBOX.exists() or shutil.which("unsquashfs") is None,
    reason="librarybox OpenWrt image (shared firmware) or unsquashfs not present",
)
def test_openwrt_12_09_libgcc_joins_its_package(tmp_path):
    data = LIBRARYBOX.read_bytes()
    subprocess.run(
        [
            "unsquashfs",
            "-q",
            "-n",
            "-no-xattrs",
            "-o",
            str(data.find(b"hsqs")),
            "-d",
            str(tmp_path / "root"),
            str(LIBRARYBOX),
        ],
        check=True,
        capture_output=True,
    )
    comps = identify(tree_context(tmp_path / "root"), use_cache=False).components
    libgcc = _only(comps, "libgcc")
    assert (libgcc.version, libgcc.files) == ("4.6-linaro", ("rootfs:/lib/libgcc_s.so.1",))
    assert {e.method for e in libgcc.evidence} == {"package-db", "symbol"}
    assert not [c for c in comps if c.name.startswith("libgcc") and c is not libgcc]


@pytest.fixture()
def stripped_debian_tree(tmp_path) -> Path:
    """This machine's Debian libgcc_s/libstdc++ (stripped: no .comment) and a C++ program and library
    that link them, laid out as a firmware rootfs."""
    if (
        not HOST_LIBGCC.exists()
        or not HOST_LIBSTDCXX
        or not HOST_CXX_PROGRAM.exists()
        or not HOST_CXX_LIBRARY.exists()
    ):
        pytest.skip("needs a Debian amd64 host with libgcc-s1, libstdc++6 and apt")
    root = tmp_path / "root"
    _copy(HOST_LIBGCC, root, str(HOST_LIBGCC))
    _copy(HOST_LIBSTDCXX[0], root, str(HOST_LIBSTDCXX[0]))
    (root / "usr/lib/x86_64-linux-gnu/libstdc++.so.6").symlink_to(HOST_LIBSTDCXX[0].name)
    _copy(HOST_CXX_PROGRAM, root, str(HOST_CXX_PROGRAM))
    _copy(HOST_CXX_LIBRARY, root, str(HOST_CXX_LIBRARY))
    assert b"GCC: (" not in HOST_LIBGCC.read_bytes()  # the premise: Debian strips .comment
    return root


def test_stripped_debian_runtime_libraries_are_named_without_a_version(stripped_debian_tree):
    result = identify(tree_context(stripped_debian_tree), use_cache=False)
    libgcc = _only(result.components, "libgcc")
    libstdcxx = _only(result.components, "libstdc++")
    assert libgcc.files == (f"rootfs:{HOST_LIBGCC}",)
    assert libstdcxx.files == (f"rootfs:{HOST_LIBSTDCXX[0]}",)
    for comp, node in ((libgcc, "GCC_3.0"), (libstdcxx, "GLIBCXX_3.4")):
        assert comp.version == "" and comp.cpe == ""  # no release claimed, so no CPE to match CVEs on
        assert [(e.method, e.detail) for e in comp.evidence] == [("symbol", node)]
    assert libstdcxx.purl == "pkg:generic/libstdc%2B%2B"
    # the C++ program and library need GLIBCXX_3.4 / GCC_3.0 and name libstdc++.so.6: they are not these
    listed = {f for c in result.components for f in c.files}
    assert not {f"rootfs:{HOST_CXX_PROGRAM}", f"rootfs:{HOST_CXX_LIBRARY}"} & listed


def _dpkg_version(status: str, package: str) -> str:
    m = re.search(rf"^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Version: (\S+)", status, re.M)
    assert m, package
    return m.group(1)


def test_stripped_debian_runtime_libraries_take_their_release_from_dpkg(stripped_debian_tree):
    info = Path("/var/lib/dpkg/info")
    lists = [info / "libgcc-s1:amd64.list", info / "libstdc++6:amd64.list"]
    if not all(p.exists() for p in lists):
        pytest.skip("needs dpkg's file lists of libgcc-s1 and libstdc++6")
    _copy(Path("/var/lib/dpkg/status"), stripped_debian_tree, "/var/lib/dpkg/status")
    for p in lists:
        _copy(p, stripped_debian_tree, str(p))
    status = Path("/var/lib/dpkg/status").read_text(errors="replace")
    comps = identify(tree_context(stripped_debian_tree), use_cache=False).components
    for name, package, lib in (
        ("libgcc", "libgcc-s1", HOST_LIBGCC),
        ("libstdc++", "libstdc++6", HOST_LIBSTDCXX[0]),
    ):
        full = _dpkg_version(status, package)  # e.g. 12.2.0-14+deb12u1
        release = full.split(":")[-1].rsplit("-", 1)[0]
        comp = _only(comps, name)
        assert comp.version == release
        assert {e.method for e in comp.evidence} == {"package-db", "symbol"}
        assert f"rootfs:{lib}" in comp.files
        assert comp.cpe == f"cpe:2.3:a:gnu:gcc:{release}:*:*:*:*:*:*:*"
        assert comp.purl.startswith(f"pkg:deb/debian/{package.replace('+', '%2B')}@")
    # the Debian package names are joined away, not listed beside the components
    assert not {"libgcc-s1", "libstdc++6"} & {c.name for c in comps}


def test_unstripped_libstdcxx_gives_the_gcc_release_from_its_comment(tmp_path):
    """Debian's libstdc++6-12-dbg ships the unstripped library; its .comment names GCC 12.2.0."""
    debs = sorted(DEB_CACHE.glob("libstdc++6-12-dbg_*_amd64.deb"))
    if not debs or shutil.which("dpkg-deb") is None:
        pytest.skip(f"run: cd {DEB_CACHE} && apt-get download libstdc++6-12-dbg:amd64")
    unpacked = tmp_path / "deb"
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], check=True)
    lib = next((unpacked / "usr/lib/x86_64-linux-gnu/debug").glob("libstdc++.so.6.0.*[0-9]"))
    comment = re.findall(rb"GCC: \([^)]*\) [0-9.]+", lib.read_bytes())
    assert len(comment) == 1
    release = comment[0].rsplit(b" ", 1)[1].decode()
    root = tmp_path / "root"
    _copy(lib, root, f"/usr/lib/{lib.name}")
    if HOST_CXX_PROGRAM.exists():
        _copy(HOST_CXX_PROGRAM, root, "/usr/bin/apt")
    comps = identify(tree_context(root), use_cache=False).components
    libstdcxx = _only(comps, "libstdc++")
    assert libstdcxx.version == release == "12.2.0"
    assert [e.method for e in libstdcxx.evidence] == ["signature"]  # the versionless hit gave way
    assert libstdcxx.cpe == "cpe:2.3:a:gnu:gcc:12.2.0:*:*:*:*:*:*:*"
    assert libstdcxx.purl == "pkg:generic/libstdc%2B%2B@12.2.0"
    assert libstdcxx.files == (f"rootfs:/usr/lib/{lib.name}",)
    assert "libgcc" not in {c.name for c in comps}
