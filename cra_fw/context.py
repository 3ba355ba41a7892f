"""What every analysis stage after unpacking receives: the unpacked image and the options.

Stages read file contents only through :meth:`ScanContext.read_bytes`, which never
follows a symlink out of the workspace.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.records import FileEntry, FileKind, ImageInfo, Layer, layer_chain

DEFAULT_MAX_READ = 256 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Safety limits for unpacking; every one is configurable from the CLI."""

    max_total_bytes: int = 8 * 1024**3  # extracted bytes over the whole scan
    max_ratio: float = 200.0  # extracted bytes / input bytes for one extraction
    max_depth: int = 8  # nesting of layers
    max_files: int = 200_000  # files over the whole scan
    extractor_timeout: float = 300.0  # seconds for one extractor run
    scan_timeout: float = 0.0  # seconds for the whole scan (0: no limit); what it stops is a finding
    max_memory: int = 4 * 1024**3  # address space of one extractor process
    min_carve_size: int = 64  # smaller chunks are not worth a layer


@dataclass(frozen=True)
class ScanOptions:
    """Options of one scan.  Stages read only the fields they need."""

    extractor: str = "unblob"
    limits: Limits = field(default_factory=Limits)
    workers: int = max(1, os.cpu_count() or 1)
    keep_extracted: bool = False
    show_secrets: bool = False
    redact: bool = False
    trust: tuple[Path, ...] = ()
    policy: Path | None = None
    db_path: Path | None = None
    cache_dir: Path | None = None
    feed_max_age_days: int = 7
    progress: bool = True
    analyse: bool = True  # False: unpack and inventory only (`cra-fw unpack`)
    replace_outputs: bool = False  # --force: an earlier scan's outputs in OUTDIR are removed first


@dataclass
class ScanContext:
    """The unpacked image as later stages see it."""

    image: ImageInfo
    layers: list[Layer]
    files: list[FileEntry]
    options: ScanOptions = field(default_factory=ScanOptions)
    workspace: Path | None = None

    def __post_init__(self) -> None:
        self._by_layer_path = {(f.layer_id, f.path): f for f in self.files}
        self._layer_by_id = {layer.id: layer for layer in self.layers}

    def layer(self, layer_id: str) -> Layer:
        return self._layer_by_id[layer_id]

    def layer_chain(self, layer_id: str) -> tuple[str, ...]:
        """'id:format' items from the image down to ``layer_id``."""
        return layer_chain(self._layer_by_id, layer_id)

    def lookup(self, layer_id: str, path: str) -> FileEntry | None:
        return self._by_layer_path.get((layer_id, path))

    def resolve(self, entry: FileEntry, max_hops: int = 16) -> FileEntry | None:
        """Follow symlinks inside the entry's layer (never out of it)."""
        cur: FileEntry | None = entry
        for _ in range(max_hops):
            if cur is None or cur.kind != FileKind.SYMLINK:
                return cur
            target = cur.link_target or ""
            base = target if target.startswith("/") else os.path.join(os.path.dirname(cur.path), target)
            cur = self.lookup(cur.layer_id, os.path.normpath("/" + base.lstrip("/")))
        return None

    def iter_files(
        self, kinds: Iterable[FileKind] | None = None, globs: Iterable[str] | None = None
    ) -> Iterator[FileEntry]:
        """Files of the given kinds whose path matches one of the globs (fnmatch on the full path)."""
        kind_set = set(kinds) if kinds else None
        glob_list = list(globs) if globs else None
        for entry in self.files:
            if kind_set is not None and entry.kind not in kind_set:
                continue
            if glob_list is not None and not any(fnmatch.fnmatchcase(entry.path, g) for g in glob_list):
                continue
            yield entry

    def read_bytes(self, entry: FileEntry, limit: int = DEFAULT_MAX_READ) -> bytes:
        """Contents of a regular file in the workspace, at most ``limit`` bytes.

        Refuses symlinks and anything that is not a regular file, so a hostile
        image cannot make a stage read host files.
        """
        if not entry.abs_path:
            return b""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(entry.abs_path, flags)
        except OSError:
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(limit)
        finally:
            os.close(fd)

    def read_text(self, entry: FileEntry, limit: int = 4 * 1024 * 1024) -> str:
        return self.read_bytes(entry, limit).decode("utf-8", errors="replace")
