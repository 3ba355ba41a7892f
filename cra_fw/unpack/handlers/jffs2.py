"""JFFS2, either byte order, read by cra-fw itself (zlib, rtime, LZO, LZMA, zero and plain nodes).

A JFFS2 image is a log of nodes, each with a 12-byte header (magic 0x1985,
node type, total length, CRC of the first 8 bytes; the JFFS2 CRC is CRC-32
without the initial and final inversion).  Directory-entry nodes name an inode
in a parent; the highest version of (parent, name) wins and inode 0 deletes the
name.  Inode nodes carry mode, size and one compressed piece of the file at an
offset; pieces apply in version order.  Several names for one inode are hard
links: each name gets the file (the backends' extractor, jefferson, keeps only
one of them).  LZMA nodes are OpenWrt's (raw LZMA1, lc=0 lp=0 pb=0).

Bounded: node count by the image size, file size by the writer's byte budget and
a 256 MiB ceiling per file, directory depth and loops by the tree walk.
"""

from __future__ import annotations

import mmap
import stat
import struct
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from cra_fw.errors import UnpackError
from cra_fw.unpack import codecs
from cra_fw.unpack.native import NativeHandler, Region, mapped
from cra_fw.unpack.treewriter import TreeWriter

MAGIC_LE = b"\x85\x19"
MAGIC_BE = b"\x19\x85"
DIRENT, INODE, CLEANMARKER = 0xE001, 0xE002, 0x2003
KNOWN_TYPES = {0xE001, 0xE002, 0x2003, 0x2004, 0x2006, 0xE008, 0xE009, 0x2002}
MAX_FILE = 1 << 28
MAX_GAP = 1 << 16  # foreign bytes after the last node end the filesystem
COMPRESSION = {0: "none", 1: "zero", 2: "rtime", 6: "zlib", 7: "lzo", 8: "lzma"}
OPENWRT_LZMA = codecs.LzmaRaw("lzma-raw(lc=0,lp=0,pb=0)", props=0)


def jffs2_crc(data: bytes) -> int:
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def rtime_decode(data: bytes, size: int) -> bytes:
    out = bytearray()
    positions = [0] * 256
    pos = 0
    while len(out) < size:
        if pos + 2 > len(data):
            raise UnpackError("jffs2: rtime data ends early")
        value, repeat = data[pos], data[pos + 1]
        pos += 2
        out.append(value)
        back = positions[value]
        positions[value] = len(out)
        for _ in range(repeat):
            if back >= len(out) or len(out) >= size:
                break
            out.append(out[back])
            back += 1
    return bytes(out[:size])


def lzo_decode(data: bytes, size: int) -> bytes:
    try:
        import lzallright
    except ImportError:
        return codecs.LZO.decode(data, size)
    try:
        return lzallright.LZOCompressor().decompress(data, output_size_hint=size)[:size]
    except Exception as exc:  # noqa: BLE001 - the binding raises its own error types
        raise UnpackError(f"jffs2: lzo: {exc}") from exc


@dataclass(frozen=True)
class Piece:
    version: int
    offset: int
    dsize: int
    compr: int
    at: int  # image offset of the compressed data
    csize: int


@dataclass
class InodeInfo:
    version: int = -1
    mode: int = 0
    isize: int = 0
    pieces: list[Piece] | None = None


