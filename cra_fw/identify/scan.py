"""Which files to read, and reading them once each (in parallel workers, behind the cache)."""

from __future__ import annotations

import fnmatch
import hashlib
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cra_fw.context import ScanContext
from cra_fw.identify import kernel
from cra_fw.identify.cache import HitCache
from cra_fw.identify.matcher import Matcher
from cra_fw.identify.records import Hit
from cra_fw.identify.signatures import SignatureSet, load_signatures
from cra_fw.records import FileEntry, FileKind, ImageInfo, LayerStatus

MAX_FILE_BYTES = 96 * 1024 * 1024
PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, worker start-up costs more than it saves
SKIP_DIRS = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/include/",
    "/usr/share/zoneinfo/",
    "/usr/share/i18n/",
)
_KERNEL_NAMES = (
    "vmlinu*",
    "*zImage*",
    "*uImage*",
    "*bzImage*",
    "*kernel*",
    "*.lzma",
    "*u-boot*",
    "*uboot*",
    "*.itb",
    "*.fit",
    "*.img",
    "*.bin",
    "*.uncompressed",
)
KERNEL_MIN = 256 * 1024
BLOB_MIN = 16 * 1024
MODULES_READ = 16  # kernel modules read per layer for their vermagic: they all name the same kernel


@dataclass(frozen=True)
class FileResult:
    index: int
    sha256: str
    sha512: str
    hits: tuple[Hit, ...]
    error: str = ""


def select(ctx: ScanContext, matcher: Matcher) -> list[tuple[int, FileEntry, bool]]:
    """(index, entry, kernel_like) for every file worth reading; others are skipped unread."""
    out = []
    unpacked = _wholly_unpacked(ctx)
    modules: dict[str, int] = {}
    for i, f in enumerate(ctx.files):
        if f.kind in (FileKind.SYMLINK, FileKind.DIRECTORY, FileKind.DEVICE) or f.size <= 0:
            continue
        if (f.layer_id, f.path) in unpacked:
            continue
        if f.path.startswith(SKIP_DIRS):
            continue
        name = f.name.lower()
        kernel_like = f.kind == FileKind.KERNEL or (
            f.kind in (FileKind.DATA, FileKind.ARCHIVE)
            and f.size >= KERNEL_MIN
            and any(fnmatch.fnmatchcase(name, g) for g in _KERNEL_NAMES)
        )
        if f.kind == FileKind.ELF:
            if name.endswith(".ko"):
                # only the kernel release (vermagic) is read from a module, from a few per layer
                if modules.get(f.layer_id, 0) < MODULES_READ:
                    modules[f.layer_id] = modules.get(f.layer_id, 0) + 1
                    out.append((i, f, False))
                continue
            if name.endswith(".o"):
                continue
            out.append((i, f, kernel_like))
        elif kernel_like or matcher.wants_path(f.path):
            out.append((i, f, kernel_like))
        elif f.kind == FileKind.DATA and f.layer_id and _is_layer_blob(ctx, f):
            out.append((i, f, True))
    return out


def _wholly_unpacked(ctx: ScanContext) -> set[tuple[str, str]]:
    """Files that are, byte for byte, a layer unpacked further (a decompressed tar stream, a
    squashfs image): their content is read through the child layer's files, not twice."""
    out = set()
    for lay in ctx.layers:
        if lay.status == LayerStatus.EXTRACTED and lay.parent_id and lay.parent_path and lay.offset == 0:
            parent = ctx.lookup(lay.parent_id, lay.parent_path)
            if parent is not None and parent.size == lay.size:
                out.add((lay.parent_id, lay.parent_path))
    return out


def _is_layer_blob(ctx: ScanContext, f: FileEntry) -> bool:
    # An unidentified blob at the top of a layer (a carved kernel, a decompressed bootloader:
    # U-Boot images are often under 100 KiB) is worth one look.
    return f.size >= BLOB_MIN and f.path.count("/") == 1 and not f.name.startswith(".")


def _key(sha256: str, path: str) -> str:
    return f"{sha256}@{path}"


# --- worker side -----------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _worker_init(sig_folder: str) -> None:
    _WORKER["matcher"] = Matcher(load_signatures(Path(sig_folder)))


