"""OpenWrt's JFFS2 end-of-filesystem markers: erased flash with "deadc0de" at erase-block boundaries.

OpenWrt images end their root filesystem with 0xff padding and the word
0xdeadc0de at each of the next 1 KiB .. 64 KiB boundaries (firmware-utils'
``pad_jffs2``, ``-j``).  On first boot the kernel finds a marker and starts the
writable JFFS2 overlay there.  The run of 0xff bytes and markers is a named,
identified layer (nothing to unpack), not an unknown region.

Boundaries are the flash's, not the file's: inside a vendor header's payload
(a TP-Link image's is the flash image minus a 512-byte header) the first marker
is word-aligned only, so a marker is taken where at least 16 bytes of 0xff
precede it, and later ones at 1 KiB steps from the first.  The 0xff fill after
the last marker belongs to the layer.
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


def _fill_end(data: mmap.mmap, pos: int) -> int:
    """End of the run of 0xff bytes that starts at ``pos``."""
    end = pos
    while end < len(data):
        chunk = data[end : min(end + 4096, len(data))]
        stripped = chunk.lstrip(b"\xff")
        end += len(chunk) - len(stripped)
        if stripped:
            break
    return end


class Jffs2EofHandler(NativeHandler):
    name = "jffs2-eof"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        pos = data.find(MARKER)
        while pos != -1:
            if pos % 4 == 0 and pos >= 16 and data[pos - 16 : pos] == b"\xff" * 16:
                first = pos
                start = _fill_start(data, pos, out[-1].end if out else 0)
                markers = 1
                end = pos + 4
                nxt = data.find(MARKER, end)
                # the following markers sit in 0xff fill at the next boundaries
                while nxt != -1 and markers < MAX_MARKERS and (nxt - first) % ALIGN == 0:
                    if data[end:nxt].strip(b"\xff"):
                        break
                    markers += 1
                    end = nxt + 4
                    nxt = data.find(MARKER, end)
                end = _fill_end(data, end)
                out.append(Region(start, end, container=False, details={"markers": str(markers)}))
                pos = data.find(MARKER, end)
                continue
            pos = data.find(MARKER, pos + 1)
        return out

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        return None  # identified, not unpacked
