"""Walk, measure and remove extracted trees without recursion.

A hostile image can nest folders thousands deep: ``os.walk`` and ``shutil.rmtree``
recurse (RecursionError) and full paths outgrow PATH_MAX.  These helpers keep an
explicit stack, never follow symlinks, and remove through directory descriptors
so depth costs neither stack nor path length.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)


def walk(root: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root)`` top-down, names sorted, symlinks to folders listed as files.

    Like ``os.walk``, the caller may prune ``dirnames`` in place.  Folders that cannot be
    listed (gone, unreadable, path too long) are skipped.
    """
    stack = [str(root)]
    while stack:
        cur = stack.pop()
        try:
            with os.scandir(cur) as it:
                entries = list(it)
        except OSError:
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        dirs.sort()
        files.sort()
        yield cur, dirs, files
        stack.extend(os.path.join(cur, d) for d in reversed(dirs))


def remove_tree(top: str | Path) -> None:
    """Remove ``top`` and everything under it; never raises, whatever the depth or modes.

    Descends through directory descriptors (one open at a time) and climbs back with
    ``..``, so neither the stack nor PATH_MAX limits the depth.  What cannot be removed
    is left in place.
    """
    top = str(top)
    try:
        st = os.lstat(top)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(top)
        except OSError:
            pass
        return
    try:
        os.chmod(top, stat.S_IMODE(st.st_mode) | 0o700)
        fd = os.open(top, _DIR_FLAGS)
    except OSError:
        return
    trail: list[str] = []  # folder names from ``top`` down to the one ``fd`` is open on
    skip: list[set[str]] = [set()]  # per level: sub-folders that could not be removed
    try:
        while True:
            child = _clear(fd, skip[-1])
            if child is not None:
                try:
                    os.chmod(child, 0o700, dir_fd=fd)
                    nxt = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    skip[-1].add(child)
                    continue
                os.close(fd)
                fd = nxt
                trail.append(child)
                skip.append(set())
                continue
            if not trail:
                break
            name = trail.pop()
            skip.pop()
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                skip[-1].add(name)
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        os.rmdir(top)
    except OSError:
        pass


def _clear(fd: int, skip: set[str]) -> str | None:
    """Unlink every non-folder in the folder ``fd``; return one sub-folder not in ``skip``."""
    try:
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in skip:
                            return entry.name
                        continue
                    os.unlink(entry.name, dir_fd=fd)
                except OSError:
                    continue
    except OSError:
        pass
    return None
