"""cra-fw's own squashfs reader on images made by Debian's mksquashfs, intact and damaged.

The images are built here by squashfs-tools' real mksquashfs (`-comp lzma` writes LZMA
blocks with the 13-byte header, which cra-fw reads natively); ground truth is the tree that
went in.  Damage is done by hand at offsets found in the image (uncompressed tables with
-noI -noD -noF), so each test knows exactly what is broken.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from cra_fw.errors import LimitExceeded, UnpackError
from cra_fw.unpack.squashfs_reader import SquashfsImage, extract_image, parse_superblock
from cra_fw.unpack.treewriter import TreeWriter
from tests.conftest import scan_cli

needs_mksquashfs = pytest.mark.skipif(shutil.which("mksquashfs") is None, reason="squashfs-tools missing")


def _tree(root: Path) -> dict[str, str]:
    """path -> sha256 / 'dir' / '-> target' for everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = "/" + str(full.relative_to(root))
            if full.is_symlink():
                out[rel] = "-> " + os.readlink(full)
            elif full.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def _source(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "etc" / "init.d").mkdir(parents=True)
    (src / "sub" / "loop").mkdir(parents=True)
    (src / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (src / "etc" / "init.d" / "rcS").write_text("#!/bin/sh\nmount -a\n" * 50)
    (src / "big.bin").write_bytes(os.urandom(300_000) + bytes(200_000))  # several blocks, a sparse-ish tail
    (src / "..xpasswd").write_text("would escape if the name were '../passwd'\n")
    os.symlink("etc/passwd", src / "link")
    return src


def _mksquashfs(src: Path, out: Path, *opts: str) -> Path:
    subprocess.run(
        ["mksquashfs", str(src), str(out), "-noappend", "-quiet", "-no-progress", "-all-root", *opts],
        check=True,
        capture_output=True,
    )
    return out


def _extract(image: Path, outdir: Path) -> TreeWriter:
    with open(image, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        sb = parse_superblock(data, 0, len(data))
        assert sb is not None
        writer = TreeWriter(outdir)
        extract_image(data, sb, writer)
    return writer


@needs_mksquashfs
@pytest.mark.parametrize(
    "opts", [("-comp", "lzma"), ("-comp", "lzma", "-noI", "-noD", "-noF"), ("-comp", "xz")]
)
def test_reader_reads_what_mksquashfs_packed(tmp_path, opts):
    src = _source(tmp_path)
    image = _mksquashfs(src, tmp_path / "img.sqfs", *opts, "-b", "16384")
    writer = _extract(image, tmp_path / "out")
    assert writer.problems == []
    assert _tree(tmp_path / "out") == _tree(src)


@needs_mksquashfs
def test_unsafe_name_is_refused_and_nothing_leaves_the_folder(tmp_path):
    src = _source(tmp_path)
    image = _mksquashfs(src, tmp_path / "img.sqfs", "-comp", "lzma", "-noI", "-noD", "-noF")
    raw = bytearray(image.read_bytes())
    pos = raw.find(b"..xpasswd")
    assert pos > 0 and raw.count(b"..xpasswd") == 1
    raw[pos + 2] = ord("/")  # the directory entry now names ../passwd
    image.write_bytes(raw)
    outdir = tmp_path / "nest" / "out"
    writer = _extract(image, outdir)
    assert not (tmp_path / "nest" / "passwd").exists()
    assert any("unsafe name" in p for p in writer.problems)
    assert (outdir / "etc" / "passwd").read_text().startswith("root:")


@needs_mksquashfs
def test_directory_loop_is_cut(tmp_path):
    src = _source(tmp_path)
    image = _mksquashfs(src, tmp_path / "img.sqfs", "-comp", "lzma", "-noI", "-noD", "-noF")
    raw = bytearray(image.read_bytes())
    sb = parse_superblock(bytes(raw), 0, len(raw))
    assert sb is not None
    # /sub holds one entry, the folder 'loop': point its header and entry at the root inode
    name = raw.find(b"loop", sb.directory_table)
    entry = name - 8
    header = entry - 12
    assert struct.unpack_from("<HhHH", raw, entry)[3] == 3  # name_size is length - 1
    struct.pack_into("<I", raw, header + 4, sb.root_inode >> 16)
    struct.pack_into("<H", raw, entry, sb.root_inode & 0xFFFF)
    image.write_bytes(raw)
    writer = _extract(image, tmp_path / "out")
    assert any("directory loop cut" in p for p in writer.problems)
    assert (tmp_path / "out" / "etc" / "passwd").exists()


@needs_mksquashfs
def test_entry_limit_stops_a_flood(tmp_path):
    src = _source(tmp_path)
    image = _mksquashfs(src, tmp_path / "img.sqfs", "-comp", "lzma")
    with open(image, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        sb = parse_superblock(data, 0, len(data))
        assert sb is not None
        with pytest.raises(LimitExceeded):
            extract_image(data, sb, TreeWriter(tmp_path / "out", max_entries=3))


@needs_mksquashfs
@pytest.mark.parametrize("damage", ["truncate", "inode-table", "superblock-tables"])
def test_damaged_image_is_a_failed_layer_and_a_finding(tmp_path, damage):
    src = _source(tmp_path)
    image = _mksquashfs(src, tmp_path / "img.sqfs", "-comp", "lzma")
    raw = bytearray(image.read_bytes())
    sb = parse_superblock(bytes(raw), 0, len(raw))
    assert sb is not None
    if damage == "truncate":
        raw = raw[: sb.inode_table + 40]
        struct.pack_into("<Q", raw, 40, len(raw))  # bytes_used still fits: the tables are cut
    elif damage == "inode-table":
        raw[sb.inode_table + 2 : sb.inode_table + 60] = os.urandom(58)
    else:
        struct.pack_into("<QQ", raw, 64, sb.bytes_used - 4, sb.bytes_used - 2)  # tables at the end
    image.write_bytes(bytes(raw).ljust(4096, b"\0"))
    with open(image, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        found = parse_superblock(data, 0, len(data))
        if found is not None:
            writer = TreeWriter(tmp_path / "direct")
            try:
                reader = SquashfsImage(data, found)
                reader.load()
                reader.extract(writer)
            except UnpackError:
                pass
            else:
                assert writer.problems, "a damaged image read without complaint"
    run = scan_cli(image, tmp_path / "scan", command="unpack")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 3), run.stderr
    report = run.report
    layers = [la for la in report["layers"] if la["format"] == "squashfs"]
    assert not [la for la in layers if la["status"] == "extracted" and la["file_count"]]
    assert all(not f["path"].startswith("/etc/passwd") for f in report["files"])


def test_squashfs_1_is_reported_unsupported_not_unknown(tmp_path):
    # a version 1.0 superblock (layout of squashfs 1.x: counts, table offsets, 16-bit block size);
    # no reader exists for 1.x, so the region must be a named, unsupported layer with a finding
    head = bytearray(4096)
    head[0:4] = b"hsqs"
    struct.pack_into("<6I", head, 4, 10, 4096, 0, 0, 3000, 3500)
    struct.pack_into("<HHHH", head, 28, 1, 0, 32768, 15)
    image = tmp_path / "v1.sqfs"
    image.write_bytes(bytes(head))
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    (layer,) = [la for la in run.report["layers"] if la["format"] == "squashfs"]
    assert (layer["status"], layer["details"]["version"]) == ("unsupported", "1.0")
    assert "no reader" in layer["note"]
    # the unsupported region is also what stays unanalysed (issue 13: visible to the gate)
    assert [f["rule_id"] for f in run.report["findings"]] == ["unpack.unsupported", "unpack.not-analysed"]
