"""Make an extracted tree safe to analyse, and measure it.

After each extraction: special files (devices, FIFOs, sockets) are recorded
then removed, hard links that also point at something outside the tree are
removed, folders are made traversable.  Symlinks are kept as they are: cra-fw
never follows one, it only records its target.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.records import SpecialFile
from cra_fw.regions import leading_run


@dataclass
class TreeReport:
    files: int = 0
    bytes: int = 0
    specials: list[SpecialFile] = field(default_factory=list)
    removed_hardlinks: list[str] = field(default_factory=list)


def layer_path(root: Path, abs_path: str) -> str:
    rel = os.path.relpath(abs_path, root)
    return "/" if rel == "." else "/" + rel.replace(os.sep, "/")


def sanitize_tree(root: Path) -> TreeReport:
    """Remove what must not stay in an extracted tree and count what is left."""
    report = TreeReport()
    inode_paths: dict[tuple[int, int], list[str]] = {}
    inode_links: dict[tuple[int, int], int] = {}
    stack = [str(root)]
    while stack:
        cur = stack.pop()
        try:
            st = os.lstat(cur)
            if stat.S_ISDIR(st.st_mode) and (st.st_mode & 0o700) != 0o700:
                os.chmod(cur, st.st_mode | 0o700)
            entries = list(os.scandir(cur))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                stack.append(entry.path)
            elif stat.S_ISLNK(mode):
                report.files += 1
            elif stat.S_ISREG(mode):
                report.files += 1
                report.bytes += st.st_size
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    inode_paths.setdefault(key, []).append(entry.path)
                    inode_links[key] = st.st_nlink
                if not mode & stat.S_IRUSR:
                    os.chmod(entry.path, mode | stat.S_IRUSR)
            else:
                report.specials.append(SpecialFile(layer_path(root, entry.path), mode, st.st_rdev))
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
    for key, paths in inode_paths.items():
        if inode_links[key] > len(paths):
            # some other name of this inode lives outside the tree: do not read or keep it
            for p in paths:
                report.removed_hardlinks.append(layer_path(root, p))
                report.files -= 1
                try:
                    report.bytes -= os.lstat(p).st_size
                    os.unlink(p)
                except OSError:
                    pass
    return report


def shannon_entropy(path: Path, start: int, end: int, sample: int = 1024 * 1024) -> float:
    """Bits per byte of ``path[start:end]``; regions above ``sample`` bytes are sampled evenly."""
    length = max(0, end - start)
    if length == 0:
        return 0.0
    counts = [0] * 256
    total = 0
    step_blocks = max(1, length // sample)
    block = 64 * 1024
    with open(path, "rb") as fh:
        pos = start
        idx = 0
        while pos < end:
            if idx % step_blocks == 0:
                fh.seek(pos)
                data = fh.read(min(block, end - pos))
                if not data:
                    break
                for value in range(256):
                    n = data.count(value)
                    if n:
                        counts[value] += n
                total += len(data)
            pos += block
            idx += 1
    if total == 0:
        return 0.0
    import math

    return -sum((c / total) * math.log2(c / total) for c in counts if c)


def is_padding(path: Path, start: int, end: int) -> bool:
    """True when the region holds one repeated byte value (erased flash, zero fill)."""
    return end > start and leading_run(path, start, end) == end - start


def inflates_beyond(path: Path, start: int, end: int, fmt: str, budget: int) -> bool:
    """True when the compressed region decompresses to more than ``budget`` bytes.

    Used when a backend's extractor failed without saying why (binwalk hides
    exit statuses): a region that expands past the budget is a bomb, not damage.
    Output is discarded as it is produced, so memory stays flat.
    """
    import bz2
    import lzma
    import zlib

    if fmt == "gzip":
        dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif fmt == "zlib":
        dec = zlib.decompressobj()
    elif fmt in ("xz", "lzma"):
        dec = lzma.LZMADecompressor()
    elif fmt == "bzip2":
        dec = bz2.BZ2Decompressor()
    else:
        return False
    produced = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        try:
            while remaining > 0:
                data = fh.read(min(remaining, 64 * 1024))
                if not data:
                    break
                remaining -= len(data)
                while data:
                    if isinstance(dec, lzma.LZMADecompressor | bz2.BZ2Decompressor):
                        out = dec.decompress(data, max_length=1 << 20)
                        data = b""
                        produced += len(out)
                        while not dec.needs_input and not dec.eof and produced <= budget:
                            produced += len(dec.decompress(b"", max_length=1 << 20))
                    else:
                        out = dec.decompress(data, 1 << 20)
                        produced += len(out)
                        data = dec.unconsumed_tail
                    if produced > budget:
                        return True
                    if getattr(dec, "eof", False):
                        return False
        except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
            return produced > budget
    return produced > budget
