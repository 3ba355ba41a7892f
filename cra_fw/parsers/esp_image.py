"""Espressif application and bootloader image reader (ESP8266 v1/v2, ESP32 family).

Layouts, as esptool writes and the ROM / 2nd-stage bootloaders read them:

* common header (8 bytes): magic 0xE9, segment count, flash mode, flash size/frequency
  nibbles, entry point;
* ESP32 family: 16-byte extended header (WP pin, SPI drive, chip id, min/max chip
  revision, ``hash_appended``); segments (u32 load address, u32 length, data); padding to
  16 bytes with the XOR checksum (seed 0xEF) in the last byte; an optional SHA-256 of
  everything before it; Secure Boot v2 signature sector (blocks of 1216 bytes, magic 0xE7)
  at the next 4 KiB boundary, or a Secure Boot v1 signature (u32 0 + 64 bytes) right after;
* ESP8266 v1: like above without the extended header and digest;
* ESP8266 v2 (magic 0xEA): a first header, the irom0 segment (load address 0 in the file,
  mapped at 0x40200000 + flash offset + 0x10), a v1 header with the RAM segments and
  checksum, then a CRC-32 (the SDK's variant).

The first segment of an ESP-IDF application starts with ``esp_app_desc_t`` (magic
0xABCD5432: version, project name, build time/date, IDF version, ELF SHA-256, secure
version); an IDF >= 5 bootloader with ``esp_bootloader_desc_t`` (magic byte 0x50).
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import zlib
from dataclasses import dataclass, replace

from cra_fw.parsers import ParseError, cstr

MAGIC = 0xE9
MAGIC_V2 = 0xEA
CHECKSUM_SEED = 0xEF
MAX_SEGMENTS = 16
MAX_SEGMENT_SIZE = 16 << 20
APP_DESC_MAGIC = 0xABCD5432
BOOTLOADER_DESC_MAGIC = 0x50
SIG_BLOCK_MAGIC = 0xE7
SIG_BLOCK_SIZE = 1216
SECTOR = 4096

CHIPS = {
    0: "esp32",
    2: "esp32s2",
    5: "esp32c3",
    9: "esp32s3",
    12: "esp32c2",
    13: "esp32c6",
    16: "esp32h2",
    18: "esp32p4",
    20: "esp32c61",
    23: "esp32c5",
    25: "esp32h21",
    28: "esp32h4",
}
FLASH_MODES = {0: "qio", 1: "qout", 2: "dio", 3: "dout", 4: "fast_read", 5: "slow_read"}
FLASH_SIZES_ESP32 = {0: "1MB", 1: "2MB", 2: "4MB", 3: "8MB", 4: "16MB", 5: "32MB", 6: "64MB", 7: "128MB"}
FLASH_SIZES_ESP8266 = {
    0: "512KB",
    1: "256KB",
    2: "1MB",
    3: "2MB",
    4: "4MB",
    5: "2MB-c1",
    6: "4MB-c1",
    8: "8MB",
    9: "16MB",
}
SIG_VERSIONS = {2: "rsa3072", 3: "ecdsa"}


@dataclass(frozen=True)
class Segment:
    load_addr: int
    offset: int  # absolute offset of the segment's data
    size: int


@dataclass(frozen=True)
class AppDescriptor:
    """``esp_app_desc_t``: what the application says about itself."""

    offset: int
    secure_version: int
    version: str
    project_name: str
    time: str
    date: str
    idf_ver: str
    app_elf_sha256: str  # hex


@dataclass(frozen=True)
class BootloaderDescriptor:
    """``esp_bootloader_desc_t`` (ESP-IDF 5.x bootloaders)."""

    offset: int
    secure_version: int
    version: int
    idf_ver: str
    date_time: str


@dataclass(frozen=True)
class SignatureBlock:
    offset: int
    scheme: str  # "rsa3072" or "ecdsa"
    crc_ok: bool


@dataclass(frozen=True)
class EspImage:
    offset: int
    format: str  # "esp32", "esp8266-v1", "esp8266-v2"
    chip: str  # "esp32c3"..., "esp8266", or "" for an unknown chip id
    chip_id: int | None
    flash_mode: str
    flash_size: str
    flash_freq: int  # the raw low nibble: its meaning differs per chip
    entry: int
    segments: tuple[Segment, ...]
    checksum: int
    checksum_computed: int
    hash_appended: bool
    sha256: bytes  # stored digest ("" when none)
    sha256_computed: bytes
    end: int  # absolute end of the image (checksum, digest, CRC), before any signature
    min_rev_full: int = 0
    max_rev_full: int = 0
    crc32_ok: bool | None = None  # ESP8266 v2 only
    app: AppDescriptor | None = None
    bootloader: BootloaderDescriptor | None = None
    signature_sector: int | None = None  # Secure Boot v2 sector offset, when one is present
    signature_blocks: tuple[SignatureBlock, ...] = ()
    sbv1_signature: int | None = None  # offset of a plausible Secure Boot v1 signature
    esp8266_boot: bool = False  # an ESP8266 v1 image that prints a 2nd-stage boot banner

    @property
    def checksum_ok(self) -> bool:
        return self.checksum == self.checksum_computed

    @property
    def sha256_ok(self) -> bool | None:
        return self.sha256 == self.sha256_computed if self.hash_appended else None

    @property
    def is_bootloader(self) -> bool:
        """A 2nd-stage bootloader: every segment loads into RAM, none is flash-mapped."""
        if self.bootloader is not None:
            return True
        if self.app is not None or self.format == "esp8266-v2":
            return False
        if self.format == "esp8266-v1":
            return self.esp8266_boot
        return not any(_flash_mapped(self.chip, s.load_addr) for s in self.segments)

    @property
    def signed_end(self) -> int:
        """End of the image including a Secure Boot signature sector/appendix, if any."""
        if self.signature_sector is not None:
            return self.signature_sector + SECTOR
        if self.sbv1_signature is not None:
            return self.sbv1_signature + 68
        return self.end


def _flash_mapped(chip: str, addr: int) -> bool:
    if chip in ("esp32", "esp32s2"):
        return 0x3F400000 <= addr < 0x3F800000 or 0x400C2000 <= addr < 0x40C00000
    # newer chips map flash at 0x3C000000-0x3E000000 (data) and 0x42000000-0x44000000 (code)
    return 0x3C000000 <= addr < 0x3E000000 or 0x42000000 <= addr < 0x44000000


def xor_checksum(data: bytes, seed: int = CHECKSUM_SEED) -> int:
    """The ROM's one-byte XOR checksum over segment data."""
    value = seed
    # fold 8 bytes at a time: XOR is associative, so the byte-wise result is the same
    n = len(data) // 8 * 8
    if n:
        acc = 0
        for (word,) in struct.iter_unpack("<Q", data[:n]):
            acc ^= word
        for _ in range(8):
            value ^= acc & 0xFF
            acc >>= 8
    for byte in data[n:]:
        value ^= byte
    return value


