"""Canonical layer format names and the facts read from a format's header.

The mapping from each backend's own names to canonical names is data
(``signatures/formats/formats.toml``).  Header facts (squashfs compression,
jffs2 endianness, uImage fields...) are read here by one small function per
format, so both backends report the same details.
"""

from __future__ import annotations

import re
import struct
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir


@dataclass(frozen=True)
class FormatSpec:
    name: str
    unblob: tuple[str, ...]
    binwalk: tuple[re.Pattern[str], ...]
    container: bool = True


@dataclass(frozen=True)
class FormatTable:
    formats: tuple[FormatSpec, ...]

    def by_name(self, name: str) -> FormatSpec | None:
        for spec in self.formats:
            if spec.name == name:
                return spec
        return None

    def from_unblob(self, handler: str) -> FormatSpec | None:
        for spec in self.formats:
            if handler in spec.unblob:
                return spec
        return None

    def from_binwalk(self, description: str) -> FormatSpec | None:
        for spec in self.formats:
            if any(p.search(description) for p in spec.binwalk):
                return spec
        return None


@cache
def load_formats(path: Path | None = None) -> FormatTable:
    """Load and validate the format table."""
    path = path or signatures_dir() / "formats" / "formats.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SignatureDataError(f"{path}: {exc}; fix or restore the file") from exc
    specs = []
    for item in data.get("format", []):
        if not isinstance(item.get("name"), str):
            raise SignatureDataError(f"{path}: a [[format]] entry has no name")
        specs.append(
            FormatSpec(
                name=item["name"],
                unblob=tuple(item.get("unblob", ())),
                binwalk=tuple(re.compile(p, re.IGNORECASE) for p in item.get("binwalk", ())),
                container=bool(item.get("container", True)),
            )
        )
    return FormatTable(tuple(specs))


# --- header facts -----------------------------------------------------------

SQUASHFS_COMPRESSION = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
UIMAGE_OS = {0: "invalid", 1: "openbsd", 2: "netbsd", 3: "freebsd", 5: "linux", 17: "u-boot", 19: "rtems"}
UIMAGE_ARCH = {
    2: "arm",
    3: "x86",
    5: "mips",
    6: "mips64",
    7: "powerpc",
    15: "sh",
    17: "sparc64",
    20: "x86_64",
    22: "arm64",
    25: "riscv",
    26: "arc",
}
UIMAGE_TYPE = {
    1: "standalone",
    2: "kernel",
    3: "ramdisk",
    4: "multi",
    5: "firmware",
    6: "script",
    7: "filesystem",
    8: "flat_dt",
    14: "kernel_noload",
}
UIMAGE_COMP = {0: "none", 1: "gzip", 2: "bzip2", 3: "lzma", 4: "lzo", 5: "lz4", 6: "zstd"}


def _squashfs(head: bytes) -> dict[str, str]:
    if len(head) < 30:
        return {}
    if head[:4] == b"hsqs":
        endian = "<"
    elif head[:4] == b"sqsh":
        endian = ">"
    else:
        return {"variant": "vendor"}
    major, minor = struct.unpack_from(endian + "HH", head, 28)
    out = {"version": f"{major}.{minor}", "endianness": "little" if endian == "<" else "big"}
    if major >= 4:
        comp = struct.unpack_from(endian + "H", head, 20)[0]
        out["compression"] = SQUASHFS_COMPRESSION.get(comp, f"id{comp}")
    return out


def _jffs2(head: bytes) -> dict[str, str]:
    if head[:2] == b"\x85\x19":
        return {"endianness": "little"}
    if head[:2] == b"\x19\x85":
        return {"endianness": "big"}
    return {}


def _uimage(head: bytes) -> dict[str, str]:
    if len(head) < 64 or head[:4] != b"\x27\x05\x19\x56":
        return {}
    os_, arch, typ, comp = head[28], head[29], head[30], head[31]
    name = head[32:64].split(b"\0", 1)[0].decode("latin-1")
    return {
        "os": UIMAGE_OS.get(os_, str(os_)),
        "arch": UIMAGE_ARCH.get(arch, str(arch)),
        "type": UIMAGE_TYPE.get(typ, str(typ)),
        "compression": UIMAGE_COMP.get(comp, str(comp)),
        "name": name,
    }


def _cpio(head: bytes) -> dict[str, str]:
    magic = head[:6]
    if magic == b"070701":
        return {"variant": "newc"}
    if magic == b"070702":
        return {"variant": "crc"}
    if magic == b"070707":
        return {"variant": "odc"}
    return {"variant": "binary"}


def _ext(head: bytes) -> dict[str, str]:
    if len(head) < 0x468:
        return {}
    compat, incompat = struct.unpack_from("<II", head, 0x45C)
    if incompat & 0x40:  # extents
        return {"variant": "ext4"}
    if compat & 0x4:  # has_journal
        return {"variant": "ext3"}
    return {"variant": "ext2"}


def _gzip(head: bytes) -> dict[str, str]:
    if len(head) < 10 or head[3] & 0x08 == 0:
        return {}
    name = head[10:].split(b"\0", 1)[0]
    return {"original_name": name.decode("latin-1")[:200]}


def _tar(head: bytes) -> dict[str, str]:
    magic = head[257:265]
    if magic == b"ustar  \0":
        return {"variant": "gnu"}
    if magic[:6] == b"ustar\0":
        return {"variant": "ustar"}
    return {"variant": "v7"}


UBIFS_COMPRESSION = {0: "none", 1: "lzo", 2: "zlib", 3: "zstd"}


def _ubifs(head: bytes) -> dict[str, str]:
    # common node header (24 bytes), then the superblock node; default_compr at +84
    if len(head) < 90 or head[:4] != b"\x31\x18\x10\x06" or head[20] != 6:
        return {}
    comp = struct.unpack_from("<H", head, 84)[0]
    return {"compression": UBIFS_COMPRESSION.get(comp, f"id{comp}")}


DETAIL_READERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "squashfs": _squashfs,
    "jffs2": _jffs2,
    "uimage": _uimage,
    "cpio": _cpio,
    "ext": _ext,
    "gzip": _gzip,
    "tar": _tar,
    "ubifs": _ubifs,
}

HEADER_BYTES = 0x500


def read_details(fmt: str, head: bytes) -> dict[str, str]:
    """Facts about a region of format ``fmt`` whose first bytes are ``head``."""
    reader = DETAIL_READERS.get(fmt)
    if reader is None:
        return {}
    try:
        return reader(head)
    except (struct.error, IndexError):
        return {}
