"""Write a filesystem tree read from an untrusted image, only below one folder, within bounds.

cra-fw's own readers (squashfs 2.x-4.x, cramfs...) hand every entry to a
:class:`TreeWriter`: names with '/', NUL, '.' or '..' are refused, folders are
created one level at a time under the root (never through a symlink), regular
files are opened with O_NOFOLLOW|O_EXCL, symlinks are created and never followed,
device nodes and FIFOs are not created (they are counted).  Entry count, depth,
name length and bytes are bounded; going past a bound raises
:class:`~cra_fw.errors.LimitExceeded`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.errors import LimitExceeded, UnpackError

MAX_ENTRIES = 500_000
MAX_DEPTH = 128
MAX_NAME = 255
MAX_TARGET = 4096


@dataclass
class TreeWriter:
    root: Path
    max_entries: int = MAX_ENTRIES
    max_bytes: int = 1 << 40
    entries: int = 0
    bytes: int = 0
    skipped_special: int = 0
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = os.path.realpath(self.root)

    @staticmethod
    def clean_name(name: bytes | str) -> str:
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        if not name or name in (".", "..") or "/" in name or "\0" in name or len(name) > MAX_NAME:
            raise UnpackError(f"unsafe name in the image's directory: {name[:80]!r}")
        return name

    def _count(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise LimitExceeded("files", f"more than {self.max_entries} entries in one filesystem image")

    def path(self, parts: tuple[str, ...]) -> Path:
        if len(parts) > MAX_DEPTH:
            raise LimitExceeded("depth", f"directory nesting deeper than {MAX_DEPTH} in one filesystem image")
        target = self.root.joinpath(*parts)
        parent = os.path.realpath(target.parent)
        if parent != self._real_root and not parent.startswith(self._real_root + os.sep):
            raise UnpackError(f"{'/'.join(parts)} would be written outside the output folder")
        return target

    def mkdir(self, parts: tuple[str, ...]) -> None:
        target = self.path(parts)
        self._count()
        if target.is_symlink():
            target.unlink()
        target.mkdir(exist_ok=True)

    def write(self, parts: tuple[str, ...], chunks: Iterable[bytes], mode: int = 0o644) -> int:
        """Write a regular file from ``chunks``; return its size."""
        target = self.path(parts)
        self._count()
        if target.is_symlink() or target.exists():
            if target.is_dir() and not target.is_symlink():
                raise UnpackError(f"{'/'.join(parts)} is both a folder and a file in the image")
            target.unlink()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    self.bytes += len(chunk)
                    if self.bytes > self.max_bytes:
                        raise LimitExceeded("bytes", f"more than {self.max_bytes} bytes from one image")
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)  # a half-read file is not the file
            raise
        os.chmod(target, (mode & 0o7777) | 0o400)
        return size

    def symlink(self, parts: tuple[str, ...], target: bytes | str) -> None:
        dest = self.path(parts)
        self._count()
        if isinstance(target, bytes):
            target = os.fsdecode(target)
        if "\0" in target or len(target) > MAX_TARGET:
            raise UnpackError(f"unsafe symlink target for {'/'.join(parts)}")
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        os.symlink(target, dest)

    def special(self, parts: tuple[str, ...]) -> None:
        """A device node, FIFO or socket: counted, never created."""
        self.path(parts)
        self._count()
        self.skipped_special += 1

    def problem(self, parts: tuple[str, ...], message: str) -> None:
        """An entry that could not be read; the rest of the tree goes on."""
        if len(self.problems) < 1000:
            self.problems.append(f"/{'/'.join(parts)}: {message}")

    def child(self, parts: tuple[str, ...], raw_name: bytes | str) -> tuple[str, ...] | None:
        """The path of entry ``raw_name`` in folder ``parts``, or None (recorded) when the name is unsafe."""
        try:
            return (*parts, self.clean_name(raw_name))
        except UnpackError as exc:
            self.problem(parts, str(exc))
            return None

    def add(
        self, path: tuple[str, ...], kind: str, content: Callable[[], Iterable[bytes]], mode: int = 0o644
    ) -> bool:
        """Create one entry (``dir``, ``file``, ``symlink``; anything else is a special file).

        ``content`` is called only for files and symlinks.  A damaged entry is recorded as a
        problem and False is returned, so the walk goes on; limits still stop it.
        """
        try:
            if kind == "dir":
                self.mkdir(path)
            elif kind == "file":
                self.write(path, content(), mode)
            elif kind == "symlink":
                self.symlink(path, b"".join(content()))
            else:
                self.special(path)
        except LimitExceeded:
            raise
        except (UnpackError, struct.error, OSError, ValueError) as exc:
            self.problem(path, str(exc))
            return False
        return True

    def finish(self, fmt: str) -> None:
        """Raise when some entries could not be read: the layer keeps what was written and says so."""
        if self.problems:
            raise UnpackError(
                f"{fmt}: {len(self.problems)} of {self.entries} entries unreadable, first: {self.problems[0]}"
            )
