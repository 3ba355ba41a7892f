"""YAFFS2 NAND images: recognised by cra-fw's own handler and extracted with unyaffs."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess

import pytest

from tests.conftest import SHARED_FIRMWARE, scan_cli

SHARED_YAFFS = SHARED_FIRMWARE / "binwalk" / "yaffs2.bin"
needs_unyaffs = pytest.mark.skipif(shutil.which("unyaffs") is None, reason="unyaffs is not installed")


@needs_unyaffs
@pytest.mark.skipif(not SHARED_YAFFS.exists(), reason="shared firmware yaffs2.bin is absent")
@pytest.mark.parametrize("backend", ["unblob", "binwalk"])
def test_real_yaffs2_image_is_unpacked(tmp_path, backend):
    run = scan_cli(SHARED_YAFFS, tmp_path / "out", "--extractor", backend, command="unpack")
    assert run.returncode == 0, run.stderr
    report = run.report
    layers = [la for la in report["layers"] if la["format"] == "yaffs2"]
    assert [(la["offset"], la["size"], la["status"], la["details"]) for la in layers] == [
        (0, SHARED_YAFFS.stat().st_size, "extracted", {"endianness": "little"})
    ]
    files = {f["path"]: f for f in report["files"] if f["layer_id"] == layers[0]["id"]}
    # the listing the image's own tool gives, independently of cra-fw
    listing = subprocess.run(
        ["unyaffs", "-t", str(SHARED_YAFFS)], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert sorted(files) == sorted(f"/{name}" for name in listing)
    assert len(files) == 13
    assert files["/mkyaffs2image.c"]["size"] == 15107
    text = tmp_path / "ref"
    text.mkdir()
    subprocess.run(["unyaffs", str(SHARED_YAFFS), str(text)], check=True, capture_output=True)
    want = hashlib.sha256((text / "yaffs_guts.h").read_bytes()).hexdigest()
    assert files["/yaffs_guts.h"]["sha256"] == want


@needs_unyaffs
def test_fake_yaffs2_header_fails_cleanly(tmp_path):
    # a valid-looking first object header, then garbage: recognised, extraction fails, no traceback
    header = struct.pack("<II", 1, 1) + b"\xff\xff" + b"passwd".ljust(256, b"\0")
    image = tmp_path / "fake.yaffs2"
    image.write_bytes(header.ljust(4096, b"\0") + bytes(range(256)) * 64)
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 3)
    report = run.report
    assert [la["format"] for la in report["layers"] if la["format"] == "yaffs2"] == ["yaffs2"]
    assert not [f for f in report["files"] if f["path"] == "/passwd"]


def test_text_that_is_not_yaffs2_is_not_taken_for_it(tmp_path):
    image = tmp_path / "notes.txt"
    image.write_bytes(b"\x01\x00\x00\x00\x01\x00\x00\x00\xff\xff\x01\x02binary name" + b"\0" * 5000)
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    assert not [la for la in run.report["layers"] if la["format"] == "yaffs2"]
