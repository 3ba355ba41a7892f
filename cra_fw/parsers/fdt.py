"""A small, file-backed flattened device tree (FDT/DTB) reader.

FIT images carry their payloads as properties of the tree, so a 100 MB FIT
is a 100 MB structure block: the reader walks tokens with seeks and keeps
only small property values in memory; large ones stay as (offset, size)
and are hashed from the file in chunks.  Malformed trees raise
:class:`~cra_fw.errors.ParseError`.  Used by the FIT unpack handler and the
FIT verifier.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from cra_fw.parsers import ParseError

FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE = 1
FDT_END_NODE = 2
FDT_PROP = 3
FDT_NOP = 4
FDT_END = 9

_HEADER = struct.Struct(">10I")
_INLINE_LIMIT = 64 * 1024  # property values up to this size are read eagerly
_MAX_TOKENS = 2_000_000
_MAX_DEPTH = 32
_MAX_STRINGS = 4 * 1024 * 1024
_PROP_NAME = re.compile(rb"[A-Za-z0-9,._+?#\-]{1,256}")


@dataclass
class Prop:
    name: str
    offset: int  # absolute file offset of the value
    size: int
    value: bytes | None  # None when larger than the inline limit

    def as_str(self) -> str:
        """The value as one NUL-terminated string; anything else is malformed."""
        raw = self.value or b""
        if not raw.endswith(b"\0") or b"\0" in raw[:-1]:
            raise ParseError(f"FDT property {self.name} is not a string")
        return raw[:-1].decode("utf-8", "replace")

    def as_strings(self) -> list[str]:
        """The value as a NUL-terminated string list; anything else is malformed."""
        raw = self.value or b""
        if not raw.endswith(b"\0") or b"\0\0" in raw or raw.startswith(b"\0"):
            raise ParseError(f"FDT property {self.name} is not a string list")
        return [s.decode("utf-8", "replace") for s in raw[:-1].split(b"\0")]

    def as_u32(self) -> int | None:
        if self.value is None or len(self.value) != 4:
            return None
        return int.from_bytes(self.value, "big")

    def as_int(self) -> int | None:
        if self.value is None or not self.value:
            return None
        return int.from_bytes(self.value, "big")


@dataclass
class Node:
    name: str
    path: str
    props: dict[str, Prop] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)

    def child(self, name: str) -> Node | None:
        return self.children.get(name)

    def prop(self, name: str) -> Prop | None:
        return self.props.get(name)

    def str(self, name: str, default: str = "") -> str:
        p = self.props.get(name)
        return p.as_str() if p is not None else default


@dataclass(frozen=True)
class Token:
    tag: int
    offset: int  # relative to the structure block, as libfdt counts
    next: int
    name: str  # node name (BEGIN_NODE) or property name (PROP)


class Fdt:
    """A parsed FDT read from ``fh`` starting at ``base``."""

    def __init__(self, fh: BinaryIO, base: int = 0, file_size: int | None = None) -> None:
        self.fh = fh
        self.base = base
        if file_size is None:
            fh.seek(0, 2)
            file_size = fh.tell()
        fh.seek(base)
        head = fh.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise ParseError("FDT header truncated")
        (
            magic,
            self.totalsize,
            self.off_struct,
            self.off_strings,
            self.off_rsvmap,
            self.version,
            _last,
            _cpu,
            self.size_strings,
            self.size_struct,
        ) = _HEADER.unpack(head)
        if magic != FDT_MAGIC:
            raise ParseError("not a flattened device tree (bad magic)")
        if self.version < 17:
            raise ParseError(f"FDT version {self.version} is too old (need 17)")
        if base + self.totalsize > file_size:
            raise ParseError(
                f"FDT truncated: header says {self.totalsize} bytes, file has {file_size - base}"
            )
        if (
            self.off_struct + self.size_struct > self.totalsize
            or self.off_strings + self.size_strings > self.totalsize
            or self.size_strings > _MAX_STRINGS
            or self.off_struct < _HEADER.size
        ):
            raise ParseError("FDT header blocks lie outside the tree")
        fh.seek(base + self.off_strings)
        self.strings = fh.read(self.size_strings)
        self.tokens: list[Token] = []
        self.root = self._parse()

    # -- low level
    def read(self, offset: int, size: int) -> bytes:
        """Bytes at ``offset`` relative to the start of the FDT."""
        self.fh.seek(self.base + offset)
        data = self.fh.read(size)
        if len(data) != size:
            raise ParseError("FDT truncated")
        return data

    def _string(self, off: int) -> str:
        if off >= len(self.strings):
            raise ParseError("FDT property name offset outside the strings block")
        end = self.strings.find(b"\0", off)
        if end < 0:
            raise ParseError("FDT strings block not terminated")
        name = self.strings[off:end]
        if not _PROP_NAME.fullmatch(name):
            raise ParseError(f"FDT property name {name[:40]!r} is invalid")
        return name.decode("ascii")

    def reservations_empty(self) -> bool:
        """True when the memory reservation block holds only its terminator."""
        if self.off_rsvmap % 8 or self.off_rsvmap < _HEADER.size or self.off_rsvmap + 16 > self.off_struct:
            return False
        return self.read(self.off_rsvmap, 16) == b"\0" * 16

    def _parse(self) -> Node:
        fh = self.fh
        start = self.base + self.off_struct
        end = self.size_struct
        pos = 0
        stack: list[Node] = []
        root: Node | None = None
        depth_done = False
        while True:
            if len(self.tokens) >= _MAX_TOKENS:
                raise ParseError("FDT has too many tokens")
            if pos + 4 > end:
                raise ParseError("FDT structure block truncated")
            fh.seek(start + pos)
            tag = int.from_bytes(fh.read(4), "big")
            if tag == FDT_BEGIN_NODE:
                if depth_done:
                    raise ParseError("FDT has data after the root node")
                fh.seek(start + pos + 4)
                chunk = fh.read(min(256, end - pos - 4))
                nul = chunk.find(b"\0")
                if nul < 0:
                    raise ParseError("FDT node name not terminated")
                name = chunk[:nul].decode("utf-8", "replace")
                nxt = _align(pos + 4 + nul + 1)
                if stack:
                    parent = stack[-1]
                    path = parent.path.rstrip("/") + "/" + name
                    node = Node(name, path)
                    parent.children.setdefault(name, node)
                else:
                    if root is not None:
                        raise ParseError("FDT has two root nodes")
                    node = Node(name, "/")
                    root = node
                if len(stack) >= _MAX_DEPTH:
                    raise ParseError("FDT nested too deeply")
                stack.append(node)
                self.tokens.append(Token(tag, pos, nxt, name))
            elif tag == FDT_END_NODE:
                if not stack:
                    raise ParseError("FDT END_NODE without a node")
                stack.pop()
                if not stack:
                    depth_done = True
                nxt = pos + 4
                self.tokens.append(Token(tag, pos, nxt, ""))
            elif tag == FDT_PROP:
                if not stack:
                    raise ParseError("FDT property outside a node")
                hdr = fh.read(8)
                if len(hdr) < 8:
                    raise ParseError("FDT property truncated")
                plen, nameoff = struct.unpack(">II", hdr)
                vpos = pos + 12
                if vpos + plen > end:
                    raise ParseError("FDT property runs past the structure block")
                pname = self._string(nameoff)
                value = fh.read(plen) if plen <= _INLINE_LIMIT else None
                if value is not None and len(value) != plen:
                    raise ParseError("FDT property truncated")
                stack[-1].props.setdefault(pname, Prop(pname, self.off_struct + vpos, plen, value))
                nxt = _align(vpos + plen)
                self.tokens.append(Token(tag, pos, nxt, pname))
            elif tag == FDT_NOP:
                nxt = pos + 4
                self.tokens.append(Token(tag, pos, nxt, ""))
            elif tag == FDT_END:
                if stack or root is None:
                    raise ParseError("FDT ends inside a node")
                nxt = pos + 4
                self.tokens.append(Token(tag, pos, nxt, ""))
                if nxt != end:
                    raise ParseError("FDT structure block size does not match its END tag")
                return root
            else:
                raise ParseError(f"FDT has an unknown token {tag:#x} at {pos:#x}")
            pos = nxt

    # -- queries
    def node(self, path: str) -> Node | None:
        cur: Node | None = self.root
        for part in [p for p in path.split("/") if p]:
            if cur is None:
                return None
            cur = cur.children.get(part)
        return cur

    def prop_bytes(self, prop: Prop, limit: int = 16 * 1024 * 1024) -> bytes:
        if prop.value is not None:
            return prop.value
        if prop.size > limit:
            raise ParseError(f"FDT property {prop.name} is too large to load ({prop.size} bytes)")
        return self.read(prop.offset, prop.size)

    def find_regions(self, include: set[str], exclude_props: set[str]) -> list[tuple[int, int]]:
        """Regions (offset from FDT start, size) of the structure block U-Boot hashes.

        Same walk as libfdt's ``fdt_find_regions``: a listed node contributes
        its tags and properties (minus excluded ones); its direct subnodes
        contribute only their begin/end tags; the END tag always counts.
        """
        base = self.off_struct
        regions: list[list[int]] = []
        path_parts: list[str] = []
        stack: list[int] = []
        want = 0
        start = -1
        last: Token | None = None
        for tok in self.tokens:
            include_it = 0
            stop_at = tok.next
            if tok.tag == FDT_PROP:
                include_it = 1 if want >= 2 else 0
                stop_at = tok.offset
                if tok.name in exclude_props:
                    include_it = 0
            elif tok.tag == FDT_NOP:
                include_it = 1 if want >= 2 else 0
                stop_at = tok.offset
            elif tok.tag == FDT_BEGIN_NODE:
                path_parts.append(tok.name)
                path = "/" + "/".join(p for p in path_parts[1:]) if len(path_parts) > 1 else "/"
                stack.append(want)
                if want == 1:
                    stop_at = tok.offset
                if path in include:
                    want = 2
                elif want:
                    want -= 1
                else:
                    stop_at = tok.offset
                include_it = want
            elif tok.tag == FDT_END_NODE:
                include_it = want
                want = stack.pop()
                path_parts.pop()
            elif tok.tag == FDT_END:
                include_it = 1
            if include_it and start == -1:
                if regions and tok.offset == regions[-1][0] + regions[-1][1] - base:
                    start = regions.pop()[0] - base
                else:
                    start = tok.offset
            if not include_it and start != -1:
                regions.append([base + start, stop_at - start])
                start = -1
            last = tok
        assert last is not None
        regions.append([base + start, last.next - start])
        return [(o, s) for o, s in regions]


def _align(n: int) -> int:
    return (n + 3) & ~3
