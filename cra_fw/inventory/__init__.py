"""Stage 2: one FileEntry per file of every unpacked layer.

Each regular file is read once: hashed, classified, and (for ELF) parsed.
Identical contents are parsed once per scan (keyed by sha256).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cra_fw.context import ScanOptions
from cra_fw.fstree import walk
from cra_fw.inventory.classify import classify
from cra_fw.inventory.elf import read_elf_info
from cra_fw.records import (
    ElfInfo,
    FileEntry,
    FileKind,
    Finding,
    Layer,
    LayerStatus,
    Location,
    Severity,
    SpecialFile,
)

# Files up to this size are read once into memory (hash, classification, ELF facts); larger
# ones are hashed in blocks and their ELF headers read through a map of the file, so memory
# stays flat however big a firmware's largest file is.
READ_WHOLE = 8 * 1024 * 1024


@dataclass(frozen=True)
class InventoryResult:
    files: tuple[FileEntry, ...]
    findings: tuple[Finding, ...] = ()


def display_path(path: str) -> str:
    """A path as text, with undecodable bytes shown as \\xNN."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _ElfCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, ElfInfo | None] = {}

    def get(self, sha: str, data: bytes) -> ElfInfo | None:
        with self._lock:
            if sha in self._items:
                return self._items[sha]
        info = read_elf_info(data)
        with self._lock:
            self._items[sha] = info
        return info


def _entry(layer: Layer, root: Path, abs_path: str, cache: _ElfCache) -> FileEntry | None:
    rel = "/" + os.path.relpath(abs_path, root).replace(os.sep, "/")
    try:
        st = os.lstat(abs_path)
    except OSError:
        return None
    mode = st.st_mode
    path = display_path(rel)
    if stat.S_ISLNK(mode):
        try:
            target = display_path(os.readlink(abs_path))
        except OSError:
            target = ""
        return FileEntry(
            layer_id=layer.id,
            path=path,
            kind=FileKind.SYMLINK,
            size=0,
            mode=mode,
            link_target=target,
            abs_path=abs_path,
        )
    if stat.S_ISDIR(mode):
        return FileEntry(
            layer_id=layer.id, path=path, kind=FileKind.DIRECTORY, size=0, mode=mode, abs_path=abs_path
        )
    if not stat.S_ISREG(mode):
        return None
    digest = hashlib.sha256()
    head = b""
    try:
        fd = os.open(abs_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            if st.st_size <= READ_WHOLE:
                head = fh.read()
                digest.update(head)
            else:
                head = fh.read(READ_WHOLE)
                digest.update(head)
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return FileEntry(
            layer_id=layer.id,
            path=path,
            kind=FileKind.DATA,
            size=st.st_size,
            mode=mode,
            abs_path=abs_path,
            mime_hint="unreadable",
        )
    sha = digest.hexdigest()
    kind, hint = classify(path, head, layer)
    elf = None
    if kind == FileKind.ELF:
        elf = cache.get(sha, head) if st.st_size <= READ_WHOLE else _elf_mapped(abs_path, sha, cache)
    return FileEntry(
        layer_id=layer.id,
        path=path,
        kind=kind,
        size=st.st_size,
        mode=mode,
        sha256=sha,
        elf=elf,
        mime_hint=hint,
        abs_path=abs_path,
    )


def _elf_mapped(abs_path: str, sha: str, cache: _ElfCache) -> ElfInfo | None:
    try:
        with open(abs_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return cache.get(sha, data)  # type: ignore[arg-type]  # the reader only slices
    except (OSError, ValueError):
        return None


def _walk(root: Path) -> Iterable[str]:
    for dirpath, dirnames, filenames in walk(root):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            yield full
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def build_inventory(
    layers: Iterable[Layer],
    specials: dict[str, tuple[SpecialFile, ...]] | None = None,
    options: ScanOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> InventoryResult:
    """FileEntry records for every file of every unpacked layer, in a stable order."""
    options = options or ScanOptions()
    specials = specials or {}
    cache = _ElfCache()
    entries: list[FileEntry] = []
    unpacked = [
        la
        for la in layers
        if la.root and la.status in (LayerStatus.EXTRACTED, LayerStatus.PARTIAL, LayerStatus.LIMITED)
    ]
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        for layer in unpacked:
            root = Path(layer.root)
            paths = list(_walk(root))
            for entry in pool.map(lambda p, la=layer, r=root: _entry(la, r, p, cache), paths, chunksize=64):
                if entry is not None:
                    entries.append(entry)
            for sp in specials.get(layer.id, ()):
                entries.append(
                    FileEntry(
                        layer_id=layer.id,
                        path=display_path(sp.path),
                        kind=FileKind.DEVICE,
                        size=0,
                        mode=sp.mode,
                        mime_hint=f"rdev={sp.rdev}",
                    )
                )
            if progress:
                progress(f"[{layer.id}] inventory: {len(paths)} entries")
    entries.sort(key=lambda e: (int(e.layer_id[1:]), e.path))
    return InventoryResult(files=tuple(entries), findings=_cap_findings(entries))


def _cap_findings(entries: list[FileEntry]) -> tuple[Finding, ...]:
    """One finding for the ELF files whose records were cut to the per-file caps."""
    capped = [e for e in entries if e.elf is not None and e.elf.capped]
    if not capped:
        return ()
    shown = ", ".join(f"{e.path} ({'; '.join(e.elf.capped)})" for e in capped[:10] if e.elf)
    return (
        Finding(
            rule_id="inventory.limit.record",
            category="unpack",
            severity=Severity.MEDIUM,
            title=f"{len(capped)} ELF file(s) declare more entries than cra-fw records (cut to the per-file cap)",
            cra_reference=("Annex I Part II 1",),
            location=Location(path=capped[0].path),
            evidence=shown + (f" and {len(capped) - 10} more" if len(capped) > 10 else ""),
            remediation="Thousands of DT_NEEDED entries are not what a toolchain writes: inspect these files.",
        ),
    )
