"""Squashfs 3.0 images made by the Broadcom squashfs-lzma mksquashfs, read back by cra-fw.

The four images in fixtures/images/sqfs3-*.sqfs were written by the vendor's own
mksquashfs 3.2-r2 (built from ASUS's published GPL tree, see docs/fixtures.md): LZMA with the
5-byte header under the vendor magics ``shsq``/``qshs``, and zlib, each in both byte orders,
one with the per-block check byte.  fixtures/images/vendor-squashfs3.json lists every entry of
the tree that went in (ground truth by construction).
"""

from __future__ import annotations

import json
import struct

import pytest

from tests.conftest import FIXTURE_IMAGES, scan_cli

TRUTH = json.loads((FIXTURE_IMAGES / "vendor-squashfs3.json").read_text())
IMAGES = {im["file"]: im for im in TRUTH["images"]}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_vendor_mksquashfs_image_reads_back_exactly(tmp_path, name):
    image = IMAGES[name]
    run = scan_cli(FIXTURE_IMAGES / name, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    report = run.report
    (layer,) = [la for la in report["layers"] if la["format"] == "squashfs"]
    assert (layer["offset"], layer["status"], layer["note"]) == (0, "extracted", "")
    sb = image["superblock"]
    want_details = {
        "version": sb["version"],
        "endianness": sb["endianness"],
        "inodes": str(sb["inodes"]),
        "block_size": str(sb["block_size"]),
        "compression": image["compression"],
    }
    if image["variant"]:
        want_details["variant"] = image["variant"]
    assert layer["details"] == want_details
    got = {f["path"]: f for f in report["files"] if f["layer_id"] == layer["id"]}
    tree = TRUTH["tree"]["files"]
    kept = [e for e in tree if e["type"] in ("file", "dir", "symlink")]
    assert set(got) == {e["path"] for e in kept}, "device nodes and FIFOs are never created"
    for entry in kept:
        item = got[entry["path"]]
        if entry["type"] == "symlink":
            assert (item["kind"], item["link_target"]) == ("symlink", entry["target"]), entry["path"]
        elif entry["type"] == "dir":
            assert item["kind"] == "directory", entry["path"]
        else:
            assert (item["size"], item["sha256"]) == (entry["size"], entry["sha256"]), entry["path"]
            assert item["mode"] & 0o7777 == entry["mode"], entry["path"]


@pytest.mark.parametrize("cut", ["tables", "data"])
def test_truncated_vendor_image_fails_cleanly(tmp_path, cut):
    raw = (FIXTURE_IMAGES / "sqfs3-be-lzma-qshs.sqfs").read_bytes()
    (inode_table,) = struct.unpack_from(">q", raw, 87)
    if cut == "tables":  # the file ends inside the inode table: the superblock no longer fits
        damaged = raw[: inode_table + 10]
    else:  # the data blocks are zeroed while every table stays intact
        damaged = raw[:120] + bytes(inode_table - 120) + raw[inode_table:]
    image = tmp_path / "cut.sqfs"
    image.write_bytes(damaged)
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 3), run.stderr
    report = run.report
    layers = [la for la in report["layers"] if la["format"] == "squashfs"]
    if cut == "data":
        (layer,) = layers
        assert "unreadable" in layer["note"]
        assert not [f for f in report["files"] if f["path"] == "/bin/dash"]
        # the tree itself is intact: folders and symlinks come out
        assert {"/www", "/bin/sh"} <= {f["path"] for f in report["files"]}
    else:
        assert not [la for la in layers if la["status"] == "extracted"]
