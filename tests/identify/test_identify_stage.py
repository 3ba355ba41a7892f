"""The identify stage on real trees: package databases, merging, the cache, workers, hostile input."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from cra_fw.identify import LAST_STATS, identify, run
from cra_fw.identify import scan as scan_mod
from cra_fw.identify.kernel import version_from_modules_path
from cra_fw.identify.pkgdb import split_root, upstream_version
from cra_fw.records import FileEntry, FileKind
from tests.conftest import SHARED_FIRMWARE
from tests.identify.treectx import tree_context

EMUX = SHARED_FIRMWARE / "emux" / "DV-MIPSEL-rootfs-mipsel.tar.bz2"
if not EMUX.exists():
    EMUX = (
        Path(__file__).resolve().parents[3]
        / "shared"
        / "firmware"
        / "emux"
        / "DV-MIPSEL-rootfs-mipsel.tar.bz2"
    )


def _copy(src: Path, root: Path, dest: str) -> None:
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)


@pytest.fixture()
def debian_tree(tmp_path) -> Path:
    """This machine's real dpkg status and zlib/OpenSSL libraries, laid out as a firmware rootfs."""
    root = tmp_path / "root"
    status = Path("/var/lib/dpkg/status")
    zlib = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1.*"))
    if not status.exists() or not zlib or not Path("/var/lib/dpkg/info/zlib1g:amd64.list").exists():
        pytest.skip("needs a Debian amd64 host with zlib1g")
    _copy(status, root, "/var/lib/dpkg/status")
    _copy(Path("/var/lib/dpkg/info/zlib1g:amd64.list"), root, "/var/lib/dpkg/info/zlib1g:amd64.list")
    _copy(zlib[0], root, f"/usr/lib/x86_64-linux-gnu/{zlib[0].name}")
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n')
    return root


def test_dpkg_package_and_binary_signature_are_one_component(debian_tree):
    result = identify(tree_context(debian_tree), use_cache=False)
    zlib = [c for c in result.components if c.name == "zlib"]
    assert len(zlib) == 1, zlib
    z = zlib[0]
    assert {e.method for e in z.evidence} == {"package-db", "signature"}
    assert (
        z.purl.startswith("pkg:deb/debian/zlib1g@")
        and "arch=amd64" in z.purl
        and "distro=debian-12" in z.purl
    )
    assert z.cpe == f"cpe:2.3:a:zlib:zlib:{z.version}:*:*:*:*:*:*:*"
    assert z.hashes["SHA-256"] and len(z.hashes["SHA-512"]) == 128
    # every installed Debian package is listed; no package appears twice, none under a Debian name
    keys = [c.key for c in result.components]
    assert len(keys) == len(set(keys))
    assert "zlib1g" not in {c.name for c in result.components}
    # the distribution is a finding, not a component
    assert "debian" not in {c.name for c in result.components}
    dist = [f for f in result.findings if f.rule_id == "identify.distribution"]
    assert dist and dist[0].extra["version"] == "12"


def test_versionless_library_takes_its_release_from_the_package_database(tmp_path):
    """libxcrypt's binary proves the library but not its release; dpkg's record of the same file gives it."""
    lib = Path("/lib/x86_64-linux-gnu/libcrypt.so.1.1.0")
    listing = Path("/var/lib/dpkg/info/libcrypt1:amd64.list")
    if not lib.exists() or not listing.exists():
        pytest.skip("needs a Debian amd64 host with libcrypt1")
    root = tmp_path / "root"
    _copy(lib, root, str(lib))
    alone = identify(tree_context(root), use_cache=False).components
    assert [(c.name, c.version, c.cpe) for c in alone] == [("libxcrypt", "", "")]
    assert alone[0].purl == "pkg:generic/libxcrypt" and alone[0].evidence[0].detail == "XCRYPT_2.0"
    _copy(Path("/var/lib/dpkg/status"), root, "/var/lib/dpkg/status")
    _copy(listing, root, "/var/lib/dpkg/info/libcrypt1:amd64.list")
    xcrypt = [c for c in identify(tree_context(root), use_cache=False).components if c.name == "libxcrypt"]
    assert len(xcrypt) == 1 and xcrypt[0].version, xcrypt  # one component, no versionless twin
    assert {e.method for e in xcrypt[0].evidence} == {"package-db", "symbol"}
    assert xcrypt[0].purl.startswith("pkg:deb/debian/libcrypt1@")
    assert xcrypt[0].files == (f"rootfs:{lib}",)


