"""Byte regions of files, read in blocks: carving, hashing and scanning never load a region whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

BLOCK = 1 << 20


def read_limited(path: Path, limit: int, what: str, error: type[Exception] | None = None) -> bytes:
    """At most ``limit`` bytes of ``path``; a larger file (``/dev/zero``) is refused, never read whole.

    Raises ``error`` (default :class:`cra_fw.errors.InputError`) naming ``what`` and the path.
    """
    from cra_fw.errors import InputError

    kind = error or InputError
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise kind(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise kind(f"{what} {path} is larger than {limit} bytes: not a file cra-fw reads as {what}")
    return data


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


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a whole file, streamed."""
    return region_sha256(path, 0, Path(path).stat().st_size)


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