def _scan_one(
    matcher: Matcher, reader: ScanContext, index: int, entry: FileEntry, kernel_like: bool
) -> FileResult:
    try:
        data = reader.read_bytes(entry, MAX_FILE_BYTES)
    except (OSError, MemoryError) as exc:
        return FileResult(index, entry.sha256, "", (), f"cannot read {entry.path}: {exc}")
    sha256 = entry.sha256 or hashlib.sha256(data).hexdigest()
    if entry.kind == FileKind.ELF and entry.name.lower().endswith(".ko"):
        magic = kernel.vermagic(data)
        return FileResult(index, sha256, hashlib.sha512(data).hexdigest(), (magic,) if magic else ())
    hits = matcher.scan(data, entry.path, static=bool(entry.elf and entry.elf.static))
    if kernel_like or entry.kind == FileKind.KERNEL:
        seen = {(h.name, h.version) for h in hits}
        hits.extend(h for h in kernel.scan_kernel_like(data) if (h.name, h.version) not in seen)
    sha512 = hashlib.sha512(data).hexdigest()  # SBOMs need it for package-owned files too (BSI TR-03183-2)
    return FileResult(index, sha256, sha512, tuple(hits))


def _scan_batch(batch: list[tuple[int, FileEntry, bool]]) -> list[FileResult]:
    matcher = _WORKER["matcher"]
    assert isinstance(matcher, Matcher)
    reader = ScanContext(ImageInfo("", 0, "", "", ""), [], [])
    return [_scan_one(matcher, reader, i, e, k) for i, e, k in batch]


def scan_files(
    ctx: ScanContext, sigset: SignatureSet, sig_folder: str, matcher: Matcher, cache: HitCache
) -> tuple[list[FileResult], dict[str, int]]:
    """Results for every selected file; cached files are not read again."""
    selected = select(ctx, matcher)
    stats = {"files_selected": len(selected), "files_cached": 0, "bytes_read": 0}
    # Path is part of the key: file globs and filename patterns depend on it.
    cached = cache.get_many([_key(e.sha256, e.path) for _, e, _ in selected if e.sha256])
    results: list[FileResult] = []
    todo: list[tuple[int, FileEntry, bool]] = []
    for i, e, k in selected:
        if e.sha256 and _key(e.sha256, e.path) in cached:
            sha512, hits = cached[_key(e.sha256, e.path)]
            results.append(FileResult(i, e.sha256, sha512, tuple(hits)))
        else:
            todo.append((i, e, k))
    stats["files_cached"] = len(results)
    total = sum(e.size for _, e, _ in todo)
    stats["bytes_read"] = total
    workers = max(1, min(ctx.options.workers, os.cpu_count() or 1))
    fresh: list[FileResult] = []
    if workers > 1 and total >= PARALLEL_MIN_BYTES and len(todo) > 1:
        batches: list[list[tuple[int, FileEntry, bool]]] = [[] for _ in range(workers * 4)]
        sizes = [0] * len(batches)
        for item in sorted(todo, key=lambda t: -t[1].size):  # biggest first, to the lightest batch
            j = sizes.index(min(sizes))
            batches[j].append(item)
            sizes[j] += item[1].size
        if "fork" in mp.get_all_start_methods():
            # forked workers inherit the compiled matcher: loading and compiling the
            # signatures again in each worker costs more than a small image's whole scan
            _WORKER["matcher"] = matcher
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"))
        else:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(sig_folder,))
        try:
            with pool:
                for part in pool.map(_scan_batch, [b for b in batches if b]):
                    fresh.extend(part)
        finally:
            _WORKER.pop("matcher", None)
    else:
        reader = ScanContext(ImageInfo("", 0, "", "", ""), [], [])
        fresh = [_scan_one(matcher, reader, i, e, k) for i, e, k in todo]
    paths = {i: e.path for i, e, _ in todo}
    cache.put_many([(_key(r.sha256, paths[r.index]), r.sha512, list(r.hits)) for r in fresh if not r.error])
    results.extend(fresh)
    results.sort(key=lambda r: r.index)
    return results, stats
