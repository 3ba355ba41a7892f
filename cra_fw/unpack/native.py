"""The contract of cra-fw's own unpack handlers, for formats the backends lack or mis-handle.

A handler is one small class (one module in :mod:`cra_fw.unpack.handlers`,
one line in its ``NATIVE_HANDLERS`` tuple): ``find`` returns the regions of a
file in that format, ``extract`` writes one region's contents into a folder.
Handlers run in the same sandboxed child as the backend, before it, and win
over it: backend chunks inside a native region are dropped (recursion finds
them again, one level down, so the layer chain is the same whatever the
backend).
"""

from __future__ import annotations

import io
import mmap
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Region:
    """One occurrence of a handler's format in a file: ``[start, end)`` and what was read on the way."""

    start: int
    end: int
    container: bool = True  # False: recognised, but holds nothing to unpack
    error: str = ""  # why the region is damaged (still reported as a layer)
    unsupported: bool = False  # recognised; no extractor for this flavour
    details: dict[str, str] = field(default_factory=dict)  # become the layer's details
    members: tuple[tuple[str, int, int], ...] = ()  # (name, start, size) found while recognising it
    format: str = ""  # layer format when one handler recognises several (esp-app / esp-bootloader)


class NativeHandler:
    """Base class of a native handler: set ``name``, implement ``find`` and ``extract``."""

    name: ClassVar[str] = ""  # canonical format name (formats.toml); the layer's format

    def find(self, data: mmap.mmap) -> list[Region]:
        """Every region of ``data`` (the whole file, memory-mapped) in this format, in file order."""
        raise NotImplementedError

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        """Write the contents of ``region`` of the file at ``path`` into ``outdir`` (created here).

        May raise anything: the walker records the message as the layer's error.
        """
        raise NotImplementedError

    @staticmethod
    def scan(data: mmap.mmap, magic: bytes, parse: Callable[[int], Region | None]) -> list[Region]:
        """Regions ``parse`` recognises at each occurrence of ``magic``, never overlapping."""
        out: list[Region] = []
        pos = data.find(magic)
        while pos != -1:
            region = parse(pos)
            if region is not None:
                out.append(region)
            pos = data.find(magic, region.end if region is not None else pos + 1)
        return out


class MappedFile(io.RawIOBase):
    """A read-only, seekable file over an mmap (for libraries such as zipfile in ``find``).

    Its position is its own: reading it never moves the mmap's.
    """

    def __init__(self, data: mmap.mmap) -> None:
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + len(view)]
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


@contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap]:
    """The file at ``path``, memory-mapped read-only (for ``extract`` steps that need its bytes)."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def safe_name(name: str) -> str:
    """A name read from the image as one harmless file name: readable, never a path."""
    cleaned = re.sub(r"[^A-Za-z0-9._@,+-]", "_", name)[:128]
    return cleaned if cleaned.strip(".") else f"_{cleaned}"
