"""The identify stage on the committed fixture images: the SBOM holds exactly the ground-truth
components and versions, nothing more.  Trees are unpacked here with real tools (unsquashfs, tar,
cpio) because this stage is tested without the unpack stage."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from cra_fw.identify import identify
from cra_fw.records import FileEntry, FileKind
from tests.identify.treectx import tree_context

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
GT_FILE = IMAGES / "ground-truth.json"
# No binary of these carries its release: libxcrypt's only markers are its symbol versions
# (XCRYPT_2.0 ... XCRYPT_4.4, the same in 4.4.18, 4.4.33 and 4.4.38), so without a package database
# it is listed with its evidence and without a version (see docs/sbom.md).
VERSION_NOT_IN_IMAGE = {"libxcrypt"}


def _ground_truth() -> dict[str, dict]:
    if not GT_FILE.exists():
        return {}
    return {im["name"]: im for im in json.loads(GT_FILE.read_text())["images"]}


GT = _ground_truth()


def expected_components(image: dict) -> set[tuple[str, str]]:
    """(name, version) pairs an SBOM of ``image`` must hold exactly ("" where no release is recorded)."""
    return {
        (c["name"], "" if c["name"] in VERSION_NOT_IN_IMAGE else c["version"]) for c in image["components"]
    }


def _unpack(name: str, dest: Path) -> list[Path]:
    """Extract the root filesystem of fixture ``name`` into dest/rootfs; return extra blobs (kernels)."""
    img = IMAGES / name
    root = dest / "rootfs"
    extra: list[Path] = []
    if name.endswith(".sqfs"):
        subprocess.run(
            ["unsquashfs", "-q", "-n", "-no-xattrs", "-d", str(root), str(img)],
            check=True,
            capture_output=True,
        )
    elif name.endswith(".tar.gz"):
        with tarfile.open(img) as tf:
            tf.extractall(root, filter="tar")
    elif name.endswith(".cpio.gz"):
        root.mkdir(parents=True)
        subprocess.run(
            ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
            input=gzip.decompress(img.read_bytes()),
            cwd=root,
            check=True,
            capture_output=True,
        )
    elif name.startswith("flash-"):
        im = GT[name]
        sq = next(layer for layer in im["layers"] if layer["format"] == "squashfs")
        subprocess.run(
            ["unsquashfs", "-q", "-n", "-no-xattrs", "-o", str(sq["offset"]), "-d", str(root), str(img)],
            check=True,
            capture_output=True,
        )
        ui = next(layer for layer in im["layers"] if layer["format"] == "uimage")
        blob = dest / "uimage.bin"
        blob.write_bytes(img.read_bytes()[ui["offset"] : ui["offset"] + ui["size"]])
        extra.append(blob)
    else:
        pytest.skip(f"{name}: no plain extractor for this format in the identify tests")
    return extra


CASES = [
    n
    for n in (
        "sqfs-lzo-armhf.sqfs",
        "sqfs-gzip-arm64.sqfs",
        "sqfs-xz-mipsel.sqfs",
        "sqfs-xz-armhf-libs.sqfs",
        "rootfs-armhf.tar.gz",
        "initramfs-armel.cpio.gz",
        "flash-armel-uimage-squashfs.bin",
    )
    if n in GT
]


@pytest.mark.skipif(
    not GT or shutil.which("unsquashfs") is None, reason="fixture images or unsquashfs missing"
)
@pytest.mark.parametrize("name", CASES)
def test_fixture_sbom_is_exactly_the_ground_truth(name, tmp_path):
    extra = _unpack(name, tmp_path)
    ctx = tree_context(tmp_path / "rootfs", cache_dir=tmp_path / "cache")
    for blob in extra:  # what the unpacker would hand over as a kernel layer
        ctx.files.append(
            FileEntry(
                "kernel", "/" + blob.name, FileKind.KERNEL, blob.stat().st_size, 0o644, abs_path=str(blob)
            )
        )
    ctx.__post_init__()
    result = identify(ctx)
    got = {(c.name, c.version) for c in result.components}
    expected = expected_components(GT[name])
    assert got == expected, f"extra: {got - expected}, missing: {expected - got}"
    for c in result.components:
        if not c.version:  # listed on symbol evidence in the ground truth's file, with no CPE to mis-match
            truth_files = next(t["files"] for t in GT[name]["components"] if t["name"] == c.name)
            assert [e.method for e in c.evidence] == ["symbol"] and c.cpe == "", c
            assert set(c.files) == set(truth_files) and c.hashes, c
    # every component has evidence, a purl, and the files it was found in
    for c in result.components:
        assert c.evidence and c.purl and c.files, c
    # the distribution marker is reported as a finding, never as a component
    distribution = [f for f in result.findings if f.rule_id == "identify.distribution"]
    assert bool(distribution) == bool(GT[name]["os_release"]), distribution


@pytest.mark.skipif(
    "sqfs-gzip-arm64.sqfs" not in GT or shutil.which("unsquashfs") is None, reason="fixture missing"
)
def test_dependencies_follow_the_elf_link_graph(tmp_path):
    _unpack("sqfs-gzip-arm64.sqfs", tmp_path)
    result = identify(tree_context(tmp_path / "rootfs"), use_cache=False)
    deps = {d.ref: set(d.depends_on) for d in result.dependencies}
    # dropbear links libtomcrypt, libtommath, libz and libc; lighttpd links libc
    assert {"libtomcrypt@1.18.2", "zlib@1.2.13", "glibc@2.36"} <= deps["dropbear@2022.83"]
    assert "glibc@2.36" in deps["lighttpd@1.4.69"]
    assert "busybox@1.35.0" not in {d for v in deps.values() for d in v}


@pytest.mark.skipif(
    "sqfs-xz-armhf-libs.sqfs" not in GT or shutil.which("unsquashfs") is None, reason="fixture missing"
)
def test_a_library_built_against_openssl_is_not_openssl(tmp_path):
    """libssh carries the OpenSSL headers' version text; it loads libcrypto, so that text is a
    mention, not an embedded OpenSSL (the peers' classic false positive)."""
    _unpack("sqfs-xz-armhf-libs.sqfs", tmp_path)
    libssh = tmp_path / "rootfs" / "lib" / "libssh.so.4.9.6"
    assert b"OpenSSL 3.0." in libssh.read_bytes()
    result = identify(tree_context(tmp_path / "rootfs"), use_cache=False)
    names = {c.name for c in result.components}
    assert "libssh" in names and "openssl" not in names
    # a dependency edge to libcrypto cannot exist either: libcrypto is not in this partition
    assert not any("openssl" in d for dep in result.dependencies for d in dep.depends_on)