def test_transitional_package_takes_the_source_version(tmp_path):
    """Debian bookworm's ``ntp`` is a transitional package built from ntpsec: its own version
    (4.2.8p15 in it) is not the code's; the ``Source: ntpsec (1.2.2...)`` version is."""
    status = tmp_path / "root" / "var" / "lib" / "dpkg" / "status"
    status.parent.mkdir(parents=True)
    # the two paragraphs as bookworm's ntp_1:4.2.8p15+dfsg-2~1.2.2+dfsg1-1+deb12u1_all.deb and
    # ntpsec_1.2.2+dfsg1-1+deb12u1_amd64.deb control files give them
    status.write_text(
        "Package: ntp\nStatus: install ok installed\nArchitecture: all\n"
        "Source: ntpsec (1.2.2+dfsg1-1+deb12u1)\nVersion: 1:4.2.8p15+dfsg-2~1.2.2+dfsg1-1+deb12u1\n\n"
        "Package: ntpsec\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 1.2.2+dfsg1-1+deb12u1\n\n"
    )
    comps = identify(tree_context(tmp_path / "root"), use_cache=False).components
    assert [(c.name, c.version) for c in comps] == [("ntpsec", "1.2.2")]
    assert not any(c.version.startswith("4.2.8") for c in comps)


def test_upstream_versions_from_package_managers():
    assert upstream_version("1:1.2.13.dfsg-1", "dpkg") == "1.2.13"
    assert upstream_version("2:6.2.1+dfsg1-1.1", "dpkg") == "6.2.1"
    assert upstream_version("3.0.20-1~deb12u2", "dpkg") == "3.0.20"
    assert upstream_version("1:9.2p1-2+deb12u3", "dpkg") == "9.2p1"
    # "+really": the code shipped is the version after it (libxml2 in Debian trixie)
    assert upstream_version("2.12.7+dfsg+really2.9.14-2.1+deb13u3", "dpkg") == "2.9.14"
    assert upstream_version("1.23.2-1", "opkg") == "1.23.2"
    assert upstream_version("2016-06-15-2", "opkg") == "2016-06-15"
    assert (
        upstream_version("2013-06-29", "opkg") == "2013-06-29"
    )  # firewall, OpenWrt 12.09 (librarybox image)
    assert upstream_version("3.18.109-1-17b4dfc3b6a3f8ba1f8b7c8c0dd1b3a5", "opkg") == "3.18.109"


@pytest.mark.skipif(not EMUX.exists(), reason="emux rootfs (shared firmware) not present")
def test_openwrt_rootfs_opkg_and_binaries_merge(tmp_path):
    with tarfile.open(EMUX) as tf:
        tf.extractall(tmp_path, filter="tar")
    result = identify(tree_context(tmp_path / "rootfs-mipsel"), use_cache=False)
    comps = {c.name: c for c in result.components}
    by_key = {(c.name, c.version) for c in result.components}
    assert {
        ("busybox", "1.23.2"),
        ("uclibc", "0.9.33.2"),
        ("openssl", "1.0.2n"),
        ("zlib", "1.2.8"),
        ("dropbear", "2017.75"),
        ("linux", "3.18.109"),
        ("util-linux", "2.25.2"),
        ("hostapd", "2.6-devel"),
    } <= by_key
    # one component per program: the opkg names (libc, kernel, agetty, wpad-mini) are merged away
    assert not {"libc", "kernel", "agetty", "wpad-mini"} & set(comps)
    assert {e.method for e in comps["uclibc"].evidence} == {"package-db", "filename"}
    assert {e.method for e in comps["busybox"].evidence} == {"package-db", "signature"}
    assert [c.version for c in result.components if c.name == "openssl"] == ["1.0.2n"]
    deps = {d.ref: d.depends_on for d in result.dependencies}
    assert "uclibc@0.9.33.2" in deps["busybox@1.23.2"]
    assert "openssl@1.0.2n" not in deps.get("busybox@1.23.2", ())


@pytest.mark.skipif(not EMUX.exists(), reason="emux rootfs (shared firmware) not present")
def test_rootfs_wrapped_in_a_folder_is_read_like_one_at_the_root(tmp_path):
    # the tarball holds rootfs-mipsel/...: cra-fw scan sees /rootfs-mipsel/usr/lib/opkg/status
    with tarfile.open(EMUX) as tf:
        tf.extractall(tmp_path, filter="tar")
    at_root = identify(tree_context(tmp_path / "rootfs-mipsel"), use_cache=False).components
    wrapped = identify(tree_context(tmp_path), use_cache=False).components
    assert {(c.name, c.version) for c in wrapped} == {(c.name, c.version) for c in at_root}
    assert ("dropbear", "2017.75") in {(c.name, c.version) for c in wrapped}
    dropbear = next(c for c in wrapped if c.name == "dropbear")
    assert [f.split(":", 1)[1] for f in dropbear.files] == ["/rootfs-mipsel/usr/sbin/dropbear"]


