"""Linux kernel and U-Boot versions from their banners.

The kernel banner (``Linux version 3.3.8 (builder@host) (gcc version ...) #1 ...``)
sits in the uncompressed kernel; firmware usually ships it compressed (gzip, xz,
LZMA-alone, zstd) behind a uImage or vendor header, so a kernel-like file is also
searched at every compression magic found in its first part.  Decompression output
is bounded.  ``/lib/modules/<version>/`` names the kernel version too.
"""

from __future__ import annotations

import lzma
import re
import zlib

from cra_fw.identify.records import Hit

MAX_OUTPUT = 48 * 1024 * 1024  # decompressed bytes searched per stream
MAX_STREAMS = 8  # compressed streams tried per file
SCAN_HEAD = 4 * 1024 * 1024  # where compression magics are looked for

# Debian kernels name an ABI (6.1.0-50) first; the real release is in "#1 Debian 6.1.176-1".
LINUX_BANNER = re.compile(
    rb"Linux version (?P<version>\d+\.\d+(?:\.\d+)?(?:-rc\d+)?)[^\x00\n ]{0,40} \([^\x00\n()]{1,120}\) "
    rb"\((?:gcc|clang|[^\x00\n)]{0,60}(?:gcc|GCC|clang))[^\x00\n]{0,300}?\) #"
    rb"(?:[^\x00\n]{0,60}?Debian (?P<upstream>\d+\.\d+\.\d+)-)?"
)
UBOOT_BANNER = re.compile(
    rb"U-Boot (?:SPL )?(?P<version>(?:19|20)\d\d\.\d\d(?:\.\d+)?(?:-rc\d+)?|1\.\d+\.\d+)[^\x00\n()]{0,60} "
    rb"\((?:[A-Z][a-z]{2} [ \d]\d \d{4} - \d\d:\d\d:\d\d)"
)
# a rootfs tarball may wrap the tree in a folder or two (/rootfs-mipsel/lib/modules/...)
MODULES_DIR = re.compile(r"^(?:/[^/]+){0,2}?/lib/modules/(?P<version>\d+\.\d+(?:\.\d+)?)(?:[-+][^/]*)?/")

_GZIP = b"\x1f\x8b\x08"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"
# LZMA-alone: a properties byte (0x5d usually, 0x6d in OpenWrt's loader), a power-of-two
# dictionary size, then an 8-byte size that is -1 or plausible.
_LZMA = re.compile(rb"[\x00-\xe0]\x00\x00[\x01\x02\x04\x08\x10\x20\x40\x80]\x00")
_LZMA_SIZE_MAX = 256 * 1024 * 1024


def find_banners(data: bytes, stream: tuple[int, str] | None = None) -> list[Hit]:
    """Banners in ``data``; ``stream`` = (offset, kind) of the compressed stream ``data`` came from,
    whose file offset then stands for the banner's (the text itself has no offset in the file)."""
    hits: dict[tuple[str, str], Hit] = {}
    suffix = f" [in the {stream[1]} stream at {stream[0]:#x}, at {{:#x}} once decompressed]" if stream else ""

    def hit(name: str, version: str, confidence: float, m: re.Match[bytes]) -> Hit:
        detail = _short(m.group(0)) + (suffix.format(m.start()) if stream else "")
        return Hit(name, version, "banner", confidence, detail, stream[0] if stream else m.start())

    for m in LINUX_BANNER.finditer(data):
        v = best_version(m)
        hits.setdefault(("linux", v), hit("linux", v, 0.95, m))
        if len(hits) > 4:
            break
    for m in UBOOT_BANNER.finditer(data):
        v = m.group("version").decode()
        hits.setdefault(("u-boot", v), hit("u-boot", v, 0.9, m))
        if len(hits) > 8:
            break
    return list(hits.values())


def _short(raw: bytes) -> str:
    return "".join(chr(c) if 32 <= c < 127 else "." for c in raw[:120])


def _decompress(data: bytes, offset: int, kind: str) -> bytes:
    try:
        if kind == "gzip":
            d = zlib.decompressobj(31)
            return d.decompress(data[offset:], MAX_OUTPUT)
        if kind == "xz":
            return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[offset:], MAX_OUTPUT)
        if kind == "lzma":
            return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data[offset:], MAX_OUTPUT)
        if kind == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data[offset : offset + MAX_OUTPUT])
    except (zlib.error, lzma.LZMAError, EOFError, ValueError, MemoryError, ImportError):
        return b""
    except Exception:  # noqa: BLE001 - zstandard raises its own error type
        return b""
    return b""


def scan_kernel_like(data: bytes) -> list[Hit]:
    """Kernel/U-Boot banners in ``data`` itself or in compressed streams inside it."""
    hits = find_banners(data)
    if any(h.name == "linux" for h in hits):
        return hits
    head = data[:SCAN_HEAD]
    starts: list[tuple[int, str]] = []
    for magic, kind in ((_GZIP, "gzip"), (_XZ, "xz"), (_ZSTD, "zstd")):
        pos = head.find(magic)
        while pos != -1 and len(starts) < 4 * MAX_STREAMS:
            starts.append((pos, kind))
            pos = head.find(magic, pos + 1)
    for m in _LZMA.finditer(head):
        if head[m.start()] > 0xE0 or head[m.start()] % 9 + (head[m.start()] // 9) % 5 > 4:
            continue  # lc + lp must stay <= 4 for kernels (and the decoder)
        size = int.from_bytes(head[m.start() + 5 : m.start() + 13], "little")
        if size != 2**64 - 1 and not 4096 <= size <= _LZMA_SIZE_MAX:
            continue
        starts.append((m.start(), "lzma"))
        if len(starts) >= 4 * MAX_STREAMS:
            break
    tried = 0
    for offset, kind in sorted(starts):
        if tried >= MAX_STREAMS:
            break
        out = _decompress(data, offset, kind)
        if len(out) < 4096:
            continue
        tried += 1
        inner = find_banners(out, (offset, kind))
        if inner:
            seen = {(h.name, h.version) for h in hits}
            hits.extend(h for h in inner if (h.name, h.version) not in seen)
            if any(h.name == "linux" for h in hits):
                break
    return hits


# .modinfo of a kernel module: "vermagic=2.6.21 mod_unload MIPS32_R2 32BIT " (2.6 on), or the
# older "kernel_version=2.6.8.1"; the release is what the module was built for
VERMAGIC = re.compile(
    rb"\x00(?:vermagic|kernel_version)=(?P<version>[2-9]\.\d+(?:\.\d+){0,2}(?:-rc\d+)?)"
    rb"(?:[-+.][^ \x00]{0,64})?[ \x00]"
)


def vermagic(data: bytes) -> Hit | None:
    """The kernel release a module's ``vermagic`` (or ``kernel_version``) names."""
    m = VERMAGIC.search(data)
    if m is None:
        return None
    version = m.group("version").decode("latin-1")
    return Hit("linux", version, "vermagic", 0.8, _short(m.group(0)).strip("."), m.start() + 1)


def version_from_modules_path(path: str) -> str:
    """Kernel version named by a ``/lib/modules/<version>/...`` path, or ''."""
    m = MODULES_DIR.match(path)
    return m.group("version") if m else ""


def best_version(m: re.Match[bytes]) -> str:
    """The ``upstream`` group when it names the same major.minor release, else ``version``."""
    version = m.group("version").decode("latin-1")
    upstream = m.groupdict().get("upstream")
    if upstream:
        up = upstream.decode("latin-1")
        if up.split(".")[:2] == version.split(".")[:2]:
            return up
    return version
