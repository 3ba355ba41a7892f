"""Real vendor squashfs flavours, read by cra-fw's own reader, checked against an independent tool.

Ground truth, gathered by hand and re-derived here with third-party tools:
- D-Link DIR-300 flash dump: vendor magic ``shsq``, squashfs 3.0 little-endian, LZMA blocks with
  the 13-byte header; the superblock counts 1078 inodes; 7-Zip (p7zip 16.02) lists 1014 files and
  63 folders and extracts every regular file (20 of its "files" are symlinks it refuses).
- Broadcom BCM63xx rootfs: ``sqsh`` squashfs 2.0 big-endian, LZMA with a 5-byte header under the
  zlib id; 431 inodes; 7-Zip lists every entry (263 regular files with their sizes, 68 symlinks,
  28 folders, 71 device nodes and FIFOs) but cannot decode the data.
- D-Link DIR-300 rev B5 2.15: squashfs 4.0 little-endian, LZMA with a 5-byte header that
  squashfs-tools 4.5.1 rejects; 1473 inodes (unsquashfs -s), of which 65 device nodes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED_FIRMWARE, scan_cli

SHARED_MORE = SHARED_FIRMWARE.parent / "firmware-more" / "linux"
DLINK_DUMP = SHARED_MORE / "dlink_dir300_uart-flash-dump_repaired.bin"
DLINK_FW = SHARED_MORE / "dlink_DIR-300_REVB5_FIRMWARE_2.15.B01_WW.BIN"
BCM = SHARED_FIRMWARE / "binwalk" / "squashfs_v2.bin"
needs_7z = pytest.mark.skipif(shutil.which("7z") is None, reason="7z (p7zip-full) is not installed")


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} is not in ../shared")


def _unpack(path: Path, out: Path, *extra: str) -> dict:
    run = scan_cli(path, out, *extra, command="unpack")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run.report


def _layer(report: dict, offset: int, parent_path: str = "") -> dict:
    (layer,) = [
        la
        for la in report["layers"]
        if la["format"] == "squashfs" and la["offset"] == offset and la["parent_path"] == parent_path
    ]
    return layer


def _packimgs(report: dict) -> dict:
    (layer,) = [la for la in report["layers"] if la["format"] == "packimgs"]
    return layer


def _files(report: dict, layer: dict) -> dict[str, dict]:
    return {f["path"]: f for f in report["files"] if f["layer_id"] == layer["id"]}


def _seven_zip(image: Path, offset: int, size: int, tmp: Path) -> tuple[Path, list[dict]]:
    carved = tmp / "carved.sqfs"
    with open(image, "rb") as fh:
        fh.seek(offset)
        carved.write_bytes(fh.read(size))
    listing = subprocess.run(
        ["7z", "l", "-slt", str(carved)], capture_output=True, text=True, check=True
    ).stdout
    entries, cur = [], {}
    for line in listing.splitlines():
        if " = " in line:
            key, value = line.split(" = ", 1)
            cur[key] = value
        elif not line.strip() and "Mode" in cur:
            entries.append(cur)
            cur = {}
    if "Mode" in cur:
        entries.append(cur)
    out = tmp / "7z"
    subprocess.run(["7z", "x", f"-o{out}", str(carved)], capture_output=True, check=False)
    return out, entries


@needs_7z
def test_dlink_flash_dump_shsq_squashfs_3_0_lzma(tmp_path):
    _need(DLINK_DUMP)
    report = _unpack(DLINK_DUMP, tmp_path / "out")
    # the root filesystem is the section behind the 32-byte "--PaCkImGs--" header at 0x13001f
    # (big-endian section length 0x237000, read by hand with xxd: the squashfs padded to 4 KiB)
    section = _packimgs(report)
    assert (section["offset"], section["size"], section["details"]) == (
        0x13001F,
        32 + 0x237000,
        {"section_size": str(0x237000)},
    )
    layer = _layer(report, 0, "/section.bin")
    assert layer["parent_id"] == section["id"]
    assert layer["status"] == "extracted" and not layer["note"]
    assert layer["details"] == {
        "version": "3.0",
        "endianness": "little",
        "variant": "vendor magic shsq",
        "inodes": "1078",
        "block_size": "65536",
        "compression": "lzma",
    }
    files = _files(report, layer)
    kinds = [f["kind"] for f in files.values()]
    regular = {p: f for p, f in files.items() if f["kind"] not in ("symlink", "directory")}
    assert (len(regular), kinds.count("symlink"), kinds.count("directory")) == (840, 109, 63)
    ref, entries = _seven_zip(DLINK_DUMP, 0x13003F, layer["size"], tmp_path)
    symlinks = {e["Path"] for e in entries if e["Mode"].startswith("l")}
    sevenzip_regular = {
        "/" + e["Path"] for e in entries if e["Mode"].startswith("-") and e["Path"] not in symlinks
    }
    assert set(regular) == sevenzip_regular
    for path, entry in regular.items():
        want = hashlib.sha256((ref / path.lstrip("/")).read_bytes()).hexdigest()
        assert entry["sha256"] == want, path
    assert files["/bin/busybox"]["elf"] is not None


@needs_7z
def test_broadcom_squashfs_2_0_big_endian_lzma_under_zlib_id(tmp_path):
    _need(BCM)
    report = _unpack(BCM, tmp_path / "out")
    layer = _layer(report, 0)
    assert layer["status"] == "extracted" and not layer["note"]
    assert layer["details"]["version"] == "2.0"
    assert layer["details"]["endianness"] == "big"
    assert layer["details"]["compression"] == "lzma-5-byte-header"
    files = _files(report, layer)
    _ref, entries = _seven_zip(BCM, 0, layer["size"], tmp_path)
    want = {"/" + e["Path"]: int(e["Size"]) for e in entries if e["Mode"].startswith("-")}
    got = {p: f["size"] for p, f in files.items() if f["kind"] not in ("symlink", "directory")}
    assert got == want
    assert len(got) == 263
    links = {p: f["link_target"] for p, f in files.items() if f["kind"] == "symlink"}
    assert len(links) == 68 and links["/bin/sh"] == "busybox"
    assert sum(f["kind"] == "directory" for f in files.values()) == 28
    assert (files["/bin/busybox"]["elf"]["arch"], files["/bin/busybox"]["elf"]["endian"]) == ("mips", "big")


def test_dlink_firmware_squashfs_4_lzma_five_byte_header(tmp_path):
    _need(DLINK_FW)
    report = _unpack(DLINK_FW, tmp_path / "out", "--extractor", "binwalk")
    # the squashfs sits behind a "--PaCkImGs--" header at 0x120000 of the DLOB container's
    # payload (which starts 0x6c into the file); the section runs to the end of the payload
    section = _packimgs(report)
    assert (section["offset"], section["parent_path"]) == (0x120000, "/firmware.bin")
    assert (
        section["details"] == {"section_size": str(0x259000)}
        and section["offset"] + section["size"] == 3641376
    )
    layer = _layer(report, 0, "/section.bin")
    assert layer["status"] == "extracted" and not layer["note"]
    assert layer["details"]["compression"] == "lzma-5-byte-header"
    files = _files(report, layer)
    kinds = [f["kind"] for f in files.values()]
    # 1473 inodes = the root + 86 folders + 152 symlinks + 1169 regular files + 65 device nodes
    assert (kinds.count("directory"), kinds.count("symlink"), len(kinds)) == (86, 152, 86 + 152 + 1169)
    assert files["/bin/busybox"]["elf"] is not None