def esp8266_crc32(data: bytes) -> int:
    """The ESP8266 SDK's CRC variant appended to v2 images (as esptool computes it)."""
    crc = binascii.crc32(data, 0) & 0xFFFFFFFF
    return crc ^ 0xFFFFFFFF if crc & 0x80000000 else crc + 1


def _segments(
    data: bytes, base: int, pos: int, count: int, checksum_from: int
) -> tuple[list[Segment], int, int]:
    """Read ``count`` segments from ``pos``; (segments, end position, checksum)."""
    if not 0 < count <= MAX_SEGMENTS:
        raise ParseError(f"segment count {count} is outside 1..{MAX_SEGMENTS}")
    segs: list[Segment] = []
    checksum = checksum_from
    for _ in range(count):
        if pos + 8 > len(data):
            raise ParseError("segment header truncated")
        addr, size = struct.unpack_from("<II", data, pos)
        if size > MAX_SEGMENT_SIZE or pos + 8 + size > len(data):
            raise ParseError(f"segment at {pos - base:#x} of {size} bytes runs past the data")
        segs.append(Segment(addr, pos + 8, size))
        checksum = xor_checksum(bytes(data[pos + 8 : pos + 8 + size]), checksum)
        pos += 8 + size
    return segs, pos, checksum


def _checksum_pos(base: int, pos: int) -> int:
    # the checksum is the last byte of the 16-byte line the segments end in
    return base + ((pos - base) | 0xF)


