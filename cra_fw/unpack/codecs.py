"""Block decompressors for cra-fw's own filesystem readers, bounded in output.

Vendor firmware compresses filesystem blocks with whatever its SDK shipped:
zlib, LZMA with the 13-byte ``lzma_alone`` header, LZMA with only the 5-byte
properties header (Broadcom's 7-Zip port, Ralink/Alpha SDKs), LZMA with no
header at all and fixed properties, xz, zstd, lz4.  Each is one small
:class:`Codec`; :func:`probe` finds the one that decodes a known block, so a
reader does not trust the superblock's compression id (vendors reuse the zlib
id for LZMA).  Every codec stops at ``limit`` output bytes.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass


class CodecError(ValueError):
    """A block does not decode with this codec."""


@dataclass(frozen=True)
class Codec:
    """One way to decode a compressed block into at most ``limit`` bytes."""

    name: str

    def decode(self, data: bytes, limit: int) -> bytes:
        raise NotImplementedError


class Zlib(Codec):
    def decode(self, data: bytes, limit: int) -> bytes:
        dec = zlib.decompressobj()
        try:
            out = dec.decompress(data, limit)
        except zlib.error as exc:
            raise CodecError(f"zlib: {exc}") from exc
        if not out and not dec.eof:
            raise CodecError("zlib: no output")
        return out


def _lzma1_filter(props: int, dict_size: int) -> dict:
    if props >= 9 * 5 * 5:
        raise CodecError(f"lzma: invalid properties byte {props:#x}")
    pb, rest = divmod(props, 45)
    lp, lc = divmod(rest, 9)
    # a decoder's dictionary only needs to cover the block; vendors write absurd sizes
    dict_size = min(max(dict_size, 4096), 1 << 26)
    return {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}


def _raw_lzma1(payload: bytes, filt: dict, limit: int) -> bytes:
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[filt])
        out = dec.decompress(payload, max_length=limit)
    except lzma.LZMAError as exc:
        raise CodecError(f"lzma: {exc}") from exc
    if not out:
        raise CodecError("lzma: no output")
    return out


class LzmaAlone(Codec):
    """``lzma_alone``: properties byte, dictionary size, 64-bit uncompressed size, stream."""

    def decode(self, data: bytes, limit: int) -> bytes:
        if len(data) < 14:
            raise CodecError("lzma: block shorter than its header")
        props, dict_size, size = struct.unpack_from("<BIQ", data, 0)
        if size != 0xFFFFFFFFFFFFFFFF and size > limit:
            raise CodecError(f"lzma: header says {size} bytes, more than the block size {limit}")
        # a stream without an end marker decodes past its size: stop where the header says
        return _raw_lzma1(data[13:], _lzma1_filter(props, dict_size), min(size, limit))


class LzmaProps(Codec):
    """Properties byte and dictionary size only, no uncompressed size (Broadcom/Ralink 7-Zip ports)."""

    def decode(self, data: bytes, limit: int) -> bytes:
        if len(data) < 6:
            raise CodecError("lzma: block shorter than its header")
        props, dict_size = struct.unpack_from("<BI", data, 0)
        return _raw_lzma1(data[5:], _lzma1_filter(props, dict_size), limit)


@dataclass(frozen=True)
class LzmaRaw(Codec):
    """No header: the vendor's fixed lc/lp/pb (found by :func:`probe`)."""

    props: int = 0x5D

    def decode(self, data: bytes, limit: int) -> bytes:
        return _raw_lzma1(data, _lzma1_filter(self.props, limit), limit)


class Xz(Codec):
    def decode(self, data: bytes, limit: int) -> bytes:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            out = dec.decompress(data, max_length=limit)
        except lzma.LZMAError as exc:
            raise CodecError(f"xz: {exc}") from exc
        return out


class Zstd(Codec):
    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            import zstandard
        except ImportError as exc:
            raise CodecError("zstd: the zstandard module is not installed") from exc
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)[:limit]
        except zstandard.ZstdError as exc:
            raise CodecError(f"zstd: {exc}") from exc


class Lz4(Codec):
    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            import lz4.block
        except ImportError as exc:
            raise CodecError("lz4: the lz4 module is not installed") from exc
        try:
            return lz4.block.decompress(data, uncompressed_size=limit)
        except Exception as exc:  # noqa: BLE001 - lz4 raises LZ4BlockError or ValueError
            raise CodecError(f"lz4: {exc}") from exc


class Lzo(Codec):
    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            import lzo  # type: ignore[import-not-found]
        except ImportError as exc:
            raise CodecError("lzo: the python-lzo module is not installed") from exc
        try:
            return lzo.decompress(data, False, limit)
        except lzo.error as exc:
            raise CodecError(f"lzo: {exc}") from exc


ZLIB = Zlib("zlib")
LZMA_ALONE = LzmaAlone("lzma")
LZMA_PROPS = LzmaProps("lzma-5-byte-header")
XZ = Xz("xz")
ZSTD = Zstd("zstd")
LZ4 = Lz4("lz4")
LZO = Lzo("lzo")

# lc/lp/pb combinations seen in headerless vendor LZMA: the LZMA SDK default first
RAW_LZMA = tuple(
    LzmaRaw(f"lzma-raw(lc={lc},lp={lp},pb={pb})", props=(pb * 5 + lp) * 9 + lc)
    for lc, lp, pb in ((3, 0, 2), (0, 2, 2), (1, 2, 2), (0, 0, 0), (3, 2, 2), (1, 0, 2), (2, 0, 2), (0, 0, 2))
)

CODECS: tuple[Codec, ...] = (ZLIB, LZMA_ALONE, LZMA_PROPS, XZ, ZSTD, LZ4, LZO, *RAW_LZMA)


def probe(
    block: bytes, limit: int, expect: int | None = None, order: Iterable[Codec] = CODECS
) -> Codec | None:
    """The first codec that decodes ``block`` (to exactly ``expect`` bytes when given)."""
    for codec in order:
        try:
            out = codec.decode(block, limit)
        except CodecError:
            continue
        if out and (expect is None or len(out) == expect):
            return codec
    return None
