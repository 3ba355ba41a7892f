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
from pathlib import Path

from cra_fw.unpack.handlers.memory_map import MemoryMap
from cra_fw.unpack.native import NativeHandler, Region

RECORD = re.compile(rb":([0-9A-Fa-f]{2})([0-9A-Fa-f]{4})([0-9A-Fa-f]{2})([0-9A-Fa-f]*)\r?\n?")
MAX_FILE = 512 << 20


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


class IntelHexHandler(NativeHandler):
    name = "intel-hex"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) > MAX_FILE or RECORD.match(data, 0) is None:
            return []
        try:
            mem, details, end = _read(data)
        except ValueError as exc:
            return [Region(0, len(data), error=str(exc))]
        if not mem.chunks:
            return []
        error = (
            f"{details['bad_checksums']} records with a bad checksum"
            if details["bad_checksums"] != "0"
            else ""
        )
        return [Region(0, len(data) if len(data) - end < 64 else end, error=error, details=details)]

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        mem, _details, _end = _read(data)
        mem.write(outdir)
