"""Recursive, safe unpacking of one image into a tree of layers.

The walker owns recursion and safety; backends only carve one file at a time
(inside :func:`cra_fw.unpack.isolate.run_isolated`).  Each recognised region
becomes a :class:`Layer`; regions nothing recognised become ``unknown`` (with
their entropy) or ``padding`` layers.  Every limit that stops a branch, every
failed or unsupported extraction becomes a Finding and the walk goes on.
"""

from __future__ import annotations

import mmap
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.context import Limits, ScanOptions
from cra_fw.errors import BackendUnavailable
from cra_fw.records import Finding, Layer, LayerStatus, Location, Severity, SpecialFile
from cra_fw.regions import leading_run, region_sha256
from cra_fw.unpack.formats import HEADER_BYTES, load_formats, read_details
from cra_fw.unpack.handlers import NATIVE_HANDLERS
from cra_fw.unpack.interface import Backend, BackendResult, Carve
from cra_fw.unpack.isolate import IsolatedFailure, run_isolated
from cra_fw.unpack.modes import restore_modes
from cra_fw.unpack.safety import (
    TreeReport,
    inflates_beyond,
    is_padding,
    layer_path,
    sanitize_tree,
    shannon_entropy,
)
from cra_fw.unpack.sniff import worth_unpacking

HIGH_ENTROPY = 7.5  # bits per byte: compressed or encrypted
HIGH_ENTROPY_MIN_SIZE = 4096
CRA_UNPACK = ("Annex I Part II 1",)

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class UnpackResult:
    layers: tuple[Layer, ...]
    findings: tuple[Finding, ...]
    specials: dict[str, tuple[SpecialFile, ...]]
    backend: str
    sandboxed: bool
    extracted_bytes: int = 0
    extracted_files: int = 0


def get_backend(name: str) -> Backend:
    """The extraction backend called ``name`` ('unblob' or 'binwalk')."""
    if name == "unblob":
        from cra_fw.unpack.unblob_backend import UnblobBackend

        backend: Backend = UnblobBackend()
    elif name == "binwalk":
        from cra_fw.unpack.binwalk_backend import BinwalkBackend

        backend = BinwalkBackend()
    else:
        raise BackendUnavailable(f"unknown extractor {name!r}: use --extractor unblob or --extractor binwalk")
    problem = backend.available()
    if problem:
        raise BackendUnavailable(f"the {name} extractor cannot run: {problem}")
    return backend


def _carve_file(backend: Backend, path: Path, outdir: Path) -> BackendResult:
    """Native handlers first, then the backend; backend regions inside native ones are dropped."""
    outdir.mkdir(parents=True, exist_ok=True)
    native: list[Carve] = []
    size = path.stat().st_size
    if size:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for handler in NATIVE_HANDLERS:
                for region in handler.find(data):
                    if any(c.start <= region.start < c.end for c in native):
                        continue
                    fmt = region.format or handler.name
                    # not the backend's folder name: a backend may carve the same offset
                    target = outdir / f"{region.start:08x}.{fmt}.native"
                    error = region.error
                    try:
                        handler.extract(path, region, target)
                    except Exception as exc:  # noqa: BLE001 - one bad region must not stop the rest
                        error = f"{type(exc).__name__}: {exc}"[:300]
                    extracted = str(target) if target.exists() and any(target.iterdir()) else ""
                    native.append(
                        Carve(
                            fmt,
                            region.start,
                            region.end,
                            f"cra-fw:{fmt}",
                            extracted=extracted,
                            error=error,
                            container=region.container,
                            unsupported=region.unsupported,
                            details=region.details,
                        )
                    )
    whole_native = any(c.start == 0 and c.end == size for c in native)
    if whole_native:
        return BackendResult(carves=tuple(native))
    result = backend.carve(path, outdir)
    containers = [c for c in result.carves if c.extracted]

    def inside(inner: Carve, outer: Carve) -> bool:
        # a backend carve of exactly the same span is the same region: the native handler keeps it
        span = (outer.start, outer.end) != (inner.start, inner.end)
        return outer.start <= inner.start and inner.end <= outer.end and span

    kept_native = []
    for carve in native:
        if any(inside(carve, c) for c in containers):
            # e.g. a uImage inside a tar: the tar's extraction holds it, recursion finds it there
            if carve.extracted:
                shutil.rmtree(carve.extracted, ignore_errors=True)
            continue
        kept_native.append(carve)
    kept = list(kept_native)
    for carve in result.carves:
        if any(n.start <= carve.start < n.end or carve.start <= n.start < carve.end for n in kept_native):
            if carve.extracted:
                shutil.rmtree(carve.extracted, ignore_errors=True)
            continue
        kept.append(carve)
    kept.sort(key=lambda c: c.start)
    return BackendResult(carves=tuple(kept), note=result.note)


