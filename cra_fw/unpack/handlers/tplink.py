"""TP-Link firmware header (v1, and the v2/v3 layout of newer models): a named layer with its fields.

Layout (big-endian, 512 bytes): header version, vendor name and firmware version
strings, hardware id and revision, an MD5 over the image with a fixed salt in
place of the digest ("normal" salt, or the "boot" salt when a bootloader is
included), kernel load/entry addresses, the image length and the offsets and
lengths of kernel, root filesystem and bootloader.  v2/v3 drop the vendor name,
widen the version string and move every later field 12 bytes up (magic 0x55aa
at 0x8c, 0xa5 at 0x90).  The digest is checked and reported, never trusted
for anything else.  The offsets are reported but not used to cut the image:
OpenWrt's factory images keep the flash layout's rootfs offset in the header
while placing the root filesystem right after the kernel.  Extraction writes
everything after the header as one file, and recursion finds the kernel, the
root filesystem and the padding in it.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.checksums import digest
from cra_fw.unpack.native import NativeHandler, Region

HEADER = 512
SALTS_V1 = {
    "normal": bytes.fromhex("dcd73aa5c39598fbddf9e7f40eae4738"),
    "boot": bytes.fromhex("8cef335bd5c5cefaa79c28dab2e90f42"),
}
SALTS_V2 = {
    "normal": bytes.fromhex("dcd73aa5c39598fbdcf9e7f40eae4737"),
    "boot": bytes.fromhex("8cef335fd5c5cefaac9c28dab2e90f42"),
}
# version word, then a printable string (vendor name in v1, firmware version in v2/v3)
ANCHOR = re.compile(rb"(?:\x01|\x02|\x03)\x00\x00\x00[\x20-\x7e]{2,47}\x00", re.DOTALL)
MAX_IMAGE = 1 << 30


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1")


def parse(data: mmap.mmap | bytes, pos: int) -> tuple[dict[str, str], int] | None:
    """(details, image length) of the header at ``pos``, or None.

    The image length is the header's, or the bytes present when the digest covers exactly
    those (mktplinkfw2 ``-s`` strips the padding but keeps the flash layout's length).
    """
    head = bytes(data[pos : pos + HEADER])
    if len(head) < HEADER:
        return None
    version = head[0]
    if version == 1:
        vendor, fw_version = _text(head[4:28]), _text(head[28:64])
        hw_id, hw_rev, third = struct.unpack_from(">III", head, 0x40)
        md5_at, fields_at, salts = 0x4C, 0x74, SALTS_V1
        ver = struct.unpack_from(">HHH", head, 0x98)
        sver: tuple[int, ...] = ()
    else:
        if head[0x8C:0x8E] != b"\x55\xaa" or head[0x90] != 0xA5:
            return None
        vendor, fw_version = "", _text(head[4:0x34])
        hw_id, hw_rev, third = struct.unpack_from(">III", head, 0x34)
        md5_at, fields_at, salts = 0x40, 0x68, SALTS_V2
        ver = (head[0x91], head[0x92], head[0x93])
        sver = (head[0x8E], head[0x8F])
    kla, kep, fw_len, kofs, klen, rofs, rlen, bofs, blen = struct.unpack_from(">9I", head, fields_at)
    if not hw_id or not HEADER <= fw_len <= MAX_IMAGE or not 0 < klen <= fw_len:
        return None
    if kofs < HEADER or kofs + klen > fw_len or rofs > fw_len or bofs + blen > fw_len:
        return None
    available = min(fw_len, len(data) - pos)
    stored = head[md5_at : md5_at + 16]
    check = "truncated" if available < min(fw_len, kofs + klen) else "mismatch"
    for name, salt in salts.items():
        if (
            digest(data, pos + HEADER, pos + available, "md5", head[:md5_at] + salt + head[md5_at + 16 :])
            == stored
        ):
            check = f"ok ({name} salt)"
            break
    details = {
        "header_version": str(version),
        "firmware_version": fw_version,
        "hw_id": f"{hw_id:#010x}",
        "hw_rev": str(hw_rev),
        # v1 has the region code here, v2/v3 an additional hardware version
        ("region_code" if version == 1 else "hw_ver_add"): str(third),
        "kernel_load": f"{kla:#010x}",
        "kernel_entry": f"{kep:#010x}",
        "image_length": str(fw_len),
        "md5": check,
    }
    if vendor:
        details["vendor"] = vendor
    if any(ver):
        details["version"] = ".".join(str(v) for v in ver)
    if any(sver):
        details["secondary_version"] = ".".join(str(v) for v in sver)
    details["kernel_offset"], details["kernel_length"] = str(kofs), str(klen)
    details["rootfs_offset"], details["rootfs_length"] = str(rofs), str(rlen)
    if blen:
        details["boot_offset"], details["boot_length"] = str(bofs), str(blen)
    if available < fw_len and check.startswith("ok"):
        details["padding_stripped"] = "yes"
        return details, available
    return details, fw_len


def _anchors(data: mmap.mmap) -> Iterator[int]:
    """Where ``ANCHOR.finditer`` would match, found with ``find`` on the version words.

    The regex engine tries every byte of the file (seconds for 200 MB); the version word
    is a 4-byte literal that ``find`` skips to, and the regex then checks only there.
    """
    words = [bytes([version, 0, 0, 0]) for version in (1, 2, 3)]
    nxt = [data.find(word, 0) for word in words]
    after = 0  # finditer's matches never overlap
    while True:
        live = [hit for hit in nxt if hit != -1]
        if not live:
            return
        pos = min(live)
        nxt = [data.find(word, pos + 1) if hit == pos else hit for word, hit in zip(words, nxt, strict=True)]
        if pos < after:
            continue
        match = ANCHOR.match(data, pos)  # type: ignore[call-overload]
        if match is not None:
            after = match.end()
            yield pos


class TplinkHandler(NativeHandler):
    name = "tplink"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for pos in _anchors(data):
            if out and pos < out[-1].end:
                continue
            parsed = parse(data, pos)
            if parsed is None:
                continue
            details, fw_len = parsed
            end = min(pos + fw_len, len(data))
            error = "" if end == pos + fw_len else f"image truncated: header says {fw_len} bytes"
            out.append(Region(pos, end, error=error, details=details))
        return out

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        copy_region(path, region.start + HEADER, region.end, outdir / "payload.bin")
