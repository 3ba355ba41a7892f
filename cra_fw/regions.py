"""Byte regions of files, read in blocks: carving, hashing and scanning never load a region whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

BLOCK = 1 << 20


def region_blocks(path: Path, start: int, end: int, block: int = BLOCK) -> Iterator[bytes]:
    """The bytes of path[start:end] in blocks of at most ``block`` bytes."""
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            data = fh.read(min(remaining, block))
            if not data:
                return
            remaining -= len(data)
            yield data


def copy_region(path: Path, start: int, end: int, dest: Path) -> None:
    """Write path[start:end] to dest."""
    with open(dest, "wb") as out:
        for data in region_blocks(path, start, end):
            out.write(data)


def copy_members(path: Path, members: tuple[tuple[str, int, int], ...], outdir: Path) -> None:
    """Write each (name, start, size) span of ``path`` to ``outdir/name`` (names are the caller's own)."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name, start, size in members:
        copy_region(path, start, start + size, outdir / name)


def region_sha256(path: Path, start: int, end: int) -> str:
    """SHA-256 hex digest of path[start:end]."""
    digest = hashlib.sha256()
    for data in region_blocks(path, start, end):
        digest.update(data)
    return digest.hexdigest()


def leading_run(path: Path, start: int, end: int) -> int:
    """Length of the run of path[start]'s byte value at the start of path[start:end]."""
    run = 0
    first = b""
    for data in region_blocks(path, start, end, 1 << 16):
        first = first or data[:1]
        kept = len(data) - len(data.lstrip(first))
        run += kept
        if kept < len(data):
            break
    return run
