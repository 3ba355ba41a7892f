"""Arcadyan-obfuscated LZMA image (Linksys WRT120N and other Arcadyan-built devices).

The vendor hides an LZMA stream behind a four-byte tag: it swaps the 32-byte block
at offset 4 (the start of the LZMA header) with the one at 0x68, and in the block it
moves to 0x68 swaps each pair of bytes and the two nibbles of each byte.  So the
obfuscated file shows ``00 d5 08 00`` at 0x68 where a plain stream starts
``5d 00 00 80``.  Undoing the two swaps gives the tag, then an ordinary LZMA stream
(13-byte header with the uncompressed size).  The layer is that stream, decoded to its
end once to find where it stops; the de-obfuscated stream is written as
``firmware.lzma`` and decompressed one level down.

Some images end with a 12-byte footer: the length of the image from the tag on, the word
0x12345678 and the CRC-32 of those bytes (little-endian); it is checked when present
(``footer_crc``).  The bytes between the stream and the footer are not interpreted.
"""

from __future__ import annotations

import lzma
import mmap
import struct
from pathlib import Path

from cra_fw.unpack.checksums import crc32
from cra_fw.unpack.native import NativeHandler, Region, mapped

MAGIC = b"\x00\xd5\x08\x00"  # "5d 00 00 80" after the swaps
MAGIC_AT = 0x68
BLOCK = 32
HEAD = MAGIC_AT + BLOCK
MAX_OUTPUT = 1 << 30  # decoding past this is not a firmware image
CHUNK = 1 << 18
FOOTER_MAGIC = 0x12345678


def _swapped(block: bytes) -> bytes:
    """Each pair of bytes exchanged and each byte's nibbles exchanged (its own inverse)."""
    pairs = bytearray(len(block))
    pairs[0::2], pairs[1::2] = block[1::2], block[0::2]
    return bytes(((b & 0x0F) << 4) | (b >> 4) for b in pairs)


def plain_head(head: bytes) -> bytes:
    """The first ``HEAD`` bytes with the obfuscation undone."""
    return head[:4] + _swapped(head[MAGIC_AT:HEAD]) + head[4 + BLOCK : MAGIC_AT] + head[4 : 4 + BLOCK]


def _stream_end(data: mmap.mmap, start: int, head: bytes) -> int | None:
    """Offset just past the LZMA stream at ``start`` (whose plain first bytes are ``head``), or None."""
    decoder = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    produced = 0
    pos = start + HEAD
    try:
        chunk = head[4:]
        while True:
            produced += len(decoder.decompress(chunk, max_length=CHUNK))
            while not decoder.eof and not decoder.needs_input and produced <= MAX_OUTPUT:
                produced += len(decoder.decompress(b"", max_length=CHUNK))
            if decoder.eof:
                return pos - len(decoder.unused_data)
            if produced > MAX_OUTPUT or pos >= len(data):
                return None
            chunk = bytes(data[pos : pos + CHUNK])
            pos += len(chunk)
    except lzma.LZMAError:
        return None


class ArcadyanHandler(NativeHandler):
    name = "arcadyan"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        pos = data.find(MAGIC, MAGIC_AT)
        while pos != -1:
            region = self._region(data, pos - MAGIC_AT)
            if region is not None:
                out.append(region)
            pos = data.find(MAGIC, region.end + MAGIC_AT if region is not None else pos + 1)
        return out

    def _region(self, data: mmap.mmap, start: int) -> Region | None:
        head = bytes(data[start : start + HEAD])
        if len(head) < HEAD:
            return None
        plain = plain_head(head)
        dictionary, size = struct.unpack_from("<IQ", plain, 5)
        if not 1 << 12 <= dictionary <= 1 << 30 or (size != (1 << 64) - 1 and size > MAX_OUTPUT):
            return None
        end = _stream_end(data, start, plain)
        if end is None:
            return None
        details = {
            "tag": plain[:4].hex(),
            "dictionary_size": str(dictionary),
            "uncompressed_size": "unknown" if size == (1 << 64) - 1 else str(size),
        }
        if len(data) - end >= 12:
            length, magic, crc = struct.unpack("<III", data[len(data) - 12 :])
            if magic == FOOTER_MAGIC and length == end - start:
                details["footer_crc"] = "ok" if crc32(data, start, end) == crc else "mismatch"
        return Region(start, end, details=details, members=(("firmware.lzma", start + 4, end - start - 4),))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        with mapped(path) as data, open(outdir / "firmware.lzma", "wb") as out:
            out.write(plain_head(bytes(data[region.start : region.start + HEAD]))[4:])
            for pos in range(region.start + HEAD, region.end, 1 << 20):
                out.write(data[pos : min(pos + (1 << 20), region.end)])
