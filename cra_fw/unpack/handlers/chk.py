"""Netgear CHK image: a named layer with the board id, region, version and every checksum checked.

Layout (big-endian): magic 0x2a23245e, header length (40 bytes plus the board
id), eight reserved bytes (region code, then the seven numbers A..G of a
"VA.B.C.D_E.F.G" release name), kernel and root filesystem checksums, their
lengths, the checksum of both together and the checksum of the header (taken
with that field zero), then the board id ("U12H072T00_NETGEAR").  Kernel and
root filesystem follow the header back to back.  The checksum is Netgear's
pair of running sums (:func:`cra_fw.unpack.checksums.netgear_sums`).  The
kernel part is usually a TRX image; each part becomes one file for recursion.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.regions import copy_members
from cra_fw.unpack.checksums import netgear_fold, netgear_sums
from cra_fw.unpack.native import NativeHandler, Region

MAGIC = b"\x2a\x23\x24\x5e"
FIXED = 40
MAX_BOARD = 64
MAX_PART = 1 << 30
REGIONS = {1: "WW", 2: "NA"}


def _verdict(got: int, want: int) -> str:
    return "ok" if got == want else "mismatch"


class ChkHandler(NativeHandler):
    name = "chk"

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, MAGIC, lambda pos: self._region(data, pos))

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + FIXED + MAX_BOARD])
        if len(head) < FIXED:
            return None
        (header_len,) = struct.unpack_from(">I", head, 4)
        reserved = head[8:16]
        k_sum, r_sum, k_len, r_len, image_sum, header_sum = struct.unpack_from(">6I", head, 16)
        board = head[FIXED:header_len]
        if not FIXED < header_len <= FIXED + MAX_BOARD or len(board) != header_len - FIXED:
            return None
        if not all(0x20 <= c < 0x7F for c in board) or not 0 < k_len <= MAX_PART or r_len > MAX_PART:
            return None
        details = {
            "board_id": board.decode("ascii"),
            "region": REGIONS.get(reserved[0], str(reserved[0])),
            "version": "V{}.{}.{}.{}_{}.{}.{}".format(*reserved[1:]),
            "kernel_length": str(k_len),
            "rootfs_length": str(r_len),
        }
        unsummed = head[:36] + b"\0\0\0\0" + board
        c0, c1 = netgear_sums(unsummed, 0, len(unsummed))
        details["header_checksum"] = _verdict(netgear_fold(c0, c1), header_sum)
        k_start = pos + header_len
        r_start = k_start + k_len
        end = r_start + r_len
        members = [("kernel.bin", k_start, min(k_len, len(data) - k_start))]
        if r_len and r_start < len(data):
            members.append(("rootfs.bin", r_start, min(r_len, len(data) - r_start)))
        if end > len(data):
            details["checksums"] = "truncated"
            return Region(
                pos,
                len(data),
                error=f"CHK image truncated: header says {end - pos} bytes",
                details=details,
                members=tuple(members),
            )
        k0, k1 = netgear_sums(data, k_start, r_start)
        r0, r1 = netgear_sums(data, r_start, end)
        details["kernel_checksum"] = _verdict(netgear_fold(k0, k1), k_sum)
        if r_len:
            details["rootfs_checksum"] = _verdict(netgear_fold(r0, r1), r_sum)
        # the whole image's sums follow from the parts' (one pass over the bytes)
        details["image_checksum"] = _verdict(netgear_fold(k0 + r0, k1 + r_len * k0 + r1), image_sum)
        return Region(pos, end, details=details, members=tuple(members))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        copy_members(path, region.members, outdir)
