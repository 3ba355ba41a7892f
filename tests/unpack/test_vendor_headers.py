"""Vendor firmware headers are named layers with their fields, on real vendor images.

Expected fields were read by hand from each header (xxd) and, for the digests, recomputed
here with hashlib from the bytes of the image (TP-Link: MD5 over the image with the published
salt in place of the digest; DLOB/SEAMA: MD5 of the payload).
"""

from __future__ import annotations

import hashlib
import lzma
import zlib

import pytest

from tests.conftest import FIXTURE_IMAGES, SHARED_FIRMWARE, scan_cli

SHARED_MORE = SHARED_FIRMWARE.parent / "firmware-more" / "linux"
MR3020 = SHARED_FIRMWARE / "librarybox" / "openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin"
OM2P = SHARED_FIRMWARE / "wifirush" / "openwrt-ar71xx-generic-om2p-squashfs-factory.bin"
TPL_BOOT = SHARED_FIRMWARE / "fact" / "tpl_test.tpl"
DIR300 = SHARED_MORE / "dlink_DIR-300_REVB5_FIRMWARE_2.15.B01_WW.BIN"


def _unpack(path, tmp_path):
    if not path.exists():
        pytest.skip(f"{path.name} is not in ../shared")
    run = scan_cli(path, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    return run.report


def test_tplink_v1_openwrt_factory_image(tmp_path):
    report = _unpack(MR3020, tmp_path)
    (layer,) = [la for la in report["layers"] if la["format"] == "tplink"]
    assert (layer["offset"], layer["size"], layer["status"]) == (0, 3932160, "extracted")
    assert layer["details"] == {
        "header_version": "1",
        "vendor": "OpenWrt",
        "firmware_version": "r42647",
        "hw_id": "0x30200001",
        "hw_rev": "1",
        "region_code": "0",
        "kernel_load": "0x80060000",
        "kernel_entry": "0x80060000",
        "image_length": "3932160",
        "kernel_offset": "512",
        "kernel_length": "970444",
        "rootfs_offset": "1048576",
        "rootfs_length": "2098434",
        "md5": "ok (normal salt)",
    }
    raw = bytearray(MR3020.read_bytes())
    digest = bytes(raw[0x4C:0x5C])
    raw[0x4C:0x5C] = bytes.fromhex("dcd73aa5c39598fbddf9e7f40eae4738")
    assert hashlib.md5(raw).digest() == digest  # the check the layer reports, done independently
    children = {la["format"]: la for la in report["layers"] if la["parent_id"] == layer["id"]}
    # the root filesystem follows the kernel directly, not at the header's flash-layout offset
    assert children["squashfs"]["offset"] == 970444 and children["squashfs"]["parent_path"] == "/payload.bin"
    assert children["lzma"]["offset"] == 0
    # squashfs bytes_used (xxd at 0xececc + 40) is 2098434: the 0xff fill after it, with
    # 0xdeadc0de at flash offset 0x2f0000 (payload 0x2efe00, not 1 KiB-aligned in the file),
    # runs to the end of the image
    eof = children["jffs2-eof"]
    assert (eof["offset"], eof["size"], eof["status"]) == (
        0xECECC + 2098434,
        3932160 - 512 - 0x2ED3CE,
        "identified",
    )
    assert eof["details"] == {"markers": "1"}


def test_tplink_header_with_bootloader_and_nested_header(tmp_path):
    report = _unpack(TPL_BOOT, tmp_path)
    layers = [la for la in report["layers"] if la["format"] == "tplink"]
    assert [(la["offset"], la["parent_path"], la["details"]["md5"]) for la in layers] == [
        (0, "", "ok (boot salt)"),
        (0x20000, "/payload.bin", "ok (normal salt)"),
    ]
    outer = layers[0]["details"]
    assert (outer["vendor"], outer["firmware_version"], outer["version"]) == (
        "TP-LINK Technologies",
        "ver. 1.0",
        "3.17.2",
    )
    assert layers[1]["details"]["image_length"] == "3932160" and layers[1]["note"] == ""


def test_dlink_dlob_header(tmp_path):
    report = _unpack(DIR300, tmp_path)
    (layer,) = [la for la in report["layers"] if la["format"] == "dlob"]
    assert (layer["offset"], layer["size"], layer["status"]) == (0, DIR300.stat().st_size, "extracted")
    assert layer["details"] == {
        "signature": "wrgn49_dlob_dir300b5",
        "meta.dev": "/dev/mtdblock/2",
        "meta.type": "firmware",
        "payload_size": "3641376",
        "md5": "ok",
    }
    raw = DIR300.read_bytes()
    assert hashlib.md5(raw[0x6C:]).digest() == raw[0x38:0x48]
    assert not [la for la in report["layers"] if la["format"] == "unknown" and la["parent_id"] == "L0"]


def test_damaged_tplink_digest_is_reported_not_trusted(tmp_path):
    if not MR3020.exists():
        pytest.skip("librarybox image is not in ../shared")
    raw = bytearray(MR3020.read_bytes())
    raw[0x300] ^= 0xFF  # one byte of the kernel
    image = tmp_path / "flipped.bin"
    image.write_bytes(raw)
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    (layer,) = [la for la in run.report["layers"] if la["format"] == "tplink"]
    assert layer["details"]["md5"] == "mismatch"


HC5661 = SHARED_MORE / "openwrt-18.06.1-ramips-mt7620-hc5661-squashfs-sysupgrade.bin"


def test_openwrt_sysupgrade_metadata_and_jffs2_markers(tmp_path):
    """The fwtool metadata trailer and the JFFS2 end markers of a real OpenWrt image are named.

    Read by hand (xxd): 0xff fill from the end of the squashfs (0x3be322) with 0xdeadc0de at
    0x3bf000 and 0x3c0000; at 0x3c0004 the 8-byte fwtool header, the JSON metadata, and the
    16-byte "FWx0" trailer (type 1, size 0xa7) that ends the file.
    """
    report = _unpack(HC5661, tmp_path)
    top = {la["format"]: la for la in report["layers"] if la["parent_id"] == "L0"}
    assert set(top) == {"uimage", "squashfs", "jffs2-eof", "fwtool"}
    eof = top["jffs2-eof"]
    assert (eof["offset"], eof["size"], eof["status"], eof["details"]) == (
        0x3BE322,
        0x3C0004 - 0x3BE322,
        "identified",
        {"markers": "2"},
    )
    meta = top["fwtool"]
    assert (meta["offset"], meta["size"], meta["status"]) == (0x3C0004, 0xA7, "identified")
    assert meta["details"] == {
        "type": "metadata",
        "supported_devices": "hc5661",
        "version.dist": "OpenWrt",
        "version.version": "18.06.1",
        "version.revision": "r7258-5eb055306f",
        "version.board": "ramips",
        "crc": "ok",
    }
    raw = HC5661.read_bytes()
    # fwtool's CRC: the register starts at 0xffffffff and is stored without the final inversion
    assert zlib.crc32(raw[:-16]) ^ 0xFFFFFFFF == int.from_bytes(raw[-12:-8], "big")


def test_openmesh_combined_ext_image(tmp_path):
    """OpenMesh OM2P factory image: OpenWrt's "CE01" header names three files, MD5 each.

    Read by hand (xxd): "CE01", "OM2P" space-padded to 32, "03", then fwupgrade.cfg 0x18a,
    kernel 0xde87b, rootfs 0x280004 with their MD5s as hex; the header is zero-padded to 64 KiB
    and the files follow it back to back (0x10000 + the three sizes = the file size).
    """
    report = _unpack(OM2P, tmp_path)
    (layer,) = [la for la in report["layers"] if la["format"] == "combined-ext"]
    assert (layer["offset"], layer["size"], layer["status"]) == (0, 3598857, "extracted")
    assert layer["details"] == {
        "version": "1",
        "device": "OM2P",
        "files": "fwupgrade.cfg:394:ok,kernel:911483:ok,rootfs:2621444:ok",
    }
    raw = OM2P.read_bytes()
    start = 0x10000
    for index, size in enumerate((0x18A, 0xDE87B, 0x280004)):
        entry = raw[38 + 72 * index : 38 + 72 * (index + 1)]
        assert hashlib.md5(raw[start : start + size]).hexdigest() == entry[40:72].decode()
        start += size
    assert start == len(raw)
    children = {
        (la["format"], la["parent_path"]) for la in report["layers"] if la["parent_id"] == layer["id"]
    }
    assert children == {("uimage", "/kernel"), ("squashfs", "/rootfs"), ("jffs2-eof", "/rootfs")}
    cfg = [f for f in report["files"] if f["path"] == "/fwupgrade.cfg" and f["layer_id"] == layer["id"]]
    assert [f["size"] for f in cfg] == [0x18A]


ARCADYAN = SHARED_FIRMWARE / "binwalk" / "arcadyan.bin"


def test_arcadyan_obfuscated_lzma(tmp_path):
    """binwalk's Arcadyan test image: the obfuscation undone, the LZMA stream decoded.

    Read by hand (xxd, python): "30 05 11 20" at 0, "00 d5 08 00" at 0x68; with the two
    32-byte blocks swapped back and the one at 4 pair- and nibble-swapped, bytes 4..17 are
    the LZMA header 5d 00008000 2aed44 (8 MiB dictionary, 2813252 bytes); Python's lzma decodes
    the stream to its end at 733166.  The image's last 12 bytes are 733166, 0x12345678 and
    zlib's CRC-32 of bytes 0..733166 (checked here).
    """
    report = _unpack(ARCADYAN, tmp_path)
    (layer,) = [la for la in report["layers"] if la["format"] == "arcadyan"]
    assert (layer["offset"], layer["size"], layer["status"]) == (0, 733166, "extracted")
    assert layer["details"] == {
        "tag": "30051120",
        "dictionary_size": str(8 << 20),
        "uncompressed_size": "2813252",
        "footer_crc": "ok",
    }
    raw = ARCADYAN.read_bytes()
    assert int.from_bytes(raw[-12:-8], "little") == 733166
    assert zlib.crc32(raw[:733166]) == int.from_bytes(raw[-4:], "little")
    (lzma_layer,) = [la for la in report["layers"] if la["parent_id"] == layer["id"]]
    assert (lzma_layer["format"], lzma_layer["parent_path"]) == ("lzma", "/firmware.lzma")
    sizes = [f["size"] for f in report["files"] if f["layer_id"] == lzma_layer["id"]]
    assert sizes == [2813252]


def _obfuscate(plain: bytes) -> bytes:
    """Arcadyan's obfuscation, written from its description: swap the 32-byte blocks at 4 and
    0x68; the block that lands at 0x68 has its byte pairs and nibbles swapped."""
    block = bytearray(plain[4:36])
    block[0::2], block[1::2] = block[1::2], block[0::2]
    block = bytes(((b << 4) & 0xF0) | (b >> 4) for b in block)
    return plain[:4] + plain[0x68:0x88] + plain[36:0x68] + block + plain[0x88:]


def test_arcadyan_obfuscation_of_an_xz_utils_stream(tmp_path):
    """An LZMA stream made by liblzma (xz-utils) at preset 6, the 8 MiB dictionary the
    vendor's header shows, of the fixture kernel inside trx-v2.trx; then obfuscated."""
    trx = (FIXTURE_IMAGES / "vendor-headers" / "trx-v2.trx").read_bytes()
    stream = lzma.compress(lzma.decompress(trx[92 : 92 + 11980]), format=lzma.FORMAT_ALONE, preset=6)
    image = tmp_path / "arcadyan-made.bin"
    image.write_bytes(_obfuscate(b"\x04\x01\x09\x20" + stream) + b"\xff" * 64)
    assert image.read_bytes()[0x68:0x6C] == b"\x00\xd5\x08\x00"
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    (layer,) = [la for la in run.report["layers"] if la["format"] == "arcadyan"]
    assert (layer["offset"], layer["size"], layer["details"]["tag"]) == (0, 4 + len(stream), "04010920")
    written = [f for f in run.report["files"] if f["layer_id"] == layer["id"]]
    assert [(f["path"], f["sha256"]) for f in written] == [
        ("/firmware.lzma", hashlib.sha256(stream).hexdigest())
    ]
