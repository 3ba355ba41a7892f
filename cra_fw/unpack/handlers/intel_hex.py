"""Intel HEX (``zephyr.signed.hex``, ``merged.hex``): records to binary, one file per range.

Recognised when the file starts with a valid record; every record's checksum is
checked (bad ones are counted in the details, their data still placed), extended
segment/linear addresses are applied; each contiguous address range becomes
``0x<address>.bin``, so an MCUboot image or a vector table inside is unpacked one level
down.
"""

from __future__ import annotations

import mmap
import re

from cra_fw.unpack.handlers.memory_map import MemoryMap, RecordsHandler

RECORD = re.compile(rb":([0-9A-Fa-f]{2})([0-9A-Fa-f]{4})([0-9A-Fa-f]{2})([0-9A-Fa-f]*)\r?\n?")


def _read(data: mmap.mmap) -> tuple[MemoryMap, dict[str, str], int]:
    mem = MemoryMap()
    base = 0
    bad = 0
    records = 0
    start_addr = ""
    pos = 0
    end = len(data)
    while pos < end:
        while pos < end and data[pos] in b"\r\n \t":
            pos += 1
        if pos >= end:
            break
        match = RECORD.match(data, pos)
        if match is None:
            break
        count, addr, rtype = int(match.group(1), 16), int(match.group(2), 16), int(match.group(3), 16)
        body = bytes.fromhex(match.group(4).decode()) if len(match.group(4)) % 2 == 0 else b""
        pos = match.end()
        if len(body) != count + 1:
            break
        records += 1
        raw = bytes([count, addr >> 8, addr & 0xFF, rtype]) + body
        if sum(raw) & 0xFF:
            bad += 1
        payload = body[:-1]
        if rtype == 0:
            mem.add(base + addr, payload)
        elif rtype == 1:
            break
        elif rtype == 2 and len(payload) == 2:
            base = int.from_bytes(payload, "big") << 4
        elif rtype == 4 and len(payload) == 2:
            base = int.from_bytes(payload, "big") << 16
        elif rtype in (3, 5) and len(payload) == 4:
            start_addr = f"{int.from_bytes(payload, 'big'):#010x}"
    details = {"records": str(records), "bad_checksums": str(bad), "ranges": mem.describe()}
    if start_addr:
        details["start_address"] = start_addr
    return mem, details, pos


class IntelHexHandler(RecordsHandler):
    name = "intel-hex"

    def starts(self, data: mmap.mmap) -> bool:
        return RECORD.match(data, 0) is not None

    def read(self, data: mmap.mmap) -> tuple[MemoryMap, dict[str, str], int]:
        return _read(data)