def parse(data: bytes, offset: int = 0) -> EspImage:
    """Read the ESP image at ``offset``; raise ParseError when it is not one."""
    if offset < 0 or offset + 8 > len(data):
        raise ParseError("ESP image header truncated")
    magic = data[offset]
    if magic == MAGIC_V2:
        return _parse_v2(data, offset)
    if magic != MAGIC:
        raise ParseError("no ESP image magic")
    errors = []
    candidates = []
    for reader in (_parse_esp32, _parse_esp8266_v1):
        try:
            candidates.append(reader(data, offset))
        except ParseError as exc:
            errors.append(str(exc))
    if not candidates:
        raise ParseError("; ".join(errors))
    # both layouts may parse: the one whose checksum agrees is the image
    good = [c for c in candidates if c.checksum_ok]
    return (good or candidates)[0]


def _common(data: bytes, offset: int) -> tuple[int, int, int, int]:
    _magic, count, mode, size_freq, entry = struct.unpack_from("<BBBBI", data, offset)
    return count, mode, size_freq, entry


def _parse_esp32(data: bytes, offset: int) -> EspImage:
    if offset + 24 > len(data):
        raise ParseError("ESP32 header truncated")
    count, mode, size_freq, entry = _common(data, offset)
    (_wp, _d1, _d2, _d3, chip_id, _min_rev, min_full, max_full, r0, r1, r2, r3, hash_appended) = (
        struct.unpack_from("<BBBBHBHH4BB", data, offset + 8)
    )
    if hash_appended not in (0, 1) or (r0, r1, r2, r3) != (0, 0, 0, 0) or chip_id not in CHIPS:
        raise ParseError("not an ESP32-family extended header")
    segs, pos, computed = _segments(data, offset, offset + 24, count, CHECKSUM_SEED)
    cpos = _checksum_pos(offset, pos)
    if cpos >= len(data):
        raise ParseError("checksum byte missing")
    end = cpos + 1
    stored = b""
    digest = b""
    if hash_appended:
        if end + 32 > len(data):
            raise ParseError("appended SHA-256 missing")
        stored = bytes(data[end : end + 32])
        digest = _sha256(data, offset, end)
        end += 32
    chip = CHIPS[chip_id]
    image = EspImage(
        offset=offset,
        format="esp32",
        chip=chip,
        chip_id=chip_id,
        flash_mode=FLASH_MODES.get(mode, str(mode)),
        flash_size=FLASH_SIZES_ESP32.get(size_freq >> 4, str(size_freq >> 4)),
        flash_freq=size_freq & 0xF,
        entry=entry,
        segments=tuple(segs),
        checksum=data[cpos],
        checksum_computed=computed,
        hash_appended=bool(hash_appended),
        sha256=stored,
        sha256_computed=digest,
        end=end,
        min_rev_full=min_full,
        max_rev_full=max_full,
        app=_app_desc(data, segs[0]),
        bootloader=_bootloader_desc(data, segs[0]),
    )
    return _with_signatures(data, image)


def _parse_esp8266_v1(data: bytes, offset: int) -> EspImage:
    count, mode, size_freq, entry = _common(data, offset)
    segs, pos, computed = _segments(data, offset, offset + 8, count, CHECKSUM_SEED)
    if not all(0x3FFE0000 <= s.load_addr < 0x40300000 for s in segs):
        raise ParseError("segment load addresses are not ESP8266 RAM/flash")
    cpos = _checksum_pos(offset, pos)
    if cpos >= len(data):
        raise ParseError("checksum byte missing")
    # Espressif's boot_v1.x prints "2nd boot version", rBoot "rBoot v": a bootloader, not an app
    banner = any(
        data.find(marker, s.offset, s.offset + s.size) != -1
        for s in segs
        for marker in (b"2nd boot version", b"rBoot v")
    )
    return EspImage(
        offset=offset,
        format="esp8266-v1",
        esp8266_boot=banner,
        chip="esp8266",
        chip_id=None,
        flash_mode=FLASH_MODES.get(mode, str(mode)),
        flash_size=FLASH_SIZES_ESP8266.get(size_freq >> 4, str(size_freq >> 4)),
        flash_freq=size_freq & 0xF,
        entry=entry,
        segments=tuple(segs),
        checksum=data[cpos],
        checksum_computed=computed,
        hash_appended=False,
        sha256=b"",
        sha256_computed=b"",
        end=cpos + 1,
    )