def test_split_root_finds_package_databases_below_a_wrapping_folder():
    assert split_root("/usr/lib/opkg/status") == ("", "/usr/lib/opkg/status")
    assert split_root("/rootfs-mipsel/usr/lib/opkg/status") == ("/rootfs-mipsel", "/usr/lib/opkg/status")
    assert split_root("/fs/rootfs/var/lib/dpkg/status") == ("/fs/rootfs", "/var/lib/dpkg/status")
    assert split_root("/rootfs/usr/lib/opkg/info/dropbear.control") == (
        "/rootfs",
        "/usr/lib/opkg/info/dropbear.control",
    )
    # too deep to be a system root, or not a database at all: unchanged
    assert split_root("/usr/share/doc/x/etc/os-release") == ("", "/usr/share/doc/x/etc/os-release")
    assert split_root("/rootfs/usr/bin/busybox") == ("", "/rootfs/usr/bin/busybox")
    assert version_from_modules_path("/rootfs-mipsel/lib/modules/3.18.109/nls_utf8.ko") == "3.18.109"
    assert version_from_modules_path("/a/b/c/lib/modules/3.18.109/nls_utf8.ko") == ""


LIBRARYBOX = EMUX.parents[1] / "librarybox" / "openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin"


@pytest.mark.skipif(
    not LIBRARYBOX.exists() or shutil.which("unsquashfs") is None,
    reason="librarybox OpenWrt image (shared firmware) or unsquashfs not present",
)
def test_openwrt_packages_join_their_source_component(tmp_path):
    """OpenWrt 12.09 (librarybox MR3020): packages built from one source are one component, as the
    image's own opkg database says (Source: in info/*.control)."""
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
    by_key = {(c.name, c.version) for c in comps}
    names = {c.name for c in comps}
    # hostapd-mini (/usr/sbin/hostapd, a link to wpad) and wpad-mini: one hostapd, the binary's release
    assert [c.version for c in comps if c.name == "hostapd"] == ["2.1-devel"]
    assert {
        ("firewall", "2013-06-29"),
        ("iptables", "1.4.10"),
        ("util-linux", "2.21.2"),
        ("linux", "3.3.8"),
        ("busybox", "1.19.4"),
        ("dropbear", "2011.54"),
        ("dnsmasq", "2.66"),
        ("zlib", "1.2.7"),
        ("uclibc", "0.9.33.2"),
    } <= by_key
    # Source: package/iptables, package/util-linux, package/kernel, package/hostapd
    assert (
        not {
            "libip4tc",
            "libip6tc",
            "libxtables",
            "iptables-mod-extra",
            "libblkid",
            "libuuid",
            "kmod-crypto-aes",
            "kmod-usb-core",
            "hostapd-mini",
            "wpad-mini",
            "kernel",
        }
        & names
    )
    # built from other sources (mac80211 backport, batman-adv): not the kernel itself, but those
    # projects, at the release after "<kernel>+" in the package version (3.3.8+2014-05-22-1)
    assert {("mac80211", "2014-05-22"), ("batman-adv", "2013.4.0")} <= by_key
    assert not {"kmod-ath9k", "kmod-batman-adv", "kmod-mac80211"} & names
    # one component per source project: libubus/ubus/ubusd are ubus, jshn/libblobmsg-json libubox
    assert not {"libubus", "ubusd", "jshn", "libblobmsg-json", "libuci"} & names
    assert {"ubus", "libubox", "uci"} <= names
    # uClibc 0.9.33.2 is uClibc, whose CVEs NVD files under uclibc:uclibc, not its successor uClibc-ng
    uclibc = next(c for c in comps if c.name == "uclibc")
    assert uclibc.cpe == "cpe:2.3:a:uclibc:uclibc:0.9.33.2:*:*:*:*:*:*:*" and "uclibc-ng" not in names
    iptables = next(c for c in comps if c.name == "iptables")
    assert {"rootfs:/usr/lib/libip4tc.so.0.0.0", "rootfs:/usr/sbin/iptables"} <= set(iptables.files)


@pytest.mark.skipif(not EMUX.exists(), reason="emux rootfs (shared firmware) not present")
def test_cache_second_scan_reads_nothing_and_parallel_workers_agree(tmp_path, monkeypatch):
    with tarfile.open(EMUX) as tf:
        tf.extractall(tmp_path, filter="tar")
    root = tmp_path / "rootfs-mipsel"
    cache = tmp_path / "cache"
    first = run(tree_context(root, cache_dir=cache))
    assert LAST_STATS["files_cached"] == 0 and LAST_STATS["bytes_read"] > 0
    second = run(tree_context(root, cache_dir=cache))
    # the cache's speed-up is measured in benchmarks/bench_identify.py; here: nothing is read again
    assert LAST_STATS["files_cached"] == LAST_STATS["files_selected"] > 0
    assert LAST_STATS["bytes_read"] == 0
    assert second.components == first.components and second.dependencies == first.dependencies
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    parallel = identify(tree_context(root, workers=2), use_cache=False)
    assert parallel.components == first.components


