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

from cra_fw.fstree import remove_tree
from cra_fw.records import SpecialFile
from cra_fw.regions import leading_run

DIR_COST = 4096  # bytes a folder counts against the byte budget (a loop makes endless empty ones)
MAX_TREE_PATH = 3072  # bytes of path below a layer root; deeper subtrees are pruned (PATH_MAX is 4096)


@dataclass
class TreeReport:
    files: int = 0  # files and symlinks
    bytes: int = 0  # file sizes, plus DIR_COST per folder
    entries: int = 0  # files, symlinks and folders: what --max-files counts
    specials: list[SpecialFile] = field(default_factory=list)
    removed_hardlinks: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # folders too deep to keep
    relinked: int = 0  # symlinks whose target an extractor had rewritten to a host path


def layer_path(root: Path, abs_path: str) -> str:
    rel = os.path.relpath(abs_path, root)
    return "/" if rel == "." else "/" + rel.replace(os.sep, "/")


def sanitize_tree(root: Path) -> TreeReport:
    """Remove what must not stay in an extracted tree and count what is left.

    Subtrees deeper than MAX_TREE_PATH bytes of path are removed (a directory hard-link
    loop or a nesting bomb): every later stage can then open each path it is given.
    A symlink whose target an extractor rewrote to the host path of the tree (7-Zip does
    for absolute targets) gets its in-image target back.
    """
    report = TreeReport()
    root_text = str(root)
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
                if len(entry.path) - len(root_text) > MAX_TREE_PATH:
                    report.pruned.append(layer_path(root, entry.path))
                    remove_tree(entry.path)
                    continue
                report.entries += 1
                report.bytes += DIR_COST
                stack.append(entry.path)
            elif stat.S_ISLNK(mode):
                report.files += 1
                report.entries += 1
                _unhost_link(entry.path, root_text, report)
            elif stat.S_ISREG(mode):
                report.files += 1
                report.entries += 1
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
                report.entries -= 1
                try:
                    report.bytes -= os.lstat(p).st_size
                    os.unlink(p)
                except OSError:
                    pass
    return report


def _unhost_link(path: str, root_text: str, report: TreeReport) -> None:
    try:
        target = os.readlink(path)
    except OSError:
        return
    if target == root_text or target.startswith(root_text + "/"):
        try:
            os.unlink(path)
            os.symlink("/" + target[len(root_text) :].lstrip("/"), path)
            report.relinked += 1
        except OSError:
            pass


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


STREAM_CODECS = ("gzip", "zlib", "xz", "lzma", "bzip2", "zstd", "lz4", "lzo")


def inflates_beyond(path: Path, start: int, end: int, fmt: str, budget: int) -> bool:
    """True when the compressed region decompresses to more than ``budget`` bytes.

    Used when an extractor failed or stopped partway without saying why (binwalk hides
    exit statuses; zstd writes a sparse file and gives up at the file-size limit): a
    region that expands past the budget is a bomb, not damage.  Covers every stream
    codec the extractors handle; output is discarded as it is produced (memory stays
    flat), lzop's block headers are summed without decompressing.
    """
    if fmt not in STREAM_CODECS:
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            if fmt == "lzo":
                return _lzop_size(fh, end - start) > budget
            head = fh.read(4)
            fh.seek(start)
            if fmt == "lz4" and head == b"\x02\x21\x4c\x18":
                return _lz4_legacy_size(fh, end - start, budget) > budget
            return _streamed_size(fh, end - start, _decompressor(fmt), budget) > budget
    except OSError:
        return False


def _decompressor(fmt: str):  # noqa: ANN202 - the codecs share decompress/eof/needs_input, not a type
    import bz2
    import lzma
    import zlib

    if fmt == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if fmt == "zlib":
        return zlib.decompressobj()
    if fmt in ("xz", "lzma"):
        return lzma.LZMADecompressor()
    if fmt == "bzip2":
        return bz2.BZ2Decompressor()
    if fmt == "zstd":
        import pyzstd

        return pyzstd.EndlessZstdDecompressor()  # several frames, like the zstd tool
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


def _streamed_size(fh, length: int, dec, budget: int) -> int:  # noqa: ANN001
    """Bytes ``dec`` produces from the next ``length`` bytes of ``fh``, counting stops past budget."""
    produced = 0
    remaining = length
    is_zlib = hasattr(dec, "unconsumed_tail")
    try:
        while remaining > 0 and produced <= budget:
            data = fh.read(min(remaining, 64 * 1024))
            if not data:
                break
            remaining -= len(data)
            if is_zlib:
                while data and produced <= budget:
                    produced += len(dec.decompress(data, 1 << 20))
                    data = dec.unconsumed_tail
                if dec.eof:
                    break
                continue
            produced += len(dec.decompress(data, max_length=1 << 20))
            while not dec.needs_input and not getattr(dec, "eof", False) and produced <= budget:
                produced += len(dec.decompress(b"", max_length=1 << 20))
            if getattr(dec, "eof", False):
                break
    except Exception:  # noqa: BLE001 - damaged stream: what came out before the damage counts
        return produced
    return produced


def _lzop_size(fh, length: int) -> int:  # noqa: ANN001
    """Sum of the uncompressed block sizes an lzop file declares (headers only, no decompression)."""
    import struct

    base = fh.tell()
    head = fh.read(min(length, 1024))
    if not head.startswith(b"\x89LZO\x00\r\n\x1a\n") or len(head) < 40:
        return 0
    version = struct.unpack_from(">H", head, 9)[0]
    new = version >= 0x0940
    pos = 13 + (2 if new else 0) + 1 + (1 if new else 0)  # lib version, needed version, method, level
    flags = struct.unpack_from(">I", head, pos)[0]
    pos += 4 + (4 if flags & 0x800 else 0) + 4 + 4 + (4 if new else 0)  # filter, mode, mtime (+ high)
    if pos >= len(head):
        return 0
    pos += 1 + head[pos] + 4  # name length, name, header checksum
    if flags & 0x40:  # extra field: length, data, checksum
        if pos + 4 > len(head):
            return 0
        pos += 4 + struct.unpack_from(">I", head, pos)[0] + 4
    d_checks = 4 * ((flags & 0x1 != 0) + (flags & 0x100 != 0))
    c_checks = 4 * ((flags & 0x2 != 0) + (flags & 0x200 != 0))
    fh.seek(base + pos)
    total = 0
    while pos + 4 <= length:
        word = fh.read(8)
        if len(word) < 4 or int.from_bytes(word[:4], "big") == 0 or len(word) < 8:
            break
        dst, src = int.from_bytes(word[:4], "big"), int.from_bytes(word[4:], "big")
        total += dst
        step = d_checks + (c_checks if src < dst else 0) + src
        pos += 8 + step
        fh.seek(base + pos)
    return total


def _lz4_legacy_size(fh, length: int, budget: int) -> int:  # noqa: ANN001
    """Bytes an lz4 legacy stream (blocks of at most 8 MiB) decompresses to."""
    import lz4.block

    fh.read(4)
    produced = 0
    read = 4
    while read + 4 <= length and produced <= budget:
        size = int.from_bytes(fh.read(4), "little")
        if size in (0, 0x184C2102) or size > length - read:
            break
        block = fh.read(size)
        read += 4 + size
        try:
            produced += len(lz4.block.decompress(block, uncompressed_size=8 << 20))
        except Exception:  # noqa: BLE001 - damaged block
            break
    return produced
