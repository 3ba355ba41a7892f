"""cra-fw's own squashfs reader: versions 2.x, 3.x and 4.0, either byte order, vendor magics and codecs.

Written from the on-disk layout (superblock, metadata blocks of at most 8 KiB
with a 2-byte length word, inode and directory tables addressed by
``block << 16 | offset``, fragment tables, data block lists whose bit 24 marks
an uncompressed block).  Versions 2 and 3 pack their inodes as C bit-fields,
which a little-endian mksquashfs fills from the least significant bit and a
big-endian one from the most significant bit; :func:`_bits` reads both.

Vendors changed the magic (``shsq``, ``qshs``, ``sqlz``, ``hsqt``, ``tqsh``...) and
the compressor (LZMA under the zlib id, LZMA with a 5-byte header or none):
the superblock is accepted by shape, not by magic, and the codec is found by
decoding the first metadata block (:func:`cra_fw.unpack.codecs.probe`).

Hostile input: every offset is checked against the image, every count and
size is bounded, directory loops are cut, and the tree is written through a
:class:`~cra_fw.unpack.treewriter.TreeWriter`.  Errors are
:class:`~cra_fw.errors.UnpackError`; one unreadable file does not stop the rest.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.errors import LimitExceeded, UnpackError
from cra_fw.unpack import codecs
from cra_fw.unpack.treewriter import TreeWriter

METADATA_SIZE = 8192
MAX_METADATA = 256 * 1024 * 1024  # decoded inode + directory tables of one image
MAX_INODES = 4_000_000
INVALID_FRAG = 0xFFFFFFFF
UNCOMPRESSED_BLOCK = 1 << 24

# magic -> (variant, byte order when the header does not settle it)
MAGICS = {
    b"hsqs": ("standard", "<"),
    b"sqsh": ("standard", ">"),
    b"shsq": ("vendor magic shsq", "<"),
    b"qshs": ("vendor magic qshs", ">"),
    b"sqlz": ("vendor magic sqlz", "<"),
    b"zlqs": ("vendor magic zlqs", ">"),
    b"hsqt": ("dd-wrt", "<"),
    b"tqsh": ("dd-wrt", ">"),
}
V4_COMPRESSION = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
V4_CODECS = {
    1: (codecs.ZLIB,),
    2: (codecs.LZMA_ALONE, codecs.LZMA_PROPS, *codecs.RAW_LZMA),
    3: (codecs.LZO,),
    4: (codecs.XZ, codecs.LZMA_ALONE),
    5: (codecs.LZ4,),
    6: (codecs.ZSTD,),
}


def _bits(buf: bytes, pos: int, size: int, big: bool, widths: tuple[int, ...]) -> list[int]:
    """Unsigned bit-fields of ``widths`` from ``buf[pos:pos+size]`` as the compiler packed them."""
    raw = buf[pos : pos + size]
    if len(raw) != size:
        raise UnpackError("squashfs: structure runs past its table")
    total = size * 8
    value = int.from_bytes(raw, "big" if big else "little")
    out = []
    shift = 0
    for width in widths:
        mask = (1 << width) - 1
        if big:
            out.append((value >> (total - shift - width)) & mask)
        else:
            out.append((value >> shift) & mask)
        shift += width
    return out


@dataclass(frozen=True)
class Superblock:
    start: int
    magic: bytes
    variant: str
    big: bool
    major: int
    minor: int
    inodes: int
    bytes_used: int
    block_size: int
    block_log: int
    flags: int
    root_inode: int
    inode_table: int
    directory_table: int
    fragment_table: int
    fragments: int
    compression_id: int = 1  # only v4 records it
    table_ends: tuple[int, ...] = ()

    @property
    def endian(self) -> str:
        return ">" if self.big else "<"

    @property
    def check_byte(self) -> bool:
        # versions 1-3: SQUASHFS_CHECK puts a marker byte after each metadata length word
        return self.major < 4 and bool(self.flags & 0x04)

    @property
    def details(self) -> dict[str, str]:
        out = {
            "version": f"{self.major}.{self.minor}",
            "endianness": "big" if self.big else "little",
            "inodes": str(self.inodes),
            "block_size": str(self.block_size),
        }
        if self.variant != "standard":
            out["variant"] = self.variant
        if self.major == 4:
            out["compression"] = V4_COMPRESSION.get(self.compression_id, f"id{self.compression_id}")
        return out


def parse_superblock(data: bytes | memoryview, pos: int, limit: int) -> Superblock | None:
    """The superblock at ``pos`` when its fields describe a plausible image within ``limit`` bytes."""
    magic = bytes(data[pos : pos + 4])
    if magic not in MAGICS or pos + 96 > limit:
        return None
    variant, default = MAGICS[magic]
    head = bytes(data[pos : pos + 120])
    for endian in (default, ">" if default == "<" else "<"):
        major, minor = struct.unpack_from(endian + "HH", head, 28)
        if major == 1 and minor == 0:
            sb = _parse_v1(head, pos, magic, variant, endian)
        elif major in (2, 3) and minor <= 1:
            sb = _parse_v2v3(head, pos, magic, variant, endian, major, minor)
        elif major == 4 and minor == 0:
            sb = _parse_v4(head, pos, magic, variant, endian)
        else:
            continue
        if sb is not None and _plausible(sb, limit - pos):
            return sb
    return None


def _parse_v2v3(
    head: bytes, pos: int, magic: bytes, variant: str, endian: str, major: int, minor: int
) -> Superblock | None:
    inodes, bytes_used32, _uid, _gid, inode32, dir32 = struct.unpack_from(endian + "6I", head, 4)
    block_log = struct.unpack_from(endian + "H", head, 34)[0]
    flags = head[36]
    root_inode = struct.unpack_from(endian + "Q", head, 43)[0]
    block_size, fragments, frag32 = struct.unpack_from(endian + "III", head, 51)
    if major == 2:
        return Superblock(
            pos, magic, variant, endian == ">", major, minor, inodes, bytes_used32, block_size, block_log,
            flags, root_inode, inode32, dir32, frag32, fragments, table_ends=(frag32,),
        )  # fmt: skip
    if len(head) < 119:
        return None
    bytes_used, uid, gid, inode_t, dir_t, frag_t = struct.unpack_from(endian + "6q", head, 63)
    ends = [frag_t, uid, gid]
    if minor >= 1:
        ends.append(struct.unpack_from(endian + "q", head, 111)[0])
    return Superblock(
        pos, magic, variant, endian == ">", major, minor, inodes, bytes_used, block_size, block_log, flags,
        root_inode, inode_t, dir_t, frag_t, fragments, table_ends=tuple(ends),
    )  # fmt: skip


def _parse_v1(head: bytes, pos: int, magic: bytes, variant: str, endian: str) -> Superblock:
    # recognised so it can be reported, not read: no reader is written for version 1
    inodes, bytes_used, _uid, _gid, inode_t, dir_t = struct.unpack_from(endian + "6I", head, 4)
    block_size, block_log = struct.unpack_from(endian + "HH", head, 32)
    return Superblock(
        pos, magic, variant, endian == ">", 1, 0, inodes, bytes_used, block_size, block_log, head[36], 0,
        inode_t, dir_t, 0, 0,
    )  # fmt: skip


def _parse_v4(head: bytes, pos: int, magic: bytes, variant: str, endian: str) -> Superblock | None:
    inodes, _mtime, block_size, fragments = struct.unpack_from(endian + "4I", head, 4)
    comp, block_log, flags, _ids = struct.unpack_from(endian + "4H", head, 20)
    root, used, id_t, xattr_t, inode_t, dir_t, frag_t, export_t = struct.unpack_from(endian + "8Q", head, 32)
    return Superblock(
        pos, magic, variant, endian == ">", 4, 0, inodes, used, block_size, block_log, flags, root,
        inode_t, dir_t, frag_t, fragments, compression_id=comp, table_ends=(frag_t, export_t, id_t, xattr_t),
    )  # fmt: skip


def _plausible(sb: Superblock, available: int) -> bool:
    return (
        12 <= sb.block_log <= 20
        and sb.block_size == 1 << sb.block_log
        and 0 < sb.inodes <= MAX_INODES
        and 96 < sb.bytes_used <= available
        and 0 < sb.inode_table < sb.directory_table < sb.bytes_used
        and sb.fragments <= sb.inodes
    )


@dataclass
class _Inode:
    kind: str  # dir, file, symlink, special
    mode: int
    size: int = 0
    start: int = 0  # dir: block in the directory table; file: first data block
    offset: int = 0
    fragment: int = INVALID_FRAG
    frag_offset: int = 0
    blocks: tuple[int, ...] = ()
    target: bytes = b""


@dataclass
class SquashfsImage:
    """One squashfs image in ``data`` (an mmap or bytes), read lazily."""

    data: bytes | memoryview
    sb: Superblock
    codec: codecs.Codec | None = None
    _inode_table: bytearray = field(default_factory=bytearray)
    _inode_index: dict[int, int] = field(default_factory=dict)
    _dir_table: bytearray = field(default_factory=bytearray)
    _dir_index: dict[int, int] = field(default_factory=dict)
    _fragments: list[tuple[int, int]] = field(default_factory=list)
    _frag_cache: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    _metadata_bytes: int = 0
    _props: bytes = b""

    # -- raw access ----------------------------------------------------------------------

    def _abs(self, rel: int, size: int) -> int:
        if rel < 0 or rel + size > self.sb.bytes_used:
            raise UnpackError(f"squashfs: offset {rel:#x} (+{size}) lies outside the image")
        return self.sb.start + rel

    def _raw(self, rel: int, size: int) -> bytes:
        start = self._abs(rel, size)
        return bytes(self.data[start : start + size])

    def _decode(self, block: bytes, limit: int, expect: int | None = None) -> bytes:
        if expect is not None:
            # LZMA without an end marker decodes past the block's end: stop at its known size
            limit = min(limit, expect)
        if self.codec is not None:
            # no second guess once the image's codec is known: a headerless codec would take
            # a damaged block for data (raw LZMA decodes zeros to zeros)
            self._check_props(block)
            try:
                return self.codec.decode(block, limit)
            except codecs.CodecError as exc:
                raise UnpackError(f"squashfs: damaged block ({exc})") from exc
        found = codecs.probe(block, limit, expect, self._codec_order())
        if found is None:
            names = ", ".join(c.name for c in self._codec_order()[:6])
            raise UnpackError(f"squashfs: a block decodes with no known codec (tried {names}...)")
        self._adopt(found, block)
        return found.decode(block, limit)

    def _adopt(self, codec: codecs.Codec | None, block: bytes) -> None:
        self.codec = codec
        # one encoder wrote every block: its LZMA properties byte (lc/lp/pb) is the same throughout
        self._props = block[:1] if isinstance(codec, (codecs.LzmaAlone, codecs.LzmaProps)) else b""

    def _check_props(self, block: bytes) -> None:
        if self._props and block[:1] != self._props:
            # without a checksum this is how a zeroed or foreign block shows: LZMA decodes almost anything
            raise UnpackError(
                f"squashfs: damaged block (LZMA properties {block[:1].hex()} in an image of {self._props.hex()})"
            )

    def _codec_order(self) -> tuple[codecs.Codec, ...]:
        if self.sb.major == 4:
            preferred = V4_CODECS.get(self.sb.compression_id, ())
            return (*preferred, *(c for c in codecs.CODECS if c not in preferred))
        return codecs.CODECS

    def _metadata_block(self, rel: int) -> tuple[bytes, int]:
        """Decoded metadata block at ``rel`` and the offset of the next one."""
        word = struct.unpack(self.sb.endian + "H", self._raw(rel, 2))[0]
        header = 3 if self.sb.check_byte else 2
        size = word & 0x7FFF
        if size == 0:
            raise UnpackError(f"squashfs: empty metadata block at {rel:#x}")
        payload = self._raw(rel + header, size)
        if word & 0x8000:
            out = payload
        else:
            out = self._decode(payload, METADATA_SIZE)
        if len(out) > METADATA_SIZE:
            raise UnpackError(f"squashfs: metadata block at {rel:#x} larger than {METADATA_SIZE} bytes")
        self._metadata_bytes += len(out)
        if self._metadata_bytes > MAX_METADATA:
            raise LimitExceeded("bytes", "squashfs: more than 256 MiB of inode and directory tables")
        return out, rel + header + size

    def _read_table(self, start: int, end: int, table: bytearray, index: dict[int, int]) -> None:
        pos = start
        while pos < end:
            try:
                block, nxt = self._metadata_block(pos)
            except UnpackError:
                if not table:
                    raise
                break  # past the table's last block: what follows is not metadata
            index[pos - start] = len(table)
            table += block
            pos = nxt

    def _table_end(self, start: int) -> int:
        ends = [e for e in self.sb.table_ends if start < e <= self.sb.bytes_used]
        return min(ends, default=self.sb.bytes_used)

    def load(self) -> None:
        """Decode the inode and directory tables and the fragment table."""
        sb = self.sb
        self.load_codec()
        self._read_table(sb.inode_table, sb.directory_table, self._inode_table, self._inode_index)
        self._read_table(
            sb.directory_table, self._table_end(sb.directory_table), self._dir_table, self._dir_index
        )
        self._load_fragments()

    def load_codec(self) -> None:
        """Find the codec by decoding the first inode table block (one block: cheap enough to recognise)."""
        sb = self.sb
        # probe the codec on the first compressed inode block: an 8 KiB block unless it is the only one
        word = struct.unpack(sb.endian + "H", self._raw(sb.inode_table, 2))[0]
        header = 3 if sb.check_byte else 2
        if not word & 0x8000 and self.codec is None:
            payload = self._raw(sb.inode_table, header + (word & 0x7FFF))[header:]
            more = sb.inode_table + header + (word & 0x7FFF) < sb.directory_table
            self._adopt(
                codecs.probe(payload, METADATA_SIZE, METADATA_SIZE if more else None, self._codec_order()),
                payload,
            )
            if self.codec is None:
                raise UnpackError(
                    f"squashfs {sb.major}.{sb.minor}: the inode table decodes with no known codec "
                    "(unknown vendor compression)"
                )

    def _load_fragments(self) -> None:
        sb = self.sb
        if sb.fragments == 0 or sb.fragment_table in (0, -1) or sb.fragment_table >= sb.bytes_used:
            return
        entry = 8 if sb.major == 2 else 16
        pointer = 4 if sb.major == 2 else 8
        blocks = (sb.fragments * entry + METADATA_SIZE - 1) // METADATA_SIZE
        raw = self._raw(sb.fragment_table, blocks * pointer)
        table = bytearray()
        for i in range(blocks):
            (where,) = struct.unpack_from(sb.endian + ("I" if pointer == 4 else "Q"), raw, i * pointer)
            block, _ = self._metadata_block(where)
            table += block
        for i in range(min(sb.fragments, len(table) // entry)):
            if sb.major == 2:
                start, size = struct.unpack_from(sb.endian + "II", table, i * entry)
            else:
                start, size = struct.unpack_from(sb.endian + "QI", table, i * entry)
            self._fragments.append((start, size))

    def identify_codec(self) -> None:
        """Find the codec, from the first data block when the tables are stored uncompressed."""
        self.load_codec()
        if self.codec is not None:
            return
        self.load()
        queue = [self.inode(self.sb.root_inode)]
        for _ in range(256):  # the first few entries are enough
            if not queue or self.codec is not None:
                return
            directory = queue.pop(0)
            for _name, ref in self.entries(directory):
                node = self.inode(ref)
                if node.kind == "dir":
                    queue.append(node)
                elif node.kind == "file" and node.blocks and not node.blocks[0] & UNCOMPRESSED_BLOCK:
                    size = node.blocks[0] & 0xFFFFFF
                    expect = min(self.sb.block_size, node.size)
                    raw = self._raw(node.start, size)
                    self._adopt(codecs.probe(raw, expect, expect, self._codec_order()), raw)
                    return

    # -- inodes --------------------------------------------------------------------------

    def _locate(self, table: bytearray, index: dict[int, int], ref_block: int, offset: int) -> int:
        base = index.get(ref_block)
        if base is None or base + offset >= len(table):
            raise UnpackError(f"squashfs: reference {ref_block:#x}:{offset:#x} points at no table block")
        return base + offset

    def inode(self, ref: int) -> _Inode:
        pos = self._locate(self._inode_table, self._inode_index, ref >> 16, ref & 0xFFFF)
        if self.sb.major == 4:
            return self._inode_v4(pos)
        return self._inode_v2v3(pos)

    def _inode_v2v3(self, pos: int) -> _Inode:
        t = self._inode_table
        big = self.sb.big
        e = self.sb.endian
        kind, mode = _bits(t, pos, 2, big, (4, 12))
        v3 = self.sb.major == 3
        base = 12 if v3 else 4
        if kind == 1:  # directory
            if v3:
                _n, size, offset, start, _p = _bits(t, pos + base, 16, big, (32, 19, 13, 32, 32))
            else:
                size, offset, _mtime, start = _bits(t, pos + base, 11, big, (19, 13, 32, 24))
            return _Inode("dir", mode, size=size, start=start, offset=offset)
        if kind == 8:  # directory with an index
            if v3:
                _n, size, offset, start = _bits(t, pos + base, 13, big, (32, 27, 13, 32))
            else:
                size, offset, _mtime, start = _bits(t, pos + base, 12, big, (27, 13, 32, 24))
            return _Inode("dir", mode, size=size, start=start, offset=offset)
        if kind in (2, 9):  # regular file, v3 "long" file
            if kind == 2 and v3:
                start, frag, foff, size = _bits(t, pos + base, 20, big, (64, 32, 32, 32))
                after = pos + base + 20
            elif kind == 2:
                _mtime, start, frag, foff, size = _bits(t, pos + base, 20, big, (32, 32, 32, 32, 32))
                after = pos + base + 20
            else:
                _n, start, frag, foff, size = _bits(t, pos + base, 28, big, (32, 64, 32, 32, 64))
                after = pos + base + 28
            count = size // self.sb.block_size if frag != INVALID_FRAG else -(-size // self.sb.block_size)
            blocks = self._block_list(after, count, e)
            return _Inode(
                "file", mode, size=size, start=start, fragment=frag, frag_offset=foff, blocks=blocks
            )
        if kind == 3:
            extra = 4 if v3 else 0
            (length,) = struct.unpack_from(e + "H", t, pos + base + extra)
            target = bytes(t[pos + base + extra + 2 : pos + base + extra + 2 + length])
            if len(target) != length:
                raise UnpackError("squashfs: symlink target runs past the inode table")
            return _Inode("symlink", mode, target=target)
        if kind in (4, 5, 6, 7):
            return _Inode("special", mode)
        raise UnpackError(f"squashfs: unknown inode type {kind}")

    def _inode_v4(self, pos: int) -> _Inode:
        t = self._inode_table
        e = self.sb.endian
        if pos + 16 > len(t):
            raise UnpackError("squashfs: inode runs past the inode table")
        kind, mode = struct.unpack_from(e + "HH", t, pos)
        body = pos + 16
        try:
            if kind == 1:
                start, _n, size, offset, _p = struct.unpack_from(e + "IIHHI", t, body)
                return _Inode("dir", mode, size=size, start=start, offset=offset)
            if kind == 8:
                _n, size, start, _p, _count, offset = struct.unpack_from(e + "IIIIHH", t, body)
                return _Inode("dir", mode, size=size, start=start, offset=offset)
            if kind == 2:
                start, frag, foff, size = struct.unpack_from(e + "IIII", t, body)
                after = body + 16
            elif kind == 9:
                start, size, _sparse, _n, frag, foff = struct.unpack_from(e + "QQQIII", t, body)
                after = body + 40
            elif kind in (3, 10):
                _n, length = struct.unpack_from(e + "II", t, body)
                target = bytes(t[body + 8 : body + 8 + length])
                if len(target) != length or length > 4096:
                    raise UnpackError("squashfs: symlink target runs past the inode table")
                return _Inode("symlink", mode, target=target)
            elif kind in (4, 5, 6, 7, 11, 12, 13, 14):
                return _Inode("special", mode)
            else:
                raise UnpackError(f"squashfs: unknown inode type {kind}")
        except struct.error as exc:
            raise UnpackError("squashfs: inode runs past the inode table") from exc
        count = size // self.sb.block_size if frag != INVALID_FRAG else -(-size // self.sb.block_size)
        blocks = self._block_list(after, count, e)
        return _Inode("file", mode, size=size, start=start, fragment=frag, frag_offset=foff, blocks=blocks)

    def _block_list(self, pos: int, count: int, e: str) -> tuple[int, ...]:
        if count < 0 or count * 4 > len(self._inode_table) - pos:
            raise UnpackError("squashfs: a file's block list runs past the inode table")
        return struct.unpack_from(f"{e}{count}I", self._inode_table, pos)

    # -- directories ---------------------------------------------------------------------

    def entries(self, directory: _Inode) -> Iterator[tuple[bytes, int]]:
        """(name, inode reference) of each entry of ``directory``."""
        sb = self.sb
        t = self._dir_table
        if directory.size == 0:
            return
        pos = self._locate(t, self._dir_index, directory.start, directory.offset)
        end = pos + directory.size - (3 if sb.major >= 3 else 0)
        if end > len(t):
            raise UnpackError("squashfs: directory runs past the directory table")
        big = sb.big
        while pos < end:
            if sb.major == 4:
                count, start, _ino = struct.unpack_from(sb.endian + "III", t, pos)
                pos += 12
            elif sb.major == 3:
                count, start, _ino = _bits(t, pos, 9, big, (8, 32, 32))
                pos += 9
            else:
                count, start = _bits(t, pos, 4, big, (8, 24))
                pos += 4
            if count >= 256 and sb.major == 4:
                raise UnpackError("squashfs: directory header with more than 256 entries")
            for _ in range(count + 1):
                if sb.major == 4:
                    offset, _delta, _type, size = struct.unpack_from(sb.endian + "HhHH", t, pos)
                    pos += 8
                elif sb.major == 3:
                    offset, _type, size, _delta = _bits(t, pos, 5, big, (13, 3, 8, 16))
                    pos += 5
                else:
                    offset, _type, size = _bits(t, pos, 3, big, (13, 3, 8))
                    pos += 3
                name = bytes(t[pos : pos + size + 1])
                if len(name) != size + 1 or pos + size + 1 > end:
                    raise UnpackError("squashfs: directory entry runs past its directory")
                pos += size + 1
                yield name, (start << 16) | offset

    # -- file data -----------------------------------------------------------------------

    def _data_block(self, rel: int, word: int, expect: int) -> bytes:
        size = word & ~UNCOMPRESSED_BLOCK & 0xFFFFFFFF
        if size == 0:
            return bytes(expect)  # a sparse block
        if size > 2 * self.sb.block_size:
            raise UnpackError(
                f"squashfs: data block of {size} bytes in a {self.sb.block_size}-byte block image"
            )
        raw = self._raw(rel, size)
        if word & UNCOMPRESSED_BLOCK:
            return raw[:expect]
        out = self._decode(raw, self.sb.block_size, expect)
        if len(out) != expect:
            raise UnpackError(f"squashfs: data block decoded to {len(out)} bytes, expected {expect}")
        return out

    def file_chunks(self, node: _Inode) -> Iterator[bytes]:
        bs = self.sb.block_size
        pos = node.start
        remaining = node.size
        for word in node.blocks:
            expect = min(bs, remaining)
            yield self._data_block(pos, word, expect)
            pos += word & ~UNCOMPRESSED_BLOCK & 0xFFFFFFFF
            remaining -= expect
        if remaining > 0:
            if node.fragment == INVALID_FRAG or node.fragment >= len(self._fragments):
                raise UnpackError(f"squashfs: fragment {node.fragment} is not in the fragment table")
            block = self._fragment(node.fragment)
            piece = block[node.frag_offset : node.frag_offset + remaining]
            if len(piece) != remaining:
                raise UnpackError("squashfs: file tail runs past its fragment")
            yield piece

    def _fragment(self, index: int) -> bytes:
        if index in self._frag_cache:
            self._frag_cache.move_to_end(index)
            return self._frag_cache[index]
        start, word = self._fragments[index]
        size = word & ~UNCOMPRESSED_BLOCK & 0xFFFFFFFF
        if not 0 < size <= 2 * self.sb.block_size:
            raise UnpackError(f"squashfs: fragment block of {size} bytes")
        raw = self._raw(start, size)
        block = raw if word & UNCOMPRESSED_BLOCK else self._decode(raw, self.sb.block_size)
        self._frag_cache[index] = block
        if len(self._frag_cache) > 8:
            self._frag_cache.popitem(last=False)
        return block

    # -- the tree ------------------------------------------------------------------------

    def extract(self, writer: TreeWriter) -> None:
        root = self.inode(self.sb.root_inode)
        if root.kind != "dir":
            raise UnpackError("squashfs: the root inode is not a directory")
        seen = {self.sb.root_inode}
        stack: list[tuple[tuple[str, ...], _Inode]] = [((), root)]
        while stack:
            parts, directory = stack.pop()
            try:
                listing = list(self.entries(directory))
            except (UnpackError, struct.error) as exc:
                writer.problem(parts, str(exc))
                continue
            for raw_name, ref in listing:
                path = writer.child(parts, raw_name)
                if path is None:
                    continue
                try:
                    node = self.inode(ref)
                except (UnpackError, struct.error) as exc:
                    writer.problem(path, str(exc))
                    continue
                if node.kind == "dir":
                    if ref in seen:
                        writer.problem(path, "directory loop cut")
                        continue
                    seen.add(ref)
                    if writer.add(path, "dir", tuple):
                        stack.append((path, node))
                else:
                    content = (
                        (lambda n=node: self.file_chunks(n))
                        if node.kind == "file"
                        else (lambda n=node: [n.target])
                    )
                    writer.add(path, node.kind, content, node.mode)


def find_superblocks(data: bytes | memoryview, limit: int | None = None) -> Iterator[Superblock]:
    """Every plausible squashfs superblock in ``data``, not overlapping."""
    import re

    limit = len(data) if limit is None else limit
    pattern = re.compile(b"|".join(re.escape(m) for m in MAGICS))
    pos = 0
    while True:
        match = pattern.search(data, pos)  # type: ignore[call-overload]
        if match is None:
            return
        sb = parse_superblock(data, match.start(), limit)
        if sb is None:
            pos = match.start() + 1
            continue
        yield sb
        pos = match.start() + sb.bytes_used


def extract_image(data: bytes | memoryview, sb: Superblock, writer: TreeWriter) -> str:
    """Write the image whose superblock is ``sb`` through ``writer``; return the codec's name."""
    image = SquashfsImage(data, sb)
    try:
        image.load()
        image.extract(writer)
    except LimitExceeded:
        raise
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        raise UnpackError(f"squashfs: malformed image: {exc}") from exc
    return image.codec.name if image.codec else "none"


def extract_squashfs(image_path: Path, outdir: Path) -> int:
    """Extract the squashfs image at the start of ``image_path``; return the number of entries written."""
    import mmap

    with open(image_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        sb = parse_superblock(data, 0, len(data))
        if sb is None:
            raise UnpackError(f"{image_path.name}: no squashfs superblock at its start")
        writer = TreeWriter(outdir)
        extract_image(data, sb, writer)
    writer.finish("squashfs")
    return writer.entries
