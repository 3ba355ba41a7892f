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
