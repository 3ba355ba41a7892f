"""OpenWrt's JFFS2 end-of-filesystem markers: erased flash with "deadc0de" at erase-block boundaries.

OpenWrt images end their root filesystem with 0xff padding and the word
0xdeadc0de at each of the next 1 KiB .. 64 KiB boundaries (firmware-utils'
``pad_jffs2``, ``-j``).  On first boot the kernel finds a marker and starts the
writable JFFS2 overlay there.  The run of 0xff bytes and markers is a named,
identified layer (nothing to unpack), not an unknown region.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.unpack.native import NativeHandler, Region

MARKER = b"\xde\xad\xc0\xde"
ALIGN = 1024
MAX_MARKERS = 64


def _fill_start(data: mmap.mmap, pos: int, floor: int) -> int:
    """Start of the run of 0xff bytes that ends at ``pos`` (not before ``floor``)."""
    start = pos
    while start > floor:
        step = min(4096, start - floor)
        chunk = data[start - step : start]
        stripped = chunk.rstrip(b"\xff")
        start -= step - len(stripped)
        if stripped:
            break
    return start


class Jffs2EofHandler(NativeHandler):
    name = "jffs2-eof"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        pos = data.find(MARKER)
        while pos != -1:
            if pos % ALIGN == 0 and pos >= 16 and data[pos - 16 : pos] == b"\xff" * 16:
                start = _fill_start(data, pos, out[-1].end if out else 0)
                markers = 1
                end = pos + 4
                nxt = data.find(MARKER, end)
                # the following markers sit in 0xff fill at the next boundaries
                while nxt != -1 and markers < MAX_MARKERS and nxt % ALIGN == 0:
                    if data[end:nxt].strip(b"\xff"):
                        break
                    markers += 1
                    end = nxt + 4
                    nxt = data.find(MARKER, end)
                out.append(Region(start, end, container=False, details={"markers": str(markers)}))
                pos = data.find(MARKER, end)
                continue
            pos = data.find(MARKER, pos + 1)
        return out

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        return None  # identified, not unpacked
