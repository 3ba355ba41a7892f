"""Restore file modes that an extractor dropped, from the format's own metadata.

Some extractors lose permission bits (unblob's cpio writer drops them all,
debugfs rdump drops the sticky bit).  Modes matter for the checks (setuid
binaries, world-writable folders), so after extraction one small restorer per
format re-reads the modes from the archive and applies them inside the
extracted tree only, never through a symlink.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from cra_fw.fstree import walk
from cra_fw.parsers.cpio import cpio_entries
from cra_fw.regions import copy_region

S_IFMT = 0o170000
KEEP = (stat.S_IFDIR, stat.S_IFREG)


def _apply(root: Path, name: str, mode: int) -> None:
    rel = os.path.normpath("/" + name.lstrip("/")).lstrip("/")
    if not rel or rel == "." or rel.startswith(".."):
        return
    target = root / rel
    try:
        st = os.lstat(target)
    except OSError:
        return
    if stat.S_IFMT(st.st_mode) != stat.S_IFMT(mode) or stat.S_IFMT(mode) not in KEEP:
        return
    if st.st_mode & 0o7777 != mode & 0o7777:
        os.chmod(target, mode & 0o7777)


def restore_cpio(path: Path, start: int, end: int, root: Path) -> None:
    # mapped, not read: the headers are walked in place, the file data is never touched
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for name, mode, _at, _size in cpio_entries(data, start, end):
            _apply(root, name, mode)


_DEBUGFS_LINE = re.compile(r"^/(\d+)/(\d+)/\d+/\d+/(.*)/\d*/$")


def restore_ext(path: Path, start: int, end: int, root: Path) -> None:
    debugfs = shutil.which("debugfs")
    if not debugfs:
        return
    dirs = ["/"] + sorted(
        "/" + os.path.relpath(os.path.join(d, n), root) for d, names, _files in walk(root) for n in names
    )
    with tempfile.TemporaryDirectory(prefix="cra-fw-ext-", dir=root.parent) as tmp:
        image = path
        if start != 0 or end != path.stat().st_size:
            image = Path(tmp) / "region.ext"
            copy_region(path, start, end, image)
        cmds = Path(tmp) / "cmds"
        cmds.write_text("".join(f'ls -p "{d}"\n' for d in dirs if '"' not in d and "\n" not in d))
        try:
            proc = subprocess.run(
                [debugfs, "-f", str(cmds), str(image)], capture_output=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return
    current = "/"
    for raw in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        if raw.startswith("debugfs:"):
            current = raw.split("ls -p", 1)[-1].strip().strip('"') or "/"
            continue
        match = _DEBUGFS_LINE.match(raw)
        if not match:
            continue
        name = match.group(3)
        if name not in (".", ".."):
            _apply(root, os.path.join(current, name), int(match.group(2), 8))


RESTORERS: dict[str, Callable[[Path, int, int, Path], None]] = {
    "cpio": restore_cpio,
    "ext": restore_ext,
}


def restore_modes(fmt: str, path: Path, start: int, end: int, root: Path) -> None:
    """Re-apply the archive's own permission bits to an extracted tree (best effort)."""
    restorer = RESTORERS.get(fmt)
    if restorer is None:
        return
    try:
        restorer(path, start, end, root)
    except (OSError, ValueError, UnicodeError):
        return
