"""Vendor firmware headers made by the real tools: named layers, their fields, every checksum checked.

``fixtures/images/vendor-headers/`` was written by the vendors' and OpenWrt's own tools, built
once from their published source (``docs/fixtures.md``: tool, source, commit, command line):
OpenWrt firmware-utils ``trx``, ``mkchkimg``, ``mkfwimage``, ``mktplinkfw2``, ``cvimg`` and
``zyimage``, and Alpha Networks' ``seama`` 0.20.  Every image carries the same payload: an LZMA
"kernel" (``lzma -9`` of Debian's ``/usr/bin/true``, 11980 bytes) and a squashfs made by
Debian's mksquashfs 4.5.1 (4096 bytes) holding ``/etc/banner``.

The expected fields come from the command lines and the payload sizes (offsets worked out by
hand in the comments), and each checksum is recomputed here independently, from the bytes,
with zlib/hashlib and plain loops, never with cra-fw's code.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest

from cra_fw.unpack.handlers.chk import ChkHandler
from cra_fw.unpack.handlers.combined_ext import CombinedExtHandler
from cra_fw.unpack.handlers.realtek import RealtekHandler
from cra_fw.unpack.handlers.seama import SeamaHandler
from cra_fw.unpack.handlers.tplink import TplinkHandler
from cra_fw.unpack.handlers.trx import TrxHandler
from cra_fw.unpack.handlers.ubiquiti import UbiquitiHandler
from cra_fw.unpack.handlers.zyxel import ZyxelHandler
from cra_fw.unpack.native import mapped
from tests.conftest import FIXTURE_IMAGES, scan_cli

VENDOR = FIXTURE_IMAGES / "vendor-headers"
BANNER = hashlib.sha256(b"cra-fw vendor header fixture\n").hexdigest()
KERNEL, ROOTFS = 11980, 4096  # payload sizes
UBNT_BLOCKS = "kernel:1:0x9f050000:11980,rootfs:2:0x9f052ecc:4096"  # rootfs base = 0x9f050000 + 11980

# image: (layer format, size, details, the member files holding the kernel and the squashfs)
WANT: dict[str, tuple[str, int, dict[str, str], str, str]] = {
    # header 28 + kernel 11980 = 12008; + squashfs, rounded by trx to 4 KiB
    "trx-v2.trx": (
        "trx",
        16384,
        # header 32, loader 57 -> 89 aligned to 92, + kernel 11980 = 12072, + 4096 = 16168
        {
            "version": "2",
            "flags": "0x0000",
            "length": "16384",
            "partitions": "32,92,12072,16168",
            "crc": "ok",
        },
        "/partition1.bin",
        "/partition2.bin",
    ),
    # mkchkimg -k trx-v1.trx -b U12H072T00_NETGEAR -r 2: 40 + 18-byte board id + the TRX
    "netgear.chk": (
        "chk",
        58 + 16384,
        {
            "board_id": "U12H072T00_NETGEAR",
            "region": "NA",
            "version": "V99.99.99.99_99.99.99",  # mkchkimg writes 99 for each release number
            "kernel_length": "16384",
            "rootfs_length": "0",
            "header_checksum": "ok",
            "kernel_checksum": "ok",
            "image_checksum": "ok",
        },
        "/partition0.bin",  # inside the TRX that is the CHK's kernel part
        "/partition1.bin",
    ),
    # header 268 + (56 + 11980 + 8) + (56 + 4096 + 8) + "END." 12
    "ubnt-xm.bin": (
        "ubiquiti",
        16484,
        {
            "version": "XM.ar7240.v6.3.0.30916.fixture",
            "header_crc": "ok",
            "board": "XM",
            "soc": "ar7240",
            "firmware_version": "6.3.0",
            "blocks": UBNT_BLOCKS,
            "block_crc": "ok",
            "end": "crc ok",
        },
        "/kernel.bin",
        "/rootfs.bin",
    ),
    # -m UBNT, board WA: a signed end block "ENDS" (4 + 256 + 4) instead of "END."
    "ubnt-wa-signed.bin": (
        "ubiquiti",
        16736,
        {
            "version": "WA.ar934x.v8.7.4.45199.fixture",
            "header_crc": "ok",
            "board": "WA",
            "soc": "ar934x",
            "firmware_version": "8.7.4",
            "blocks": UBNT_BLOCKS,
            "block_crc": "ok",
            "end": "rsa signature (not checked)",
        },
        "/kernel.bin",
        "/rootfs.bin",
    ),
    # -F 8Mmtk (length 0x7a0000, load 0x80000000), rootfs aligned to 0x1000 after 512 + 11980,
    # -s strips the padding: the file ends after the squashfs (16384 + 4096)
    "tplink-v2.bin": (
        "tplink",
        20480,
        {
            "header_version": "2",
            "firmware_version": "ver. 2.0",
            "hw_id": "0x08850002",
            "hw_rev": "1",
            "hw_ver_add": "0",
            "kernel_load": "0x80000000",
            "kernel_entry": "0x80000000",
            "image_length": str(0x7A0000),
            "md5": "ok (normal salt)",
            "version": "3.14.1",
            "secondary_version": "1.0",
            "kernel_offset": "512",
            "kernel_length": "11980",
            "rootfs_offset": "16384",
            "rootfs_length": "4096",
            "padding_stripped": "yes",
        },
        "/payload.bin",
        "/payload.bin",
    ),
    "tplink-v3.bin": (
        "tplink",
        20480,
        {
            "header_version": "3",
            "firmware_version": "ver. 3.0",
            "hw_id": "0x08850003",
            "hw_rev": "3",
            "hw_ver_add": "4",
            "kernel_load": "0x80000000",
            "kernel_entry": "0x80000000",
            "image_length": str(0x7B0000),
            "md5": "ok (normal salt)",
            "version": "1.2.3",
            "secondary_version": "2.5",
            "kernel_offset": "512",
            "kernel_length": "11980",
            "rootfs_offset": "16384",
            "rootfs_length": "4096",
            "padding_stripped": "yes",
        },
        "/payload.bin",
        "/payload.bin",
    ),
    # 12 + MD5 16 + metadata "dev=/dev/mtdblock/2\0type=firmware\0" (34, padded to 36) + 16384
    "seama-single.bin": (
        "seama",
        16448,
        {"meta.dev": "/dev/mtdblock/2", "meta.type": "firmware", "payload_size": "16384", "md5": "ok"},
        "/firmware.bin",
        "/firmware.bin",
    ),
    # seama -s: a record of only "signature=fixture_dlob_cra_fw\0" (30, padded to 32), then the record
    "seama-sealed.bin": (
        "dlob",
        12 + 32 + 16448,
        {
            "signature": "fixture_dlob_cra_fw",
            "meta.dev": "/dev/mtdblock/2",
            "meta.type": "firmware",
            "payload_size": "16384",
            "md5": "ok",
        },
        "/firmware.bin",
        "/firmware.bin",
    ),
    # cvimg -t fw -c new -e 0x80c00000 -b 0x30000 -a 4k: 16-byte header + 16384 + checksum word
    "realtek-cr6c.bin": (
        "realtek",
        16 + 16384 + 2,
        {
            "signature": "cr6c",
            "type": "firmware",
            "soc": "rtl819x",
            "load_address": "0x80c00000",
            "burn_address": "0x00030000",
            "data_length": "16384",
            "checksum": "ok",
        },
        "/firmware.bin",
        "/firmware.bin",
    ),
    "realtek-csys.bin": (
        "realtek",
        16 + 11980 + 2,
        {
            "signature": "csys",
            "type": "kernel",
            "soc": "other",
            "load_address": "0x80500000",
            "burn_address": "0x00030000",
            "data_length": "11980",
            "checksum": "ok",
        },
        "/kernel.bin",
        "",
    ),
    # zyimage -v "V1.00(AAVX.0)C0" -d 0x804410: a 60-byte trailer after the 16384-byte image
    "zyxel-znbg.bin": (
        "zyxel",
        16384 + 60,
        {
            "firmware_version": "V1.00(AAVX.0)C0",
            "device_id": "0x00804410",
            "byte_order": "little",
            "crc": "ok",
        },
        "/image.bin",
        "/image.bin",
    ),
    # combined-ext-image.sh OM2P om2p-ce01.bin fwupgrade.cfg fwupgrade.cfg kernel.lzma kernel
    # rootfs.sqfs rootfs: the header padded to 64 KiB, then the three files (132 + 11980 + 4096)
    "om2p-ce01.bin": (
        "combined-ext",
        65536 + 132 + KERNEL + ROOTFS,
        {
            "version": "1",
            "device": "OM2P",
            "files": f"fwupgrade.cfg:132:ok,kernel:{KERNEL}:ok,rootfs:{ROOTFS}:ok",
        },
        "/kernel",
        "/rootfs",
    ),
}


@pytest.mark.parametrize("name", sorted(WANT))
def test_vendor_header_made_by_the_real_tool(tmp_path, name):
    fmt, size, details, kernel_at, rootfs_at = WANT[name]
    run = scan_cli(VENDOR / name, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    report = run.report
    (layer,) = [la for la in report["layers"] if la["parent_id"] == "L0" and la["format"] == fmt]
    assert (layer["offset"], layer["size"], layer["status"], layer["extractor"], layer["note"]) == (
        0,
        size,
        "extracted",
        "cra-fw",
        "",
    )
    assert layer["details"] == details
    found = {(la["format"], la["parent_path"]) for la in report["layers"]}
    assert ("lzma", kernel_at) in found
    if rootfs_at:
        (sqfs,) = [la for la in report["layers"] if la["format"] == "squashfs"]
        assert sqfs["parent_path"] == rootfs_at and sqfs["size"] == ROOTFS
        banner = [f for f in report["files"] if f["path"] == "/etc/banner" and f["layer_id"] == sqfs["id"]]
        assert [f["sha256"] for f in banner] == [BANNER]
    assert not [la for la in report["layers"] if la["format"] == "unknown"]


# ---- the checksums the layers call "ok", recomputed from the bytes ---------------------------


def _netgear(data: bytes) -> int:
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) & 0xFFFFFFFF
        c1 = (c1 + c0) & 0xFFFFFFFF
    fold = [(c & 0xFFFF) + (c >> 16) for c in (c0, c1)]
    c0, c1 = (((b >> 16) + b) & 0xFFFF for b in fold)
    return (c1 << 16) | c0


def test_checksums_recomputed_independently():
    raw = (VENDOR / "netgear.chk").read_bytes()
    k_sum, _r, k_len, _rl, image_sum, header_sum = struct.unpack_from(">6I", raw, 16)
    assert _netgear(raw[58 : 58 + k_len]) == k_sum == image_sum  # no root filesystem part
    assert _netgear(raw[:36] + b"\0" * 4 + raw[40:58]) == header_sum
    trx = raw[58:]
    assert zlib.crc32(trx[12:16384]) ^ 0xFFFFFFFF == struct.unpack_from("<I", trx, 8)[0]

    v2 = bytearray((VENDOR / "trx-v2.trx").read_bytes())
    v2[16168 + 22 : 16168 + 30] = b"\xff" * 8  # CFE's view of the bin header
    assert zlib.crc32(v2[12:]) ^ 0xFFFFFFFF == struct.unpack_from("<I", v2, 8)[0]

    ub = (VENDOR / "ubnt-xm.bin").read_bytes()
    assert zlib.crc32(ub[:260]) == struct.unpack_from(">I", ub, 260)[0]
    assert zlib.crc32(ub[268 : 268 + 56 + KERNEL]) == struct.unpack_from(">I", ub, 268 + 56 + KERNEL)[0]
    assert ub[-12:-8] == b"END." and zlib.crc32(ub[:-12]) == struct.unpack_from(">I", ub, len(ub) - 8)[0]

    for name in ("tplink-v2.bin", "tplink-v3.bin"):
        tp = bytearray((VENDOR / name).read_bytes())
        stored = bytes(tp[0x40:0x50])
        tp[0x40:0x50] = bytes.fromhex("dcd73aa5c39598fbdcf9e7f40eae4737")  # mktplinkfw2's "normal" salt
        assert hashlib.md5(tp).digest() == stored

    se = (VENDOR / "seama-single.bin").read_bytes()
    assert hashlib.md5(se[-16384:]).digest() == se[12:28]

    for name in ("realtek-cr6c.bin", "realtek-csys.bin"):
        rt = (VENDOR / name).read_bytes()
        (length,) = struct.unpack_from(">I", rt, 12)
        words = struct.unpack(f">{length // 2}H", rt[16 : 16 + length])
        assert sum(words) % 0x10000 == 0

    ce = (VENDOR / "om2p-ce01.bin").read_bytes()
    start = 65536
    for index, size in enumerate((132, KERNEL, ROOTFS)):
        entry = ce[38 + 72 * index : 38 + 72 * (index + 1)]
        assert int(entry[32:40], 16) == size
        assert hashlib.md5(ce[start : start + size]).hexdigest() == entry[40:].decode()
        start += size
    assert start == len(ce)

    zy = (VENDOR / "zyxel-znbg.bin").read_bytes()
    assert zlib.crc32(zy[:-60]) ^ 0xFFFFFFFF == struct.unpack_from("<I", zy, len(zy) - 4)[0]


# ---- damaged and truncated images: the layer says so, nothing is trusted -----------------------

# image, handler, offset of one byte inside the payload's squashfs, the field that must say so
DAMAGE = [
    ("netgear.chk", ChkHandler(), 58 + 12008 + 100, "kernel_checksum", "mismatch"),
    ("trx-v2.trx", TrxHandler(), 12072 + 100, "crc", "mismatch"),
    ("ubnt-xm.bin", UbiquitiHandler(), 268 + 56 + KERNEL + 8 + 56 + 100, "block_crc", "mismatch: rootfs"),
    ("tplink-v3.bin", TplinkHandler(), 16384 + 100, "md5", "mismatch"),
    ("seama-single.bin", SeamaHandler(), 16448 - 4096 + 100, "md5", "mismatch"),
    ("realtek-cr6c.bin", RealtekHandler(), 16 + 12288 + 100, "checksum", "mismatch"),
    ("zyxel-znbg.bin", ZyxelHandler(), 12288 + 100, "crc", "mismatch"),
    (
        "om2p-ce01.bin",
        CombinedExtHandler(),
        65536 + 132 + KERNEL + 100,
        "files",
        f"fwupgrade.cfg:132:ok,kernel:{KERNEL}:ok,rootfs:{ROOTFS}:mismatch",
    ),
]


def _find(handler, path: Path):
    with mapped(path) as data:
        return handler.find(data)


@pytest.mark.parametrize(
    ("name", "handler", "offset", "field", "verdict"), DAMAGE, ids=[d[0] for d in DAMAGE]
)
def test_one_flipped_bit_is_a_mismatch(tmp_path, name, handler, offset, field, verdict):
    raw = bytearray((VENDOR / name).read_bytes())
    raw[offset] ^= 0x01
    image = tmp_path / name
    image.write_bytes(raw)
    (region,) = _find(handler, image)
    assert region.details[field] == verdict


@pytest.mark.parametrize(("name", "handler"), [(d[0], d[1]) for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_truncated_image_is_named_and_says_so(tmp_path, name, handler):
    raw = (VENDOR / name).read_bytes()
    image = tmp_path / name
    image.write_bytes(raw[: len(raw) - 5000])
    regions = _find(handler, image)
    if isinstance(handler, ZyxelHandler | RealtekHandler):
        # a trailer that was cut off, or a header whose length runs past the end: nothing to name
        assert regions == []
        return
    (region,) = regions
    assert region.start == 0 and region.end == len(raw) - 5000
    assert region.error or region.details.get("md5") == "truncated"
