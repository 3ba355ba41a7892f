"""cra-fw's own handlers for formats the backends lack or mis-handle.

One small class per format: ``find`` returns the regions of a file in that
format, ``extract`` writes a region's contents into a folder.  They run in
the same sandboxed child as the backend, before it, and win over it: backend
chunks inside a native region are dropped (recursion finds them again, one
level down, so the layer chain is the same whatever the backend).
"""

from __future__ import annotations

import mmap
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from cra_fw.unpack.formats import UIMAGE_TYPE


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    container: bool = True
    error: str = ""
    unsupported: bool = False


class NativeHandler:
    name: str = ""

    def find(self, data: mmap.mmap) -> list[Region]:
        raise NotImplementedError

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        raise NotImplementedError


class UImageHandler(NativeHandler):
    """Legacy U-Boot image: 64-byte big-endian header, CRC-checked, then the payload."""

    name = "uimage"
    MAGIC = b"\x27\x05\x19\x56"
    HEADER = struct.Struct(">IIIIIIIBBBB32s")

    def _header(self, data: mmap.mmap, pos: int) -> tuple | None:
        if pos + 64 > len(data):
            return None
        raw = bytes(data[pos:pos + 64])
        fields = self.HEADER.unpack(raw)
        hcrc = fields[1]
        if zlib.crc32(raw[:4] + b"\0\0\0\0" + raw[8:]) & 0xFFFFFFFF != hcrc:
            return None
        return fields

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        pos = data.find(self.MAGIC)
        while pos != -1:
            fields = self._header(data, pos)
            if fields is not None:
                end = pos + 64 + fields[3]
                error = ""
                if end > len(data):
                    error = f"uImage payload truncated: header says {fields[3]} bytes"
                    end = len(data)
                out.append(Region(pos, end, error=error))
                pos = data.find(self.MAGIC, end)
            else:
                pos = data.find(self.MAGIC, pos + 1)
        return out

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        fields = self._header(data, region.start)
        if fields is None:
            return
        outdir.mkdir(parents=True, exist_ok=True)
        image_type = UIMAGE_TYPE.get(fields[9], f"type{fields[9]}")
        body_start = region.start + 64
        if image_type == "multi":
            sizes = []
            pos = body_start
            while pos + 4 <= region.end and len(sizes) < 64:
                (n,) = struct.unpack_from(">I", data, pos)
                pos += 4
                if n == 0:
                    break
                sizes.append(n)
            for idx, n in enumerate(sizes):
                chunk = data[pos:min(pos + n, region.end)]
                (outdir / f"image{idx}.bin").write_bytes(chunk)
                pos += (n + 3) & ~3
            return
        (outdir / f"{image_type}.bin").write_bytes(data[body_start:region.end])


class LegacySquashfsProbe(NativeHandler):
    """Squashfs flavours that only sasquatch extracts: recognised and reported, not unpacked."""

    name = "squashfs"
    PATTERN = re.compile(rb"hsqs|sqsh|shsq|qshs")

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for match in self.PATTERN.finditer(data):
            pos = match.start()
            if pos + 96 > len(data):
                continue
            endian = "<" if data[pos:pos + 4] in (b"hsqs", b"shsq") else ">"
            major, minor = struct.unpack_from(endian + "HH", data, pos + 28)
            standard_v4 = major == 4 and minor == 0 and data[pos:pos + 4] == b"hsqs"
            if standard_v4 or major not in (1, 2, 3, 4) or minor > 1:
                continue
            if major == 4:
                size = struct.unpack_from(endian + "Q", data, pos + 40)[0]
            else:
                size = struct.unpack_from(endian + "I", data, pos + 8)[0]
            if not 96 < size <= len(data) - pos:
                continue
            out.append(Region(pos, pos + size, unsupported=True, error=f"squashfs {major}.{minor} "
                              f"({'big' if endian == '>' else 'little'}-endian or vendor variant) "
                              "needs sasquatch, which is not installed"))
        return out

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        return None


NATIVE_HANDLERS: tuple[NativeHandler, ...] = (UImageHandler(), LegacySquashfsProbe())