class Jffs2:
    def __init__(self, data: mmap.mmap | bytes, start: int, end: int, big: bool) -> None:
        self.data, self.start, self.end = data, start, end
        self.e = ">" if big else "<"
        self.inodes: dict[int, InodeInfo] = defaultdict(InodeInfo)
        self.dirents: dict[tuple[int, bytes], tuple[int, int, int]] = {}  # -> (version, ino, type)
        self.compressors: set[str] = set()

    def scan(self) -> int:
        """Read every valid node; return the end of the last one."""
        e = self.e
        magic = MAGIC_BE if e == ">" else MAGIC_LE
        pos, last = self.start, self.start
        while pos + 12 <= self.end:
            if bytes(self.data[pos : pos + 2]) != magic:
                nxt = self.data.find(magic, pos, self.end)  # type: ignore[call-overload]
                if nxt == -1:
                    break
                nxt += -nxt % 4 if nxt % 4 else 0
                if nxt - last > MAX_GAP and bytes(self.data[last : last + MAX_GAP]).strip(b"\xff\x00"):
                    break  # something else follows the filesystem
                pos = nxt
                continue
            head = bytes(self.data[pos : pos + 12])
            _m, ntype, totlen, hdr_crc = struct.unpack(e + "HHII", head)
            if jffs2_crc(head[:8]) != hdr_crc or totlen < 12 or pos + totlen > self.end:
                pos += 4
                continue
            node = bytes(self.data[pos : pos + totlen])
            if ntype == DIRENT and totlen >= 40:
                pino, version, ino, _mctime, nsize = struct.unpack_from(e + "IIIIB", node, 12)
                dtype = node[29]
                name = node[40 : 40 + nsize]
                key = (pino, name)
                if len(name) == nsize and (key not in self.dirents or self.dirents[key][0] < version):
                    self.dirents[key] = (version, ino, dtype)
            elif ntype == INODE and totlen >= 68:
                ino, version, mode = struct.unpack_from(e + "III", node, 12)
                isize = struct.unpack_from(e + "I", node, 28)[0]
                offset, csize, dsize = struct.unpack_from(e + "III", node, 44)
                compr = node[56]
                info = self.inodes[ino]
                if info.pieces is None:
                    info.pieces = []
                if version > info.version:
                    info.version, info.mode, info.isize = version, mode, min(isize, MAX_FILE)
                if dsize and 68 + csize <= totlen:
                    info.pieces.append(Piece(version, offset, dsize, compr, pos + 68, csize))
                    self.compressors.add(COMPRESSION.get(compr, f"id{compr}"))
            last = min(pos + ((totlen + 3) & ~3), self.end)
            pos += (totlen + 3) & ~3
        return last

    def _piece(self, piece: Piece) -> bytes:
        raw = bytes(self.data[piece.at : piece.at + piece.csize])
        size = piece.dsize
        if piece.compr == 0:
            return raw[:size]
        if piece.compr == 1:
            return bytes(size)
        if piece.compr == 2:
            return rtime_decode(raw, size)
        if piece.compr == 6:
            try:
                return zlib.decompressobj().decompress(raw, size)
            except zlib.error as exc:
                raise UnpackError(f"jffs2: zlib: {exc}") from exc
        if piece.compr == 7:
            return lzo_decode(raw, size)
        if piece.compr == 8:
            try:
                return OPENWRT_LZMA.decode(raw, size)
            except codecs.CodecError as exc:
                raise UnpackError(f"jffs2: {exc}") from exc
        raise UnpackError(f"jffs2: unknown compression {piece.compr}")

    def content(self, ino: int) -> bytes:
        info = self.inodes.get(ino)
        if info is None:
            raise UnpackError(f"jffs2: inode {ino} has no data node")
        buf = bytearray(info.isize)
        for piece in sorted(info.pieces or (), key=lambda p: p.version):
            if piece.offset >= info.isize:
                continue
            chunk = self._piece(piece)
            if len(chunk) != piece.dsize:
                raise UnpackError(
                    f"jffs2: a node of inode {ino} decoded to {len(chunk)} bytes, expected {piece.dsize}"
                )
            buf[piece.offset : piece.offset + len(chunk)] = chunk[: info.isize - piece.offset]
        return bytes(buf)

    def extract(self, writer: TreeWriter) -> None:
        children: dict[int, list[tuple[bytes, int]]] = defaultdict(list)
        for (pino, name), (_version, ino, _dtype) in self.dirents.items():
            if ino:  # inode 0: the name was deleted
                children[pino].append((name, ino))
        stack: list[tuple[tuple[str, ...], int]] = [((), 1)]
        seen = {1}
        while stack:
            parts, dino = stack.pop()
            for raw_name, ino in sorted(children.get(dino, ())):
                path = writer.child(parts, raw_name)
                if path is None:
                    continue
                mode = self.inodes[ino].mode if ino in self.inodes else 0
                if stat.S_ISDIR(mode):
                    if ino in seen:
                        writer.problem(path, "directory loop cut")
                    elif writer.add(path, "dir", tuple):
                        seen.add(ino)
                        stack.append((path, ino))
                elif not mode:
                    writer.problem(path, f"inode {ino} has no inode node")
                else:
                    kind = "file" if stat.S_ISREG(mode) else "symlink" if stat.S_ISLNK(mode) else "special"
                    writer.add(path, kind, lambda i=ino: [self.content(i)], mode)


def _erase_size(data: mmap.mmap, start: int, end: int, magic: bytes, e: str) -> int:
    """Spacing of the clean markers mkfs.jffs2 writes at each erase block (64 KiB when unknown)."""
    marker = magic + struct.pack(e + "H", CLEANMARKER)
    first = data.find(marker, start, end)
    second = data.find(marker, first + 4, end) if first != -1 else -1
    size = second - first if second != -1 else 0
    return size if size >= 4096 and not size & (size - 1) else 65536


class Jffs2Handler(NativeHandler):
    name = "jffs2"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        size = len(data)
        # the next hit of each byte order, searched again only once passed: a 2-byte magic
        # occurs every 32 KiB in random data, and re-searching both from each candidate
        # re-reads the bytes up to the farther hit every time
        nxt = {magic: data.find(magic, 0) for magic in (MAGIC_LE, MAGIC_BE)}
        pos = 0
        while pos + 12 <= size:
            for magic, hit in nxt.items():
                if hit != -1 and hit < pos:
                    nxt[magic] = data.find(magic, pos)
            hits = [h for h in nxt.values() if h != -1]
            if not hits:
                break
            pos = min(hits)
            region = self._region(data, pos)
            if region is None:
                pos += 1
                continue
            out.append(region)
            pos = region.end
        return out

    def _region(self, data: mmap.mmap, pos: int) -> Region | None:
        head = bytes(data[pos : pos + 12])
        if len(head) < 12 or pos % 4:
            return None
        big = head[:2] == MAGIC_BE
        e = ">" if big else "<"
        _m, ntype, totlen, hdr_crc = struct.unpack(e + "HHII", head)
        if ntype not in KNOWN_TYPES or jffs2_crc(head[:8]) != hdr_crc:
            return None
        fs = Jffs2(data, pos, len(data), big)
        last = fs.scan()
        if not fs.dirents and not fs.inodes:
            return None
        erase = _erase_size(data, pos, last, head[:2], e)
        end = pos + -(-(last - pos) // erase) * erase
        tail = bytes(data[last : min(end, len(data))])
        if end > len(data) or tail.strip(b"\xff"):
            end = last  # the last erase block is not erased flash up to its end: stop at the last node
        details = {
            "endianness": "big" if big else "little",
            "erase_block": str(erase),
            "compression": ",".join(sorted(fs.compressors)) or "none",
        }
        return Region(pos, end, details=details)

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            fs = Jffs2(data, region.start, region.end, region.details["endianness"] == "big")
            writer = TreeWriter(outdir)
            try:
                fs.scan()
                fs.extract(writer)
            except (struct.error, IndexError, ValueError) as exc:
                raise UnpackError(f"jffs2: malformed image: {exc}") from exc
            writer.finish("jffs2")
