"""What an archive says about its own members: hostile names and original link targets.

Extractors drop or rewrite hostile members without a word (``../`` names, absolute
names, links out of the tree, a file written through a symlink member) and rewrite
symlink targets (unblob makes absolute targets relative, 7-Zip writes the host path of
its output folder).  cra-fw reads the archive's own member list (tar, zip, cpio:
headers only, bounded) so that a hostile member becomes a finding that names it, and
the extracted tree keeps each symlink's original target.  Runs inside the sandboxed
extraction child.
"""

from __future__ import annotations

import io
import mmap
import os
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cra_fw.parsers.cpio import cpio_entries

MAX_TARGET = 4096  # longest link target kept (PATH_MAX)
ARCHIVES = ("tar", "zip", "cpio")


@dataclass(frozen=True)
class Member:
    name: str  # as stored in the archive
    kind: str  # file, dir, symlink, hardlink, other
    target: str = ""  # link target as stored


@dataclass(frozen=True)
class Hostile:
    """A member that tries to reach outside the extraction folder."""

    rule: str  # unpack.path-traversal, unpack.absolute-path, unpack.symlink-out, unpack.hardlink-out, ...
    member: str
    target: str = ""


class _Region(io.RawIOBase):
    """Read-only, seekable view of ``fh[start:end]`` (tarfile and zipfile need one)."""

    def __init__(self, fh: io.BufferedReader, start: int, end: int) -> None:
        self._fh, self._start, self._end, self._pos = fh, start, end, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._end - self._start}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf) -> int:  # noqa: ANN001 - memoryview
        left = self._end - self._start - self._pos
        if left <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(min(len(buf), left))
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


def list_members(fmt: str, path: Path, start: int, end: int, limit: int) -> list[Member]:
    """Members of the archive at ``path[start:end]`` (at most ``limit``); [] when unreadable."""
    if fmt not in ARCHIVES:
        return []
    # a backend's idea of where an archive ends can be short (binwalk ends a cpio at its second
    # member header): tar and cpio find their own end, a zip is found from its end record
    size = path.stat().st_size
    out = _list(fmt, path, start, end if fmt == "zip" else size, limit)
    if not out and fmt == "zip" and end < size:
        out = _list(fmt, path, start, size, limit)
    return out


def _list(fmt: str, path: Path, start: int, end: int, limit: int) -> list[Member]:
    out: list[Member] = []
    try:
        with open(path, "rb") as fh:
            region = io.BufferedReader(_Region(fh, start, end))
            if fmt == "tar":
                _tar(region, out, limit)
            elif fmt == "zip":
                _zip(region, out, limit)
            else:
                _cpio(fh, start, end, out, limit)
    except (OSError, EOFError, ValueError, tarfile.TarError, zipfile.BadZipFile, KeyError, RuntimeError):
        pass  # a damaged archive: whatever was listed before the damage still counts
    return out


def _tar(region: IO[bytes], out: list[Member], limit: int) -> None:
    with tarfile.open(fileobj=region, mode="r:") as tar:
        for info in tar:
            if len(out) >= limit:
                break
            if info.issym():
                kind = "symlink"
            elif info.islnk():
                kind = "hardlink"
            elif info.isdir():
                kind = "dir"
            elif info.isreg():
                kind = "file"
            else:
                kind = "other"
            out.append(Member(info.name, kind, info.linkname[:MAX_TARGET] if kind.endswith("link") else ""))
            tar.members = []  # type: ignore[attr-defined]  # keep memory flat on huge archives (private list)


def _zip(region: IO[bytes], out: list[Member], limit: int) -> None:
    with zipfile.ZipFile(region) as zf:
        for info in zf.infolist()[:limit]:
            mode = info.external_attr >> 16
            if info.create_system == 3 and stat.S_ISLNK(mode):
                with zf.open(info) as member:
                    target = member.read(MAX_TARGET).decode("utf-8", "surrogateescape")
                out.append(Member(info.filename, "symlink", target))
            else:
                out.append(Member(info.filename, "dir" if info.is_dir() else "file"))


def _cpio(fh: io.BufferedReader, start: int, end: int, out: list[Member], limit: int) -> None:
    if end <= start:
        return
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for name, mode, at, size in cpio_entries(data, start, min(end, len(data))):
            if len(out) >= limit:
                break
            kind = {stat.S_IFLNK: "symlink", stat.S_IFDIR: "dir", stat.S_IFREG: "file"}.get(
                stat.S_IFMT(mode), "other"
            )
            target = ""
            if kind == "symlink":
                target = bytes(data[at : at + min(size, MAX_TARGET)]).decode("utf-8", "surrogateescape")
            out.append(Member(name, kind, target))


def _inside(name: str) -> str | None:
    """The member's path inside the tree ('a/b'), or None when it climbs out of it."""
    norm = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if norm == ".." or norm.startswith("../"):
        return None
    return "" if norm == "." else norm


def hostile(members: list[Member]) -> list[Hostile]:
    """Members that try to leave the tree: by name, through a link, or via a symlink member."""
    found: list[Hostile] = []
    symlinks: set[str] = set()
    for m in members:
        rel = _inside(m.name)
        if rel is None:
            found.append(Hostile("unpack.path-traversal", m.name))
            continue
        if m.name.startswith("/"):
            found.append(Hostile("unpack.absolute-path", m.name))
        parts = rel.split("/")
        through = next(
            ("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in symlinks), None
        )
        if through is not None:
            found.append(Hostile("unpack.write-through-symlink", m.name, through))
        if m.kind == "symlink":
            symlinks.add(rel)
            # an absolute target is normal in a root file system (resolved inside it); a relative
            # one that climbs above the tree's root is a traversal attempt
            if (
                not m.target.startswith("/")
                and _inside(posixpath.join(posixpath.dirname(rel), m.target)) is None
            ):
                found.append(Hostile("unpack.symlink-out", m.name, m.target))
        elif m.kind == "hardlink" and (m.target.startswith("/") or _inside(m.target) is None):
            found.append(Hostile("unpack.hardlink-out", m.name, m.target))
    return found


def restore_link_targets(members: list[Member], root: Path) -> int:
    """Give each extracted symlink the target the archive stored (extractors rewrite them).

    Only symlinks already in the tree are touched, and a symlink is never followed, so
    this cannot reach outside ``root``.  Returns how many were restored.
    """
    restored = 0
    for m in members:
        if m.kind != "symlink" or not m.target or "\0" in m.target:
            continue
        rel = _inside(m.name)
        if not rel:
            continue
        where = os.path.join(root, rel)
        try:
            if not stat.S_ISLNK(os.lstat(where).st_mode) or os.readlink(where) == m.target:
                continue
            real_root = os.path.realpath(root)
            if os.path.commonpath([os.path.realpath(os.path.dirname(where)), real_root]) != real_root:
                continue  # its folder is reached through a symlink: not ours to touch
            os.unlink(where)
            os.symlink(m.target, where)
            restored += 1
        except OSError:
            continue
    return restored
