"""Shared by the address-record handlers (Intel HEX, S-record, UF2, DfuSe): bytes at
addresses, bounded, written out as one file per contiguous range."""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.unpack.native import NativeHandler, Region, mapped

MAX_IMAGE_BYTES = 256 << 20  # an MCU address space; more is a hostile file
MAX_GAP = 0x1000  # gaps up to this are filled with 0xFF (erased flash), larger ones split files
MAX_RANGES = 64


class MemoryMap:
    """Chunks of (address, bytes) collected from records, merged into ranges."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.total = 0

    def add(self, address: int, payload: bytes) -> None:
        self.total += len(payload)
        if self.total > MAX_IMAGE_BYTES:
            raise ValueError(f"more than {MAX_IMAGE_BYTES} bytes of records")
        self.chunks.append((address, payload))

    def ranges(self) -> list[tuple[int, int]]:
        """(start address, end address) of each contiguous range (small gaps bridged)."""
        out: list[list[int]] = []
        for addr, payload in sorted(self.chunks, key=lambda c: c[0]):
            end = addr + len(payload)
            if out and addr <= out[-1][1] + MAX_GAP:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([addr, end])
        return [(a, b) for a, b in out]

    def write(self, outdir: Path, prefix: str = "") -> list[str]:
        """One file per range, ``<prefix>0x<address>.bin``; returns the names written."""
        outdir.mkdir(parents=True, exist_ok=True)
        ranges = self.ranges()[:MAX_RANGES]
        names = []
        chunks = sorted(self.chunks, key=lambda c: c[0])
        for start, end in ranges:
            buf = bytearray(b"\xff" * (end - start))
            for addr, payload in chunks:
                if start <= addr < end:
                    buf[addr - start : addr - start + len(payload)] = payload
            name = f"{prefix}{start:#010x}.bin"
            (outdir / name).write_bytes(bytes(buf))
            names.append(name)
        return names

    def describe(self) -> str:
        return " ".join(f"{a:#010x}-{b:#010x}" for a, b in self.ranges()[:MAX_RANGES])


class RecordsHandler(NativeHandler):
    """A text file of address records (Intel HEX, S-record) at the start of a file."""

    MAX_FILE = 512 << 20

    def starts(self, data: mmap.mmap) -> bool:
        raise NotImplementedError

    def read(self, data: mmap.mmap) -> tuple[MemoryMap, dict[str, str], int]:
        """(bytes at addresses, details, end of the last record read)."""
        raise NotImplementedError

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) > self.MAX_FILE or not self.starts(data):
            return []
        try:
            mem, details, end = self.read(data)
        except ValueError as exc:
            return [Region(0, len(data), error=str(exc))]
        if not mem.chunks:
            return []
        bad = details["bad_checksums"]
        error = f"{bad} records with a bad checksum" if bad != "0" else ""
        # trailing blank lines or a short tail belong to the file; more is something else
        return [Region(0, len(data) if len(data) - end < 64 else end, error=error, details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            mem, _details, _end = self.read(data)
            mem.write(outdir)