def _read_head(path: Path, start: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(HEADER_BYTES)


@dataclass
class _Job:
    path: Path  # file to carve (in the workspace, or the image)
    parent_id: str
    parent_path: str  # path of that file inside the parent layer ('' for the image)
    depth: int
    chain: tuple[str, ...]
    budget: int = 0  # bytes this file's extraction may write


@dataclass
class _State:
    layers: list[Layer] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    specials: dict[str, tuple[SpecialFile, ...]] = field(default_factory=dict)
    total_bytes: int = 0
    total_files: int = 0
    sandboxed: bool = True
    next_id: int = 1
    job_count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    files_limit_hit: bool = False

    def new_id(self) -> str:
        with self.lock:
            lid = f"L{self.next_id}"
            self.next_id += 1
        return lid


class Walker:
    """Unpacks one image; see :func:`unpack_image`."""

    def __init__(
        self, backend: Backend, workspace: Path, options: ScanOptions, progress: ProgressFn | None = None
    ) -> None:
        self.backend = backend
        self.workspace = workspace
        self.limits: Limits = options.limits
        self.workers = max(1, options.workers)
        self.progress = progress or (lambda _msg: None)
        self.state = _State()

    def _finding(
        self,
        rule: str,
        severity: Severity,
        title: str,
        chain: tuple[str, ...],
        path: str,
        evidence: str,
        remediation: str,
        offset: int | None = None,
    ) -> None:
        self.state.findings.append(
            Finding(
                rule_id=rule,
                category="unpack",
                severity=severity,
                title=title,
                cra_reference=CRA_UNPACK,
                location=Location(layer_chain=chain, path=path, offset=offset),
                evidence=evidence,
                remediation=remediation,
            )
        )

    def run(self, image: Path, image_sha256: str) -> UnpackResult:
        size = image.stat().st_size
        root = Layer(
            id="L0",
            parent_id=None,
            format="raw",
            offset=0,
            size=size,
            sha256=image_sha256,
            status=LayerStatus.EXTRACTED,
            depth=0,
            extractor="",
            details={},
        )
        self.state.layers.append(root)
        prepare = getattr(self.backend, "prepare", None)
        if prepare:
            prepare()
        first = _Job(image, "L0", "", 1, ("L0:raw",))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            pending: dict[Future, _Job] = {pool.submit(self._carve, first): first}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    for child in self._record(job, fut.result()):
                        pending[pool.submit(self._carve, child)] = child
        layers = sorted(self.state.layers, key=lambda la: int(la.id[1:]))
        return UnpackResult(
            layers=tuple(layers),
            findings=tuple(self.state.findings),
            specials=dict(self.state.specials),
            backend=self.backend.name,
            sandboxed=self.state.sandboxed,
            extracted_bytes=self.state.total_bytes,
            extracted_files=self.state.total_files,
        )

    # -- one file --------------------------------------------------------------------------

    def _carve(self, job: _Job) -> tuple[BackendResult | IsolatedFailure, Path]:
        with self.state.lock:
            self.state.job_count += 1
            outdir = self.workspace / f"j{self.state.job_count:05d}"
        outdir.mkdir(parents=True)
        size = job.path.stat().st_size
        with self.state.lock:
            remaining = max(0, self.limits.max_total_bytes - self.state.total_bytes)
        budget = int(min(remaining, max(size, 1) * self.limits.max_ratio))
        job.budget = budget
        result, sandbox = run_isolated(
            _carve_file,
            (self.backend, job.path, outdir),
            writable=[outdir],
            timeout=self.limits.extractor_timeout,
            max_memory=self.limits.max_memory,
            max_file_size=max(budget, 1),
            byte_budget=max(budget, 1),
            watch=outdir,
        )
        if not sandbox.landlock and not isinstance(result, IsolatedFailure):
            self.state.sandboxed = False
        return result, outdir

    def _record(self, job: _Job, outcome: tuple[BackendResult | IsolatedFailure, Path]) -> list[_Job]:
        result, outdir = outcome
        where = job.parent_path or job.path.name
        if isinstance(result, IsolatedFailure):
            shutil.rmtree(outdir, ignore_errors=True)
            if result.kind == "budget":
                self._finding(
                    "unpack.limit.bytes",
                    Severity.MEDIUM,
                    "Extraction stopped: output larger than the size limits (possible decompression bomb)",
                    job.chain,
                    where,
                    result.message,
                    "Inspect this region by hand; raise --max-ratio/--max-bytes if it is legitimate.",
                )
            elif result.kind == "timeout":
                self._finding(
                    "unpack.limit.time",
                    Severity.MEDIUM,
                    "Extraction stopped: extractor time limit",
                    job.chain,
                    where,
                    result.message,
                    "Raise --extractor-timeout if the image is just large.",
                )
            else:
                self._finding(
                    "unpack.extractor-failed",
                    Severity.LOW,
                    "Extractor failed on this file",
                    job.chain,
                    where,
                    result.message,
                    "The region was not analysed; try the other --extractor.",
                )
            if job.parent_id == "L0":
                self._add_gaps(job, [])
            return []
        children: list[_Job] = []
        # tiny regions that yielded nothing are signature noise, not layers
        carves = [c for c in result.carves if c.extracted or c.end - c.start >= self.limits.min_carve_size]
        for carve in carves:
            children.extend(self._record_carve(job, carve))
        self._add_gaps(job, carves)
        return children

    def _record_carve(self, job: _Job, carve: Carve) -> list[_Job]:
        lid = self.state.new_id()
        head = _read_head(job.path, carve.start)
        details = {**read_details(carve.format, head), **carve.details}
        chain = (*job.chain, f"{lid}:{carve.format}")
        where = job.parent_path or job.path.name
        status = LayerStatus.IDENTIFIED
        note = carve.error
        root = ""
        report: TreeReport | None = None
        if carve.container:
            if carve.extracted and Path(carve.extracted).exists():
                root = carve.extracted
                report = sanitize_tree(Path(root))
                restore_modes(carve.format, job.path, carve.start, carve.end, Path(root))
                status = LayerStatus.EXTRACTED
                if report.files == 0 and carve.error:
                    status = LayerStatus.FAILED
            elif carve.unsupported:
                status = LayerStatus.UNSUPPORTED
            else:
                status = LayerStatus.FAILED
        children: list[_Job] = []
        limited = False
        if status == LayerStatus.FAILED and inflates_beyond(
            job.path, carve.start, carve.end, carve.format, job.budget or self.limits.max_total_bytes
        ):
            limited = True
            self._finding(
                "unpack.limit.bytes",
                Severity.MEDIUM,
                "Extraction stopped: output larger than the size limits (possible decompression bomb)",
                chain,
                where,
                f"{carve.format} region at {carve.start:#x} expands past {job.budget} bytes",
                "Inspect this region by hand; raise --max-ratio/--max-bytes if it is legitimate.",
                offset=carve.start,
            )
        elif report is not None:
            with self.state.lock:
                self.state.total_bytes += report.bytes
                self.state.total_files += report.files
                over_files = self.state.total_files > self.limits.max_files
                over_bytes = self.state.total_bytes > self.limits.max_total_bytes
            if report.specials:
                self.state.specials[lid] = tuple(report.specials)
            for path in report.removed_hardlinks:
                self._finding(
                    "unpack.hardlink-out",
                    Severity.HIGH,
                    "Hard link pointing outside the extracted tree was removed",
                    chain,
                    path,
                    "a hard link in the image named a file outside its own tree",
                    "Treat the image as hostile; it tried to alias host files.",
                )
            if over_files or over_bytes:
                limited = True
                which = "file count" if over_files else "total extracted bytes"
                if not self.state.files_limit_hit:
                    self.state.files_limit_hit = True
                    self._finding(
                        "unpack.limit.total",
                        Severity.MEDIUM,
                        f"Unpacking stopped descending: {which} limit reached",
                        chain,
                        where,
                        f"{self.state.total_files} files, {self.state.total_bytes} bytes",
                        "Raise --max-files/--max-bytes to analyse further.",
                    )
            elif job.depth + 1 > self.limits.max_depth:
                limited = True
                self._finding(
                    "unpack.limit.depth",
                    Severity.MEDIUM,
                    "Unpacking stopped descending: nesting depth limit reached",
                    chain,
                    where,
                    f"depth {job.depth} > {self.limits.max_depth}",
                    "A very deep nesting is a nesting bomb or an odd format; raise --max-depth if legitimate.",
                )
            else:
                children = self._children(lid, Path(root), job.depth + 1, chain)
        if not limited and status in (LayerStatus.FAILED, LayerStatus.UNSUPPORTED):
            self._finding(
                "unpack.unsupported" if status == LayerStatus.UNSUPPORTED else "unpack.extract-failed",
                Severity.LOW,
                f"{carve.format} region {'not supported' if status == LayerStatus.UNSUPPORTED else 'failed to extract'}"
                f" ({self.backend.name})",
                chain,
                where,
                note or carve.backend_name,
                "This region was not analysed; try the other --extractor.",
                offset=carve.start,
            )
        layer = Layer(
            id=lid,
            parent_id=job.parent_id,
            format=carve.format,
            offset=carve.start,
            size=carve.end - carve.start,
            sha256=region_sha256(job.path, carve.start, carve.end),
            status=LayerStatus.LIMITED if limited else status,
            depth=job.depth,
            parent_path=job.parent_path,
            extractor=carve.backend_name.split(":")[0]
            if carve.backend_name.startswith("cra-fw")
            else self.backend.name,
            details=details,
            file_count=report.files if report else 0,
            note=note[:300],
            root=root,
        )
        with self.state.lock:
            self.state.layers.append(layer)
        self.progress(
            f"[{lid}] {carve.format}{_fmt_details(details)} at {carve.start:#x} in "
            f"{where}: {layer.status.value}, {layer.file_count} files"
        )
        return children

    def _children(self, lid: str, root: Path, depth: int, chain: tuple[str, ...]) -> list[_Job]:
        jobs: list[_Job] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                if worth_unpacking(Path(full), st.st_size):
                    jobs.append(_Job(Path(full), lid, layer_path(root, full), depth, chain))
        return jobs

    def _add_gaps(self, job: _Job, carves: list[Carve]) -> None:
        """Regions of a container file that no carve covers become padding/unknown layers."""
        if not carves and job.parent_id != "L0":
            return  # an opaque file inside a filesystem is just a file
        size = job.path.stat().st_size
        cursor = 0
        gaps: list[tuple[int, int]] = []
        for carve in sorted(carves, key=lambda c: c.start):
            if carve.start > cursor:
                gaps.append((cursor, carve.start))
            cursor = max(cursor, carve.end)
        if cursor < size:
            gaps.append((cursor, size))
        pieces = [
            piece for start, end in gaps if end > start for piece in _split_padding(job.path, start, end)
        ]
        for start, end, padding in pieces:
            lid = self.state.new_id()
            entropy = None if padding else round(shannon_entropy(job.path, start, end), 3)
            fmt = "padding" if padding else "unknown"
            chain = (*job.chain, f"{lid}:{fmt}")
            layer = Layer(
                id=lid,
                parent_id=job.parent_id,
                format=fmt,
                offset=start,
                size=end - start,
                sha256=region_sha256(job.path, start, end),
                status=LayerStatus.UNKNOWN if not padding else LayerStatus.IDENTIFIED,
                depth=job.depth,
                parent_path=job.parent_path,
                entropy=entropy,
            )
            with self.state.lock:
                self.state.layers.append(layer)
            if entropy is not None and entropy >= HIGH_ENTROPY and end - start >= HIGH_ENTROPY_MIN_SIZE:
                self._finding(
                    "unpack.high-entropy",
                    Severity.LOW,
                    "Unidentified high-entropy region: possibly encrypted or compressed, not analysed",
                    chain,
                    job.parent_path or job.path.name,
                    f"{end - start} bytes at {start:#x}, entropy {entropy:.2f} bits/byte",
                    "Find out what this region holds (vendor encryption, unknown compression) and analyse it separately.",
                    offset=start,
                )


def _split_padding(path: Path, start: int, end: int) -> list[tuple[int, int, bool]]:
    """(start, end, is_padding) pieces: a leading run of one byte value (erased flash) of at
    least 4 KiB is split off, so the rest is judged on its own."""
    run = leading_run(path, start, end)
    if run == end - start:
        return [(start, end, True)]
    aligned = run & ~0xFFF
    if aligned >= 4096:
        # the rest starts with the run's remainder: padding only when it is all another value
        rest_padding = aligned == run and is_padding(path, start + aligned, end)
        return [(start, start + aligned, True), (start + aligned, end, rest_padding)]
    return [(start, end, False)]


def _fmt_details(details: dict[str, str]) -> str:
    keys = [details[k] for k in ("compression", "endianness", "variant", "type") if k in details]
    return f"({', '.join(keys)})" if keys else ""


def unpack_image(
    image: Path, workspace: Path, options: ScanOptions, image_sha256: str, progress: ProgressFn | None = None
) -> UnpackResult:
    """Unpack ``image`` recursively into ``workspace`` (which must be empty or absent)."""
    backend = get_backend(options.extractor)
    workspace.mkdir(parents=True, exist_ok=True)
    load_formats()
    return Walker(backend, workspace, options, progress).run(image, image_sha256)
