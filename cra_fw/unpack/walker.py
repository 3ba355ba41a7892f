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
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from cra_fw.context import Limits, ScanOptions
from cra_fw.errors import BackendUnavailable
from cra_fw.fstree import remove_tree, walk
from cra_fw.records import (
    Assessment,
    AssessmentStatus,
    Finding,
    Layer,
    LayerStatus,
    Location,
    Severity,
    SpecialFile,
)
from cra_fw.regions import copy_region, leading_run, region_sha256
from cra_fw.unpack.formats import HEADER_BYTES, load_formats, read_details
from cra_fw.unpack.handlers import NATIVE_HANDLERS
from cra_fw.unpack.interface import Backend, BackendResult, Carve
from cra_fw.unpack.isolate import IsolatedFailure, Sandboxing, measure, run_isolated
from cra_fw.unpack.members import ARCHIVES, hostile, list_members, restore_link_targets
from cra_fw.unpack.modes import restore_modes
from cra_fw.unpack.safety import (
    MAX_TREE_PATH,
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
# not analysed: the gate must see these (an unknown region is reported by its entropy instead)
NOT_ANALYSED = (LayerStatus.UNSUPPORTED, LayerStatus.FAILED, LayerStatus.PARTIAL, LayerStatus.LIMITED)
FALLBACK = {"unblob": "binwalk", "binwalk": "unblob"}  # who retries when a backend stops partway
MIN_BUDGET = 1 << 20  # bytes any one extraction may write, however small its input
MAX_HOSTILE = 50  # hostile members reported per archive (the rest are counted)
HOSTILE_RULES = {
    "unpack.path-traversal": (Severity.HIGH, "Archive member climbs out of the extraction folder"),
    "unpack.write-through-symlink": (Severity.HIGH, "Archive member is written through a symlink member"),
    "unpack.hardlink-out": (Severity.HIGH, "Archive hard link points outside the extracted tree"),
    "unpack.symlink-out": (Severity.MEDIUM, "Archive symlink climbs above the root of the tree"),
    "unpack.absolute-path": (Severity.MEDIUM, "Archive member has an absolute path"),
}

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
    assessment: Assessment = Assessment("unpack", AssessmentStatus.COMPLETE)


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


def _carve_file(backend: Backend, path: Path, outdir: Path, member_limit: int = 200_000) -> BackendResult:
    """Native handlers first, then the backend; backend regions inside native ones are dropped.

    Runs in the sandboxed child.  A backend extraction that stopped partway is retried
    with the other backend; archive members are read for hostile names.
    """
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
    result = BackendResult(
        carves=tuple(_finish(backend, path, outdir, c, member_limit) for c in result.carves), note=result.note
    )
    containers = [c for c in result.carves if c.extracted and not c.error]

    def inside(inner: Carve, outer: Carve) -> bool:
        # a backend carve of exactly the same span is the same region: the native handler keeps it
        span = (outer.start, outer.end) != (inner.start, inner.end)
        return outer.start <= inner.start and inner.end <= outer.end and span

    kept_native = []
    for carve in native:
        if any(inside(carve, c) for c in containers):
            # e.g. a uImage inside a tar: the tar's extraction holds it, recursion finds it there
            if carve.extracted:
                remove_tree(carve.extracted)
            continue
        kept_native.append(carve)
    kept = list(kept_native)
    for carve in result.carves:
        if any(n.start <= carve.start < n.end or carve.start <= n.start < carve.end for n in kept_native):
            if carve.extracted:
                remove_tree(carve.extracted)
            continue
        kept.append(carve)
    kept.sort(key=lambda c: c.start)
    return BackendResult(carves=tuple(kept), note=result.note)


def _finish(backend: Backend, path: Path, outdir: Path, carve: Carve, member_limit: int) -> Carve:
    """After a backend's extraction: retry a partial one, read an archive's own member list."""
    if carve.backend_name.startswith("cra-fw:") or not carve.container:
        return carve
    if carve.error and not carve.unsupported:
        carve = _retry(backend, path, outdir, carve)
    if carve.format in ARCHIVES:
        members = list_members(carve.format, path, carve.start, carve.end, member_limit)
        if carve.extracted:
            restore_link_targets(members, Path(carve.extracted))
        found = hostile(members)
        if found:
            carve = replace(carve, hostile=tuple((h.rule, h.member, h.target) for h in found))
    return carve


def _retry(backend: Backend, path: Path, outdir: Path, carve: Carve) -> Carve:
    """Extract ``carve``'s region again with the other backend; keep whichever got further."""
    name = FALLBACK.get(backend.name)
    if name is None:
        return carve
    try:
        other = get_backend(name)
        prepare = getattr(other, "prepare", None)
        if prepare:
            prepare()
    except Exception:  # noqa: BLE001 - not installed: the first result stands
        return carve
    whole = carve.start == 0 and carve.end == path.stat().st_size
    src = path if whole else outdir / f"{carve.start:08x}.{carve.format}.retry"
    dest = outdir / f"{carve.start:08x}.{carve.format}.{name}"
    try:
        if not whole:
            copy_region(path, carve.start, carve.end, src)
        res = other.carve(src, dest)
    except Exception as exc:  # noqa: BLE001 - the retry's failure is part of the record
        remove_tree(dest)
        return replace(carve, error=f"{carve.error}; {name} failed too: {type(exc).__name__}: {exc}"[:500])
    finally:
        if not whole:
            src.unlink(missing_ok=True)
    alt = next((c for c in res.carves if c.start == 0 and c.format == carve.format and c.extracted), None)
    mine = measure(Path(carve.extracted), 1 << 62).entries if carve.extracted else 0
    theirs = measure(Path(alt.extracted), 1 << 62).entries if alt else 0
    if alt is None or (alt.error and theirs <= mine):
        remove_tree(dest)
        why = f"{name} stopped too: {alt.error}" if alt else f"{name} extracted nothing either"
        return replace(carve, error=f"{carve.error}; {why}"[:500])
    if carve.extracted:
        remove_tree(carve.extracted)
    details = {**carve.details, "first_attempt": f"{backend.name}: {carve.error}"[:300]}
    return replace(carve, extracted=alt.extracted, error=alt.error, retried_with=name, details=details)


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
    # where the job stands in a one-at-a-time walk: the sibling numbers from the image down
    key: tuple[int, ...] = ()
    made: int = 0  # layers and child jobs this job has numbered so far


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

    order: dict[str, tuple] = field(default_factory=dict)  # layer id -> its place in a sequential walk

    def new_id(self, job: _Job | None = None) -> str:
        with self.lock:
            lid = f"L{self.next_id}"
            self.next_id += 1
            if job is not None:
                self.order[lid] = (len(job.key), job.key, job.made)
                job.made += 1
        return lid


class Walker:
    """Unpacks one image; see :func:`unpack_image`."""

    def __init__(
        self,
        backend: Backend,
        workspace: Path,
        options: ScanOptions,
        progress: ProgressFn | None = None,
        deadline: float | None = None,
    ) -> None:
        self.backend = backend
        self._other: Backend | bool | None = None  # the fallback backend, False when unavailable
        self.deadline = deadline
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

    def run(self, image: Path, image_sha256: str | Callable[[], str]) -> UnpackResult:
        """``image_sha256`` may be a callable: the digest is then asked for once the walk is over
        (the scan hashes the image on another core meanwhile)."""
        size = image.stat().st_size
        root = Layer(
            id="L0",
            parent_id=None,
            format="raw",
            offset=0,
            size=size,
            sha256=image_sha256 if isinstance(image_sha256, str) else "",
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
        layers = self._renumbered()
        if not isinstance(image_sha256, str):
            layers[0] = replace(layers[0], sha256=image_sha256())
        assessment, gap = coverage(layers, size)
        if gap is not None:
            self.state.findings.append(gap)
        return UnpackResult(
            layers=tuple(layers),
            findings=tuple(self.state.findings),
            specials=dict(self.state.specials),
            backend=self.backend.name,
            sandboxed=self.state.sandboxed,
            extracted_bytes=self.state.total_bytes,
            extracted_files=self.state.total_files,
            assessment=assessment,
        )

    def _renumbered(self) -> list[Layer]:
        """The layers numbered as a one-at-a-time walk numbers them, whatever finished first.

        Jobs run in parallel and take layer ids as they finish; the numbers in the report
        (layers, their parents, the layer chains of findings, special files) are then
        made those of the sequential order, so two scans of one image agree.
        """
        state = self.state
        ordered = sorted(state.layers, key=lambda la: (-1, (), 0) if la.id == "L0" else state.order[la.id])
        new = {la.id: f"L{i}" for i, la in enumerate(ordered)}

        def link(item: str) -> str:
            lid, sep, rest = item.partition(":")
            return f"{new.get(lid, lid)}{sep}{rest}"

        def rank(finding: Finding) -> int:
            chain = finding.location.layer_chain if finding.location is not None else ()
            lid = chain[-1].partition(":")[0] if chain else ""
            return int(new[lid][1:]) if lid in new else len(new)

        # findings in the order of the layers they are about (stable: a layer's own stay in order)
        findings = sorted(state.findings, key=rank)
        state.findings = [
            replace(
                f, location=replace(f.location, layer_chain=tuple(link(x) for x in f.location.layer_chain))
            )
            if f.location is not None and f.location.layer_chain
            else f
            for f in findings
        ]
        state.specials = {new.get(k, k): v for k, v in state.specials.items()}
        return [
            replace(
                la, id=new[la.id], parent_id=new.get(la.parent_id, la.parent_id) if la.parent_id else None
            )
            for la in ordered
        ]

    # -- one file --------------------------------------------------------------------------

    def _carve(self, job: _Job) -> tuple[BackendResult | IsolatedFailure, Path]:
        with self.state.lock:
            self.state.job_count += 1
            outdir = self.workspace / f"j{self.state.job_count:05d}"
        outdir.mkdir(parents=True)
        size = job.path.stat().st_size
        with self.state.lock:
            remaining = max(0, self.limits.max_total_bytes - self.state.total_bytes)
        # at least MIN_BUDGET: a tiny file's extraction needs folders and tool state of its own
        budget = int(min(remaining, max(size * self.limits.max_ratio, MIN_BUDGET)))
        job.budget = budget
        with self.state.lock:
            files_left = max(1, self.limits.max_files - self.state.total_files)
        timeout = self.limits.extractor_timeout
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return IsolatedFailure("deadline", "the scan's time limit (--timeout) was reached"), outdir
            timeout = min(timeout, left)
        result, sandbox = self._isolated(self.backend, job, outdir, budget, files_left, timeout)
        if (
            isinstance(result, IsolatedFailure)
            and result.kind == "timeout"
            and timeout < self.limits.extractor_timeout
        ):
            result = IsolatedFailure("deadline", "the scan's time limit (--timeout) was reached")
        if isinstance(result, IsolatedFailure) and result.kind in ("exception", "crash"):
            result = self._carve_again(job, outdir, result, budget, files_left, timeout)
        if not sandbox.landlock and not isinstance(result, IsolatedFailure):
            self.state.sandboxed = False
        return result, outdir

    def _isolated(
        self, backend: Backend, job: _Job, outdir: Path, budget: int, files_left: int, timeout: float
    ) -> tuple[BackendResult | IsolatedFailure, Sandboxing]:
        """``backend`` carves ``job``'s file in a sandboxed child held to every limit."""
        return run_isolated(
            _carve_file,
            (backend, job.path, outdir, files_left),
            writable=[outdir],
            timeout=timeout,
            max_memory=self.limits.max_memory,
            max_file_size=max(budget, 1),
            byte_budget=max(budget, 1),
            file_budget=files_left,
            watch=outdir,
        )

    def _carve_again(
        self, job: _Job, outdir: Path, first: IsolatedFailure, budget: int, files_left: int, timeout: float
    ) -> BackendResult | IsolatedFailure:
        """The backend broke on the whole file: the other backend gets the file once."""
        other = self._fallback()
        if other is None:
            return first
        remove_tree(outdir)
        outdir.mkdir(parents=True)
        result, _sandbox = self._isolated(other, job, outdir, budget, files_left, timeout)
        if isinstance(result, IsolatedFailure):
            if result.kind in ("exception", "crash"):
                return IsolatedFailure(first.kind, f"{first.message}; {other.name}: {result.message}"[:2000])
            return result
        note = f"{self.backend.name}: {first.message}"[:300]
        carves = tuple(
            replace(
                c, retried_with=c.retried_with or other.name, details={**c.details, "first_attempt": note}
            )
            if not c.backend_name.startswith("cra-fw:")
            else c
            for c in result.carves
        )
        return BackendResult(carves=carves, note=result.note)

    def _fallback(self) -> Backend | None:
        with self.state.lock:
            if self._other is None and FALLBACK.get(self.backend.name):
                try:
                    other = get_backend(FALLBACK[self.backend.name])
                    prepare = getattr(other, "prepare", None)
                    if prepare:
                        prepare()
                    self._other = other
                except Exception:  # noqa: BLE001 - not installed: the failure stands
                    self._other = False
            return self._other if isinstance(self._other, Backend) else None

    def _record(self, job: _Job, outcome: tuple[BackendResult | IsolatedFailure, Path]) -> list[_Job]:
        result, outdir = outcome
        if isinstance(result, IsolatedFailure):
            remove_tree(outdir)
            self._record_failure(job, result)
            return []
        children: list[_Job] = []
        # tiny regions that yielded nothing are signature noise, not layers
        carves = [c for c in result.carves if c.extracted or c.end - c.start >= self.limits.min_carve_size]
        for carve in carves:
            children.extend(self._record_carve(job, carve))
        self._add_gaps(job, carves)
        return children

    def _record_failure(self, job: _Job, result: IsolatedFailure) -> None:
        """A killed or crashed extraction: a layer for the region, so the gate sees it, and a finding."""
        where = job.parent_path or job.path.name
        size = job.path.stat().st_size
        limited = result.kind in ("budget", "files", "timeout", "deadline")
        lid = self.state.new_id(job)
        chain = (*job.chain, f"{lid}:unknown")
        layer = Layer(
            id=lid,
            parent_id=job.parent_id,
            format="unknown",
            offset=0,
            size=size,
            sha256=region_sha256(job.path, 0, size),
            status=LayerStatus.LIMITED if limited else LayerStatus.FAILED,
            depth=job.depth,
            parent_path=job.parent_path,
            extractor=self.backend.name,
            note=result.message[:300],
        )
        with self.state.lock:
            self.state.layers.append(layer)
        rule, severity, title, remediation = {
            "deadline": (
                "unpack.limit.scan-time",
                Severity.MEDIUM,
                "Unpacking stopped: the scan's time limit was reached",
                "Raise --timeout to analyse the whole image.",
            ),
            "budget": (
                "unpack.limit.bytes",
                Severity.MEDIUM,
                "Extraction stopped: output larger than the size limits (possible decompression bomb)",
                "Inspect this region by hand; raise --max-ratio/--max-bytes if it is legitimate.",
            ),
            "files": (
                "unpack.limit.files",
                Severity.MEDIUM,
                "Extraction stopped: more files than --max-files allows",
                "Raise --max-files to analyse this region.",
            ),
            "timeout": (
                "unpack.limit.time",
                Severity.MEDIUM,
                "Extraction stopped: extractor time limit",
                "Raise --extractor-timeout if the image is just large.",
            ),
        }.get(
            result.kind,
            (
                "unpack.extractor-failed",
                Severity.LOW,
                "Extractor failed on this file",
                "The region was not analysed; try the other --extractor.",
            ),
        )
        self._finding(rule, severity, title, chain, where, result.message, remediation)

    def _record_carve(self, job: _Job, carve: Carve) -> list[_Job]:
        lid = self.state.new_id(job)
        head = _read_head(job.path, carve.start)
        details = {**read_details(carve.format, head), **carve.details}
        chain = (*job.chain, f"{lid}:{carve.format}")
        where = job.parent_path or job.path.name
        status = LayerStatus.IDENTIFIED
        note = " ".join(carve.error.split())  # tools' stderr: one line in every report and message
        root = ""
        report: TreeReport | None = None
        if carve.container:
            if carve.extracted and Path(carve.extracted).exists():
                root = carve.extracted
                report = sanitize_tree(Path(root))
                restore_modes(carve.format, job.path, carve.start, carve.end, Path(root))
                status = LayerStatus.EXTRACTED
                if carve.error:
                    # the extractor stopped partway: what it wrote is analysed, the rest is not
                    status = LayerStatus.FAILED if report.files == 0 else LayerStatus.PARTIAL
            elif carve.unsupported:
                status = LayerStatus.UNSUPPORTED
            else:
                status = LayerStatus.FAILED
        self._hostile_findings(carve, chain)
        if carve.retried_with:
            self._finding(
                "unpack.retried",
                Severity.INFO,
                f"{carve.format} region: {self.backend.name} stopped partway, {carve.retried_with} extracted it",
                chain,
                where,
                carve.details.get("first_attempt", ""),
                "Nothing to do: the region was analysed with the other backend.",
                offset=carve.start,
            )
        children: list[_Job] = []
        limited = False
        if status in (LayerStatus.FAILED, LayerStatus.PARTIAL) and inflates_beyond(
            job.path, carve.start, carve.end, carve.format, job.budget or self.limits.max_total_bytes
        ):
            limited = True
            note = f"expands past {job.budget} bytes: decompression bomb"
            if root:  # a bomb's partial output is not analysed
                remove_tree(root)
                root, report = "", None
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
                self.state.total_files += report.entries
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
            for path in report.pruned:
                self._finding(
                    "unpack.limit.tree-depth",
                    Severity.MEDIUM,
                    "Folders nested too deep were not analysed (directory loop or nesting bomb)",
                    chain,
                    path,
                    f"paths below {path} are longer than {MAX_TREE_PATH} bytes; that subtree was removed",
                    "Inspect the file system by hand: a directory hard-link loop is a sign of tampering.",
                )
            if report.pruned:
                limited = True
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
            if not (over_files or over_bytes) and job.depth + 1 <= self.limits.max_depth:
                children = self._children(job, lid, Path(root), chain)
        if not limited and status == LayerStatus.PARTIAL:
            self._finding(
                "unpack.partial",
                Severity.LOW,
                f"{carve.format} region only partly extracted ({carve.retried_with or self.backend.name}): "
                "the rest was not analysed",
                chain,
                where,
                note or carve.backend_name,
                "Members after the point where extraction stopped were not analysed; try the other --extractor.",
                offset=carve.start,
            )
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
            extractor=carve.retried_with
            or (
                carve.backend_name.split(":")[0]
                if carve.backend_name.startswith("cra-fw")
                else self.backend.name
            ),
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

    def _hostile_findings(self, carve: Carve, chain: tuple[str, ...]) -> None:
        """One finding per archive member that tried to reach outside the tree, naming it."""
        for rule, member, target in carve.hostile[:MAX_HOSTILE]:
            severity, title = HOSTILE_RULES[rule]
            self._finding(
                rule,
                severity,
                f"{title}: {member}" + (f" -> {target}" if target else ""),
                chain,
                member,
                f"{carve.format} member {member!r}"
                + (f" (link target {target!r})" if target else "")
                + "; the extractor did not write it outside the tree",
                "A firmware image has no reason to do this: treat it as tampered or hostile.",
                offset=carve.start,
            )
        if len(carve.hostile) > MAX_HOSTILE:
            self._finding(
                "unpack.hostile-members",
                Severity.HIGH,
                f"{len(carve.hostile) - MAX_HOSTILE} more hostile archive members",
                chain,
                "",
                ", ".join(m for _r, m, _t in carve.hostile[MAX_HOSTILE : MAX_HOSTILE + 20]),
                "A firmware image has no reason to do this: treat it as tampered or hostile.",
                offset=carve.start,
            )

    def _children(self, job: _Job, lid: str, root: Path, chain: tuple[str, ...]) -> list[_Job]:
        jobs: list[_Job] = []
        depth = job.depth + 1
        for dirpath, _dirnames, filenames in walk(root):
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                if worth_unpacking(Path(full), st.st_size):
                    key = (*job.key, job.made)
                    job.made += 1
                    jobs.append(_Job(Path(full), lid, layer_path(root, full), depth, chain, key=key))
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
            lid = self.state.new_id(job)
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
    image: Path,
    workspace: Path,
    options: ScanOptions,
    image_sha256: str | Callable[[], str],
    progress: ProgressFn | None = None,
    deadline: float | None = None,
) -> UnpackResult:
    """Unpack ``image`` recursively into ``workspace`` (which must be empty or absent).

    ``deadline`` (``time.monotonic()``) is the scan's overall time limit: no extraction
    starts after it and none runs past it.
    """
    backend = get_backend(options.extractor)
    workspace.mkdir(parents=True, exist_ok=True)
    load_formats()
    return Walker(backend, workspace, options, progress, deadline).run(image, image_sha256)


def coverage(layers: list[Layer] | tuple[Layer, ...], image_size: int) -> tuple[Assessment, Finding | None]:
    """How much of the image was not analysed, as an assessment and (if any) one finding.

    A region counts when its layer is unsupported, failed, partial or stopped by a limit;
    a region inside such a region counts once.  Severity grows with the share of the
    image's bytes: at least half high, at least a tenth medium, else low.  Nothing
    analysed at all (no file unpacked, no region identified) is ``not_assessed``.
    """
    by_id = {la.id: la for la in layers}
    bad = {la.id for la in layers if la.status in NOT_ANALYSED}

    def nested(la: Layer) -> bool:
        cur = by_id.get(la.parent_id or "")
        while cur is not None:
            if cur.id in bad:
                return True
            cur = by_id.get(cur.parent_id or "")
        return False

    top = [la for la in layers if la.id in bad and not nested(la)]
    analysed = any(
        (la.file_count > 0 and la.status in (LayerStatus.EXTRACTED, LayerStatus.PARTIAL, LayerStatus.LIMITED))
        or (la.status == LayerStatus.IDENTIFIED and la.format != "padding")
        for la in layers
        if la.parent_id is not None
    )
    causes = [
        f"{la.format} at {la.offset:#x}{f' in {la.parent_path}' if la.parent_path else ''} "
        f"({la.size} bytes): {la.status.value}{f' ({la.note})' if la.note else ''}"
        for la in top
    ]
    share = min(1.0, sum(la.size for la in top) / image_size) if image_size else 0.0
    if not analysed:
        reason = "; ".join(causes) if causes else "no known format found"
        return Assessment("unpack", AssessmentStatus.NOT_ASSESSED, reason[:1000], 1.0), _coverage_finding(
            layers, top, causes, 1.0
        ) if top else None
    if not top:
        return Assessment("unpack", AssessmentStatus.COMPLETE), None
    reason = f"{len(top)} region(s) not (fully) analysed: " + "; ".join(causes)
    return Assessment("unpack", AssessmentStatus.PARTIAL, reason[:1000], round(share, 4)), _coverage_finding(
        layers, top, causes, share
    )


def _coverage_finding(layers, top: list[Layer], causes: list[str], share: float) -> Finding:  # noqa: ANN001
    if share >= 0.5:
        severity = Severity.HIGH
    elif share >= 0.1:
        severity = Severity.MEDIUM
    else:
        severity = Severity.LOW
    pct = f"{share * 100:.1f}".rstrip("0").rstrip(".")
    kinds = sorted({la.status.value for la in top})
    return Finding(
        rule_id="unpack.not-analysed",
        category="unpack",
        severity=severity,
        title=f"{pct}% of the image was not analysed ({len(top)} region(s): {', '.join(kinds)})",
        cra_reference=CRA_UNPACK,
        location=Location(layer_chain=(f"{layers[0].id}:{layers[0].format}",) if layers else ()),
        evidence="; ".join(causes)[:2000],
        remediation="Nothing in these regions was inventoried, identified or checked: their components, "
        "vulnerabilities and secrets are unknown.  Raise the limit, try the other --extractor, or "
        "analyse the region separately before relying on this report.",
    )
