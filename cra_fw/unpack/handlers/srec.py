"""Motorola S-record (``.srec``/``.s19``/``.mot``): records to binary, one file per range.

S0 header (its text goes into the details), S1/S2/S3 data with 16/24/32-bit addresses,
S5/S6 counts, S7/S8/S9 start address; every record's checksum is checked (bad ones are
counted).  Each contiguous address range becomes ``0x<address>.bin``.
"""

from __future__ import annotations

import mmap
import re

from cra_fw.unpack.handlers.memory_map import MemoryMap, RecordsHandler

RECORD = re.compile(rb"S([0-9])([0-9A-Fa-f]{2})([0-9A-Fa-f]*)\r?\n?")
ADDRESS_BYTES = {0: 2, 1: 2, 2: 3, 3: 4, 5: 2, 6: 3, 7: 4, 8: 3, 9: 2}


def _read(data: mmap.mmap) -> tuple[MemoryMap, dict[str, str], int]:
    mem = MemoryMap()
    records = bad = 0
    header = start = ""
    pos, end = 0, len(data)
    while pos < end:
        while pos < end and data[pos] in b"\r\n \t":
            pos += 1
        match = RECORD.match(data, pos) if pos < end else None
        if match is None:
            break
        kind = int(match.group(1))
        hexbody = match.group(3)
        if kind == 4 or len(hexbody) % 2:
            break
        body = bytes.fromhex(hexbody.decode())
        count = int(match.group(2), 16)
        if len(body) != count:
            break
        pos = match.end()
        records += 1
        if (count + sum(body)) & 0xFF != 0xFF:
            bad += 1
        width = ADDRESS_BYTES[kind]
        address = int.from_bytes(body[:width], "big")
        payload = body[width:-1]
        if kind in (1, 2, 3):
            mem.add(address, payload)
        elif kind == 0:
            header = payload.decode("latin-1").strip("\0")[:80]
        elif kind in (7, 8, 9):
            start = f"{address:#010x}"
            break
    details = {"records": str(records), "bad_checksums": str(bad), "ranges": mem.describe()}
    if header:
        details["header"] = header
    if start:
        details["start_address"] = start
    return mem, details, pos


class SrecHandler(RecordsHandler):
    name = "srec"

    def starts(self, data: mmap.mmap) -> bool:
        return RECORD.match(data, 0) is not None and bytes(data[:2]) in (b"S0", b"S1", b"S2", b"S3")

    def read(self, data: mmap.mmap) -> tuple[MemoryMap, dict[str, str], int]:
        return _read(data)
