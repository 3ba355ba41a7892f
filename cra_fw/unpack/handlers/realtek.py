"""Realtek SDK image header (cvimg; used by Realtek-based Tenda, TRENDnet, Edimax... routers).

A 16-byte big-endian header: a four-character signature that names what
follows and for which SoC family ("cs6c": kernel for the newer RTL819x,
"cr6c": kernel and root filesystem, "r6cr": root filesystem, "csys"/"csro"/
"root" for other SoCs, "cs6b"/"cr6b"/"r6br" for the RTL8196B, "boot"), the
load address, the flash address it is burned to and the length of the data
that follows.  The data ends with a 16-bit word that makes the sum of all
its big-endian 16-bit words zero.  The data (without that word) becomes one file.
"""

from __future__ import annotations

import mmap
import re
import struct
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import word_sum16
from cra_fw.unpack.native import NativeHandler, Region

SIGNATURES: dict[bytes, tuple[str, str]] = {
    b"cs6b": ("kernel", "rtl8196b"),
    b"cs6c": ("kernel", "rtl819x"),
    b"csys": ("kernel", "other"),
    b"r6br": ("rootfs", "rtl8196b"),
    b"r6cr": ("rootfs", "rtl819x"),
    b"root": ("rootfs", "other"),
    b"cr6b": ("firmware", "rtl8196b"),
    b"cr6c": ("firmware", "rtl819x"),
    b"csro": ("firmware", "other"),
    b"boot": ("bootloader", "any"),
}
# "root" and "boot" are common words: only a verified checksum makes them a header
GENERIC = (b"root", b"boot")
PATTERN = re.compile(b"|".join(re.escape(s) for s in SIGNATURES))
HEADER = 16
MAX_LEN = 1 << 28


class RealtekHandler(NativeHandler):
    name = "realtek"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for match in PATTERN.finditer(data):
            pos = match.start()
            if out and pos < out[-1].end:
                continue
            region = self._region(data, pos)
            if region is not None:
                out.append(region)
        return out

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + HEADER])
        if len(head) < HEADER:
            return None
        sig = head[:4]
        start_addr, burn_addr, length = struct.unpack_from(">III", head, 4)
        body = pos + HEADER
        # the data is padded to whole words and ends with the checksum word
        if length < 4 or length % 2 or length > MAX_LEN or body + length > len(data):
            return None
        ok = word_sum16(data, body, body + length) == 0
        if not ok and sig in GENERIC:
            return None
        kind, soc = SIGNATURES[sig]
        details = {
            "signature": sig.decode(),
            "type": kind,
            "soc": soc,
            "load_address": f"{start_addr:#010x}",
            "burn_address": f"{burn_addr:#010x}",
            "data_length": str(length - 2),
            "checksum": "ok" if ok else "mismatch",
        }
        members = ((f"{kind}.bin", body, length - 2),)
        return Region(pos, body + length, details=details, members=members)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