def test_hostile_files_are_bounded_and_never_raise(tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin/many").write_bytes(b"\x7fELF" + b"OpenSSL " * 200_000)  # one anchor, 200k times
    (root / "bin/trunc").write_bytes(b"\x7fELF\x01\x01\x01" + b"\x00" * 9)  # not parseable
    (root / "boot").mkdir()
    (root / "boot/zImage").write_bytes(b"\x1f\x8b\x08" + b"\xff" * 300_000)  # broken gzip in a kernel
    (root / "boot/uImage").write_bytes(b"\xfd7zXZ\x00" + bytes(range(256)) * 2000)
    ctx = tree_context(root)
    ctx.files = [
        dataclasses.replace(f, kind=FileKind.ELF)
        if f.path.startswith("/bin/")
        else dataclasses.replace(f, kind=FileKind.KERNEL)
        for f in ctx.files
    ]
    ctx.files.append(
        FileEntry("rootfs", "/bin/missing", FileKind.ELF, 10, 0o755, abs_path=str(root / "nope"))
    )
    ctx.__post_init__()
    t = time.perf_counter()
    result = identify(ctx, use_cache=False)
    assert time.perf_counter() - t < 20
    assert result.components == []


def test_broken_signature_folder_becomes_a_finding(tmp_path, debian_tree):
    (tmp_path / "sigs").mkdir()
    (tmp_path / "sigs/bad.toml").write_text("name = [")
    result = identify(tree_context(debian_tree), signatures=tmp_path / "sigs", use_cache=False)
    assert [f.rule_id for f in result.findings if f.rule_id == "identify.signatures-invalid"]
    # package databases still work without signatures
    assert any(c.name == "zlib1g" or c.name == "zlib" for c in result.components)


UBOOT_IMAGE = EMUX.parents[1] / "fact" / "uboot_uboot.image_with_header"


@pytest.mark.skipif(not UBOOT_IMAGE.exists(), reason="FACT U-Boot image (shared firmware) not present")
def test_small_decompressed_bootloader_is_identified(tmp_path):
    # a legacy uImage (type firmware, lzma) around a 93 KiB U-Boot 1.1.4: below the kernel size floor
    from tests.conftest import scan_cli

    run = scan_cli(UBOOT_IMAGE, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    comps = [(c["name"], c["version"]) for c in run.report["components"]]
    assert comps == [("u-boot", "1.1.4")]


def test_version_text_is_a_mention_only_in_a_program_that_loads_the_library():
    """The rule behind libssh's "OpenSSL 3.0.17" (see test_identify_fixtures): dropped only where the
    file loads the component's own library and is not that library."""
    from cra_fw.identify import _built_against
    from cra_fw.identify.records import Hit
    from cra_fw.identify.signatures import default_signatures
    from cra_fw.records import ElfInfo

    sigs = default_signatures().by_name()
    hit = Hit("openssl", "3.0.17", "signature", 0.9, "OpenSSL 3.0.17 1 Jul 2025")

    def elf_file(path: str, soname: str, needed: tuple[str, ...], static: bool = False) -> FileEntry:
        info = ElfInfo("arm", 32, "little", "DYN", static, soname=soname, needed=needed)
        return FileEntry("L1", path, FileKind.ELF, 1000, 0o755, elf=info)

    libssh = elf_file("/lib/libssh.so.4.9.6", "libssh.so.4", ("libcrypto.so.3", "libz.so.1", "libc.so.6"))
    assert _built_against(sigs, hit, libssh)
    # OpenSSL's own libraries, a daemon with OpenSSL linked in, and a non-signature hit all stay
    assert not _built_against(sigs, hit, elf_file("/lib/libssl.so.3", "libssl.so.3", ("libcrypto.so.3",)))
    assert not _built_against(sigs, hit, elf_file("/lib/libcrypto.so.3", "libcrypto.so.3", ("libc.so.6",)))
    assert not _built_against(sigs, hit, elf_file("/usr/sbin/httpd", "", ("libc.so.6",)))
    assert not _built_against(sigs, hit, elf_file("/usr/sbin/httpd", "", (), static=True))
    assert not _built_against(sigs, Hit("openssl", "3.0.17", "package-db", 1.0), libssh)
    # a component without sonames is never judged a mention (curl's own binary loads libcurl)
    curl = elf_file("/usr/bin/curl", "", ("libcurl.so.4",))
    assert not _built_against(sigs, Hit("curl", "7.88.1", "signature", 0.9), curl)
