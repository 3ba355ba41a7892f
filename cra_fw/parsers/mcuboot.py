"""MCUboot image reader: header, version, protected and unprotected TLV areas.

Layout (MCUboot ``bootutil/image.h``, imgtool ``image.py``)::

    header (32 bytes, padded to hdr_size) | payload (img_size) |
    [protected TLV info 0x6908 + entries (protect_tlv_size bytes)] |
    TLV info 0x6907 (u16 magic, u16 total incl. info) + entries (u16 type, u16 len, value)

The image hash (and signature) covers header + payload + protected TLV area.  Images
are little-endian unless built with ``imgtool --endian big``; both are read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cra_fw.parsers import ParseError

MAGIC = 0x96F3B83D
MAGIC_LE = struct.pack("<I", MAGIC)
MAGIC_BE = struct.pack(">I", MAGIC)
HEADER_SIZE = 32
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
MAX_TLVS = 256

FLAGS = {
    0x01: "pic",
    0x04: "encrypted_aes128",
    0x08: "encrypted_aes256",
    0x10: "non_bootable",
    0x20: "ram_load",
    0x100: "rom_fixed",
    0x200: "compressed_lzma1",
    0x400: "compressed_lzma2",
    0x800: "compressed_arm_thumb",
}
ENCRYPTED = 0x04 | 0x08

TLV_NAMES = {
    0x01: "KEYHASH",
    0x02: "PUBKEY",
    0x10: "SHA256",
    0x11: "SHA384",
    0x12: "SHA512",
    0x20: "RSA2048_PSS",
    0x21: "ECDSA224",
    0x22: "ECDSA_SIG",
    0x23: "RSA3072_PSS",
    0x24: "ED25519",
    0x25: "SIG_PURE",
    0x30: "ENC_RSA2048",
    0x31: "ENC_KW",
    0x32: "ENC_EC256",
    0x33: "ENC_X25519",
    0x34: "ENC_X25519_SHA512",
    0x40: "DEPENDENCY",
    0x50: "SEC_CNT",
    0x60: "BOOT_RECORD",
    0x70: "DECOMP_SIZE",
    0x71: "DECOMP_SHA",
    0x72: "DECOMP_SIGNATURE",
    0x73: "COMP_DEC_SIZE",
    0x74: "UUID_VID",
    0x75: "UUID_CID",
}
HASH_TLVS = frozenset({0x10, 0x11, 0x12})
SIGNATURE_TLVS = frozenset({0x20, 0x21, 0x22, 0x23, 0x24})


@dataclass(frozen=True)
class Tlv:
    type: int
    offset: int  # absolute offset of the value in the buffer
    value: bytes
    protected: bool

    @property
    def name(self) -> str:
        if self.type in TLV_NAMES:
            return TLV_NAMES[self.type]
        return f"VENDOR_{self.type:#06x}" if self.type >= 0xA0 else f"TLV_{self.type:#04x}"


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    revision: int
    build: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.revision}+{self.build}"


@dataclass(frozen=True)
class McubootImage:
    offset: int  # absolute offset of the header
    endian: str  # "little" or "big"
    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: Version
    tlvs: tuple[Tlv, ...]
    end: int  # absolute end of the last TLV area
    tlv_error: str = ""  # why the TLV area could not be read whole ("" when it was)

    @property
    def payload_start(self) -> int:
        return self.offset + self.hdr_size

    @property
    def payload_end(self) -> int:
        return self.payload_start + self.img_size

    @property
    def hashed_end(self) -> int:
        """End of the bytes the image hash and signature cover (header, payload, protected TLVs)."""
        return self.payload_end + self.protect_tlv_size

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & ENCRYPTED)

    @property
    def flag_names(self) -> tuple[str, ...]:
        names = [name for bit, name in FLAGS.items() if self.flags & bit]
        unknown = self.flags & ~sum(FLAGS)
        if unknown:
            names.append(f"{unknown:#x}")
        return tuple(names)

    def tlv(self, type_: int) -> Tlv | None:
        """The first TLV of that type, or None."""
        return next((t for t in self.tlvs if t.type == type_), None)

    @property
    def signature_tlvs(self) -> tuple[Tlv, ...]:
        return tuple(t for t in self.tlvs if t.type in SIGNATURE_TLVS)

    @property
    def security_counter(self) -> int | None:
        tlv = self.tlv(0x50)
        if tlv is None or len(tlv.value) != 4:
            return None
        order = "<" if self.endian == "little" else ">"
        return int(struct.unpack(order + "I", tlv.value)[0])


def find(data: bytes, start: int = 0) -> int:
    """Offset of the next MCUboot magic (either byte order) at or after ``start``, or -1."""
    le = data.find(MAGIC_LE, start)
    be = data.find(MAGIC_BE, start)
    hits = [p for p in (le, be) if p != -1]
    return min(hits) if hits else -1


def parse(data: bytes, offset: int = 0) -> McubootImage:
    """Read the MCUboot image whose header starts at ``offset``.

    Raises ParseError when the header is not MCUboot or the payload runs past the
    buffer.  A damaged TLV area is kept as ``tlv_error`` with the TLVs read so far,
    so a verifier can say what is wrong instead of "not an image".
    """
    if offset < 0 or offset + HEADER_SIZE > len(data):
        raise ParseError("MCUboot header truncated")
    magic_bytes = bytes(data[offset : offset + 4])
    if magic_bytes == MAGIC_LE:
        order, endian = "<", "little"
    elif magic_bytes == MAGIC_BE:
        order, endian = ">", "big"
    else:
        raise ParseError("no MCUboot magic")
    (_, load_addr, hdr_size, prot_size, img_size, flags, major, minor, revision, build, _pad) = (
        struct.unpack_from(order + "IIHHIIBBHII", data, offset)
    )
    if hdr_size < HEADER_SIZE:
        raise ParseError(f"MCUboot header size {hdr_size} is below {HEADER_SIZE}")
    payload_end = offset + hdr_size + img_size
    if payload_end > len(data):
        raise ParseError(
            f"MCUboot payload truncated: header says {img_size} bytes after a {hdr_size}-byte header"
        )
    tlvs: list[Tlv] = []
    error = ""
    pos = payload_end
    if prot_size:
        pos, error = _tlv_area(data, pos, order, TLV_PROT_INFO_MAGIC, True, tlvs)
        if not error and pos != payload_end + prot_size:
            error = f"protected TLV area is {pos - payload_end} bytes, header says {prot_size}"
    if not error:
        pos, error = _tlv_area(data, pos, order, TLV_INFO_MAGIC, False, tlvs)
    return McubootImage(
        offset=offset,
        endian=endian,
        load_addr=load_addr,
        hdr_size=hdr_size,
        protect_tlv_size=prot_size,
        img_size=img_size,
        flags=flags,
        version=Version(major, minor, revision, build),
        tlvs=tuple(tlvs),
        end=max(pos, payload_end + prot_size) if not error else pos,
        tlv_error=error,
    )


def _tlv_area(
    data: bytes, pos: int, order: str, magic: int, protected: bool, out: list[Tlv]
) -> tuple[int, str]:
    """Append the TLVs of the area at ``pos`` to ``out``; (end of area, error text)."""
    kind = "protected TLV" if protected else "TLV"
    if pos + 4 > len(data):
        return pos, f"{kind} area missing (image ends at the payload)"
    info_magic, total = struct.unpack_from(order + "HH", data, pos)
    if info_magic != magic:
        return pos, f"{kind} info magic {info_magic:#06x}, expected {magic:#06x}"
    end = pos + total
    if total < 4 or end > len(data):
        return pos, f"{kind} area of {total} bytes runs past the end of the data"
    cursor = pos + 4
    count = 0
    while cursor < end:
        if cursor + 4 > end or count >= MAX_TLVS:
            return cursor, f"{kind} entry at {cursor:#x} is malformed"
        type_, length = struct.unpack_from(order + "HH", data, cursor)
        if order == ">" and type_ & 0xFF == 0 and type_ >> 8 in TLV_NAMES:
            # imgtool writes standard types as (u8 type, u8 pad) in either byte order
            type_ >>= 8
        if cursor + 4 + length > end:
            return cursor, f"{kind} entry {type_:#x} at {cursor:#x} runs past its area"
        out.append(Tlv(type_, cursor + 4, bytes(data[cursor + 4 : cursor + 4 + length]), protected))
        cursor += 4 + length
        count += 1
    return end, ""
