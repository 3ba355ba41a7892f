"""cpio archive headers (newc, crc, odc), walked in place: names, modes and where each member's
data lies, never the data itself.  Shared by unpacking (modes, member checks) and the
SWUpdate verifier."""

from __future__ import annotations

import mmap
from collections.abc import Iterator


def cpio_entries(
    data: bytes | mmap.mmap, pos: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, int, int]]:
    """(name, mode, data offset, data size) of each member of the cpio archive in data[pos:end]."""
    end = len(data) if end is None else end
    while pos + 6 <= end:
        magic = data[pos : pos + 6]
        if magic in (b"070701", b"070702"):
            if pos + 110 > end:
                return
            try:
                fields = [int(data[pos + 6 + i * 8 : pos + 14 + i * 8], 16) for i in range(13)]
            except ValueError:
                return
            mode, filesize, namesize = fields[1], fields[6], fields[11]
            name_start = pos + 110
            name = data[name_start : name_start + namesize - 1].decode("utf-8", "surrogateescape")
            pos = (name_start + namesize + 3) & ~3
            data_at = pos
            pos = (pos + filesize + 3) & ~3
        elif magic == b"070707":
            if pos + 76 > end:
                return
            try:
                mode = int(data[pos + 18 : pos + 24], 8)
                namesize = int(data[pos + 59 : pos + 65], 8)
                filesize = int(data[pos + 65 : pos + 76], 8)
            except ValueError:
                return
            name = data[pos + 76 : pos + 76 + namesize - 1].decode("utf-8", "surrogateescape")
            data_at = pos + 76 + namesize
            pos = data_at + filesize
        else:
            return
        if name == "TRAILER!!!":
            return
        yield name, mode, data_at, filesize
