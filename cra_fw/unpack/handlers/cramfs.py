"""cramfs, either byte order, read by cra-fw itself.

Layout: a 64-byte superblock (magic 0x28cd3d45 in the image's byte order,
size, flags, "Compressed ROMFS", CRC, edition, block and file counts, name),
at offset 0 or 512 (after boot code), then the root inode.  An inode is 12
bytes of bit-fields (mode:16 uid:16, size:24 gid:8, namelen:6 offset:26),
filled from the least significant bit by a little-endian mkfs.cramfs and from
the most significant bit by a big-endian one; the name follows, padded to 4
bytes.  A folder's entries are the inodes at ``offset*4``; a file's data is a
table of block-end pointers at ``offset*4`` followed by zlib blocks of one page
each; a symlink is one such block holding its target.

The backends extract cramfs with 7-Zip, which turns symlinks that leave the
folder into empty files and device nodes into files: this reader keeps both
as what they are (links as links, devices recorded and never created).
"""

from __future__ import annotations

import mmap
import stat
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from cra_fw.errors import UnpackError
from cra_fw.unpack.native import NativeHandler, Region, mapped
from cra_fw.unpack.squashfs_reader import _bits
from cra_fw.unpack.treewriter import TreeWriter

MAGIC_LE = b"\x45\x3d\xcd\x28"
MAGIC_BE = b"\x28\xcd\x3d\x45"
SIGNATURE = b"Compressed ROMFS"
PAGE = 4096
MAX_SIZE = 1 << 28  # the format's own limit is 256 MiB
FLAG_EXT_BLOCK_POINTERS = 0x800
UNCOMPRESSED = 1 << 31
DIRECT = 1 << 30


class Cramfs:
    def __init__(self, data: mmap.mmap | bytes, start: int) -> None:
        self.data = data
        self.start = start
        magic = bytes(data[start : start + 4])
        self.big = magic == MAGIC_BE
        self.endian = ">" if self.big else "<"
        self.size, self.flags = struct.unpack_from(self.endian + "II", data, start + 4)
        self.edition, self.blocks, self.files = struct.unpack_from(self.endian + "III", data, start + 36)
        self.name = bytes(data[start + 48 : start + 64]).split(b"\0", 1)[0].decode("latin-1")

    @classmethod
    def probe(cls, data: mmap.mmap | bytes, pos: int) -> Cramfs | None:
        if bytes(data[pos + 16 : pos + 32]) != SIGNATURE:
            return None
        fs = cls(data, pos)
        if not 76 <= fs.size <= min(MAX_SIZE, len(data) - pos):
            return None
        return fs

    def _inode(self, at: int) -> tuple[int, int, int, int]:
        """(mode, size, name length, data offset) of the inode at image offset ``at``."""
        if at + 12 > self.start + self.size:
            raise UnpackError("cramfs: inode runs past the image")
        mode, _uid, size, _gid, namelen, offset = _bits(
            bytes(self.data[at : at + 12]), 0, 12, self.big, (16, 16, 24, 8, 6, 26)
        )
        return mode, size, namelen * 4, offset * 4

    def _block(self, begin: int, end: int, limit: int) -> bytes:
        if not self.start <= begin <= end <= self.start + self.size or end - begin > 2 * PAGE:
            raise UnpackError("cramfs: data block outside the image")
        raw = bytes(self.data[begin:end])
        if not raw:
            return bytes(limit)  # a hole
        dec = zlib.decompressobj()
        try:
            out = dec.decompress(raw, limit)
        except zlib.error as exc:
            raise UnpackError(f"cramfs: damaged block ({exc})") from exc
        return out

    def _blocks(self, offset: int, size: int) -> Iterator[bytes]:
        count = -(-size // PAGE)
        table = self.start + offset
        pointers = struct.unpack_from(f"{self.endian}{count}I", self.data, table) if count else ()
        begin = table + 4 * count
        remaining = size
        for pointer in pointers:
            want = min(PAGE, remaining)
            if self.flags & FLAG_EXT_BLOCK_POINTERS and pointer & (UNCOMPRESSED | DIRECT):
                raise UnpackError("cramfs: direct or uncompressed block pointers are not supported")
            end = self.start + pointer
            block = self._block(begin, end, want)
            if len(block) != want:
                raise UnpackError(f"cramfs: block decoded to {len(block)} bytes, expected {want}")
            yield block
            begin = end
            remaining -= want

    def extract(self, writer: TreeWriter) -> None:
        root = self.start + 64
        mode, size, _namelen, offset = self._inode(root)
        if not stat.S_ISDIR(mode):
            raise UnpackError("cramfs: the root inode is not a folder")
        stack: list[tuple[tuple[str, ...], int, int]] = [((), offset, size)]
        seen: set[int] = set()
        while stack:
            parts, offset, size = stack.pop()
            if offset in seen:
                writer.problem(parts, "directory loop cut")
                continue
            seen.add(offset)
            at = self.start + offset
            end = at + size
            while at < end:
                mode, fsize, namelen, data_off = self._inode(at)
                raw_name = bytes(self.data[at + 12 : at + 12 + namelen]).rstrip(b"\0")
                at += 12 + namelen
                if namelen == 0:
                    raise UnpackError("cramfs: directory entry without a name")
                path = writer.child(parts, raw_name)
                if path is None:
                    continue
                if stat.S_ISDIR(mode):
                    if writer.add(path, "dir", tuple) and fsize:
                        stack.append((path, data_off, fsize))
                    continue
                kind = "file" if stat.S_ISREG(mode) else "symlink" if stat.S_ISLNK(mode) else "special"
                writer.add(path, kind, lambda o=data_off, n=fsize: self._blocks(o, n), mode)


class CramfsHandler(NativeHandler):
    name = "cramfs"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for magic in (MAGIC_LE, MAGIC_BE):
            for region in self.scan(data, magic, lambda pos: self._region(data, pos)):
                if not any(r.start <= region.start < r.end for r in out):
                    out.append(region)
        return sorted(out, key=lambda r: r.start)

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        fs = Cramfs.probe(data, pos)
        if fs is None:
            return None
        details = {
            "endianness": "big" if fs.big else "little",
            "edition": str(fs.edition),
            "blocks": str(fs.blocks),
            "files": str(fs.files),
            "name": fs.name,
        }
        return Region(pos, pos + fs.size, details=details)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            fs = Cramfs(data, region.start)
            writer = TreeWriter(outdir)
            try:
                fs.extract(writer)
            except (struct.error, IndexError, ValueError) as exc:
                raise UnpackError(f"cramfs: malformed image: {exc}") from exc
            writer.finish("cramfs")