def _parse_v2(data: bytes, offset: int) -> EspImage:
    if offset + 16 > len(data):
        raise ParseError("ESP8266 v2 header truncated")
    _addr, irom_size = struct.unpack_from("<II", data, offset + 8)
    second = offset + 16 + irom_size
    if irom_size > MAX_SEGMENT_SIZE or second + 8 > len(data) or data[second] != MAGIC:
        raise ParseError("ESP8266 v2 image: no v1 header after the irom0 segment")
    irom = Segment(0, offset + 16, irom_size)
    # esptool and the SDK bootloader use the second header's flash settings
    count, mode, size_freq, entry = _common(data, second)
    segs, pos, computed = _segments(data, offset, second + 8, count, CHECKSUM_SEED)
    cpos = _checksum_pos(offset, pos)
    if cpos + 5 > len(data):
        raise ParseError("checksum or CRC-32 missing")
    (crc,) = struct.unpack_from("<I", data, cpos + 1)
    crc_ok = crc == esp8266_crc32(bytes(data[offset : cpos + 1]))
    return EspImage(
        offset=offset,
        format="esp8266-v2",
        chip="esp8266",
        chip_id=None,
        flash_mode=FLASH_MODES.get(mode, str(mode)),
        flash_size=FLASH_SIZES_ESP8266.get(size_freq >> 4, str(size_freq >> 4)),
        flash_freq=size_freq & 0xF,
        entry=entry,
        segments=(irom, *segs),
        checksum=data[cpos],
        checksum_computed=computed,
        hash_appended=False,
        sha256=b"",
        sha256_computed=b"",
        end=cpos + 5,
        crc32_ok=crc_ok,
    )


def _sha256(data: bytes, start: int, end: int) -> bytes:
    digest = hashlib.sha256()
    for pos in range(start, end, 1 << 20):
        digest.update(data[pos : min(end, pos + (1 << 20))])
    return digest.digest()


def _app_desc(data: bytes, seg: Segment) -> AppDescriptor | None:
    pos = seg.offset
    if seg.size < 256 or struct.unpack_from("<I", data, pos)[0] != APP_DESC_MAGIC:
        return None
    raw = bytes(data[pos : pos + 256])
    (secure_version,) = struct.unpack_from("<I", raw, 4)
    return AppDescriptor(
        offset=pos,
        secure_version=secure_version,
        version=cstr(raw[16:48]),
        project_name=cstr(raw[48:80]),
        time=cstr(raw[80:96]),
        date=cstr(raw[96:112]),
        idf_ver=cstr(raw[112:144]),
        app_elf_sha256=raw[144:176].hex(),
    )


def _bootloader_desc(data: bytes, seg: Segment) -> BootloaderDescriptor | None:
    pos = seg.offset
    if seg.size < 80 or data[pos] != BOOTLOADER_DESC_MAGIC:
        return None
    raw = bytes(data[pos : pos + 80])
    (version,) = struct.unpack_from("<I", raw, 4)
    idf = cstr(raw[8:40])
    if not idf.startswith("v"):
        return None  # the byte 0x50 alone is too weak
    return BootloaderDescriptor(
        offset=pos, secure_version=raw[1], version=version, idf_ver=idf, date_time=cstr(raw[40:64])
    )


def _with_signatures(data: bytes, image: EspImage) -> EspImage:
    """Locate a Secure Boot v2 signature sector or a v1 signature after the image."""
    rel = image.end - image.offset
    sector = image.offset + (rel + SECTOR - 1) // SECTOR * SECTOR
    blocks: list[SignatureBlock] = []
    if sector + SIG_BLOCK_SIZE <= len(data):
        for i in range(3):
            pos = sector + i * SIG_BLOCK_SIZE
            if pos + SIG_BLOCK_SIZE > len(data) or data[pos] != SIG_BLOCK_MAGIC:
                break
            scheme = SIG_VERSIONS.get(data[pos + 1])
            if scheme is None:
                break
            (crc,) = struct.unpack_from("<I", data, pos + 1196)
            crc_ok = crc == zlib.crc32(bytes(data[pos : pos + 1196])) & 0xFFFFFFFF
            blocks.append(SignatureBlock(pos, scheme, crc_ok))
    if blocks:
        return replace(image, signature_sector=sector, signature_blocks=tuple(blocks))
    appendix = bytes(data[image.end : image.end + 68])
    if len(appendix) == 68 and appendix[:4] == b"\0\0\0\0" and len(set(appendix[4:])) > 16:
        return replace(image, sbv1_signature=image.end)
    return image
