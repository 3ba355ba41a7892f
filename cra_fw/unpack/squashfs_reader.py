"""Extract a squashfs image with PySquashfsImage (pure Python) when unsquashfs cannot.

Entries are written only below ``outdir``: names with '/', '..' or NUL are
refused, symlinks are created as links (never followed), special files are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from cra_fw.errors import UnpackError


def _safe_name(name: str | bytes) -> str:
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnpackError(f"unsafe name in squashfs directory: {name!r}")
    return name


def extract_squashfs(image_path: Path, outdir: Path) -> int:
    """Write the image's tree under ``outdir``; return the number of entries written."""
    from PySquashfsImage import SquashFsImage

    outdir.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        image = SquashFsImage.from_file(str(image_path))
    except Exception as exc:  # noqa: BLE001 - the library raises anything on bad input
        raise UnpackError(f"PySquashfsImage cannot read {image_path.name}: {exc}") from exc
    try:
        stack = [(image.root, outdir)]
        while stack:
            directory, target = stack.pop()
            for child in directory.iterdir():
                name = _safe_name(child.name)
                dest = target / name
                if child.is_dir:
                    dest.mkdir(exist_ok=True)
                    stack.append((child, dest))
                elif child.is_symlink:
                    link = child.readlink()
                    if isinstance(link, bytes):
                        link = os.fsdecode(link)
                    if dest.is_symlink() or dest.exists():
                        dest.unlink()
                    os.symlink(link, dest)
                elif child.is_file:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                    fd = os.open(dest, flags, 0o644)
                    with os.fdopen(fd, "wb") as out:
                        for block in child.iter_bytes():
                            out.write(block)
                    os.chmod(dest, child.mode & 0o777)
                else:
                    continue
                count += 1
    finally:
        image.close()
    return count
