"""Content-based format detection: each verifier, in registry order, sniffs the first and last bytes."""

from __future__ import annotations

from pathlib import Path

from cra_fw.bundles.registry import FALLBACK, VERIFIERS

HEAD = 4096
TAIL = 16


def read_head_tail(path: Path) -> tuple[bytes, bytes, int]:
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - TAIL))
        tail = fh.read(TAIL)
    return head, tail, size


def detect_format(path: Path) -> str:
    """Name of the first verifier whose sniff matches; ``detached`` when none does."""
    head, tail, size = read_head_tail(path)
    return sniff_bytes(head, tail, size, path) or FALLBACK


def sniff_bytes(head: bytes, tail: bytes, size: int, path: Path = Path("")) -> str | None:
    """Format of a bundle from its first/last bytes, or None (nothing bundle-like)."""
    for cls in VERIFIERS:
        if cls.name != FALLBACK and cls.sniff(head, tail, size, path):
            return cls.name
    return None


def detect_signature_format(signature: Path) -> str:
    """Verifier for a file given with ``--signature``: the first that claims it, else ``detached``."""
    with open(signature, "rb") as fh:
        head = fh.read(HEAD)
    for cls in VERIFIERS:
        if cls.claims_signature(head):
            return cls.name
    return FALLBACK


# What a file no verifier recognises looks like (for the `unsupported_format` verdict):
# (offset, magic, description), first match wins.
_LOOKS_LIKE: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x3d\xb8\xf3\x96", "an MCUboot image (magic 0x96f3b83d)"),
    (0, b"\x27\x05\x19\x56", "a legacy U-Boot uImage"),
    (0, b"\xd0\x0d\xfe\xed", "a flattened device tree / U-Boot FIT image"),
    (0, b"hsqs", "a squashfs image"),
    (0, b"sqsh", "a big-endian squashfs image"),
    (0, b"070701", "a cpio archive (newc)"),
    (0, b"070702", "a cpio archive (crc)"),
    (0, b"\x1f\x8b", "gzip-compressed data"),
    (0, b"\xfd7zXZ\x00", "xz-compressed data"),
    (0, b"BZh", "bzip2-compressed data"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"UBI#", "a UBI image"),
    (0, b"HDR0", "a Broadcom TRX image"),
    (0, b"ANDROID!", "an Android boot image"),
    (0, b"-----BEGIN", "a PEM file"),
    (257, b"ustar", "a tar archive"),
)


def looks_like(path: Path) -> str:
    """A short description of what ``path`` appears to be, from its first bytes."""
    head, _tail, size = read_head_tail(path)
    if size == 0:
        return "an empty file"
    for offset, magic, text in _LOOKS_LIKE:
        if head[offset : offset + len(magic)] == magic:
            return text
    if head[:1] == b"\xe9" and len(head) >= 24 and head[1] <= 16:
        return f"an ESP-IDF/ESP8266 firmware image ({head[1]} segments)"
    if head[:1] == b"\x30" and b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07" in head[:24]:
        return "a CMS/PKCS#7 structure"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head[:512])
    if printable >= 0.95 * min(len(head), 512):
        return "text"
    return "binary data of no known update format"
