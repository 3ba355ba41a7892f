"""The batch client: cluster, tasks, retries, Ctrl-C, and the one ledger writer.

Distinct images (by sha256) become one Dask task each, the largest first so a
long scan does not start last.  A task that fails is a result, not an
exception; a worker lost while running a task makes the scheduler run it once
more (``allowed-failures`` = 1) and then report it lost, which is recorded as a
failure with that reason.  Everything the client learns it writes itself: the
ledger rows (one writer), the summary and the portfolio.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cra_fw.batch.records import (
    BatchItem,
    ImageResult,
    ImageStatus,
    ScanTask,
    VerifyResult,
    VerifyTask,
)
from cra_fw.batch.summary import gate_options, load_result, save_result, summarise

ALLOWED_FAILURES = 1  # a task whose worker died is run once more, then recorded as failed


@dataclass(frozen=True)
class ClusterOptions:
    scheduler: str | None = None  # tcp://host:8786; None: an embedded LocalCluster
    workers: int | None = None  # LocalCluster worker processes (default: one per core)


@dataclass
class BatchRun:
    """What one run did, for the summary writers and the exit status."""

    items: list[BatchItem]
    results: dict[str, ImageResult]  # by sha256
    unreadable: list[tuple[BatchItem, str]]
    ledger: dict[int, str] = field(default_factory=dict)  # item index -> what the ledger did
    interrupted: bool = False
    dashboard: str = ""
    scheduler: str = ""
    workers: int = 0
    seconds: float = 0.0
    started: str = ""
    finished: str = ""


class Events:
    """Progress callbacks; the CLI renders them as a bar, lines or JSON."""

    def cluster(self, scheduler: str, workers: int, dashboard: str) -> None: ...

    def planned(self, total: int, todo: int, resumed: int, duplicates: int) -> None: ...

    def image(self, result: ImageResult) -> None: ...

    def note(self, message: str) -> None: ...


def _set_allowed_failures(dask_scheduler: Any = None, value: int = ALLOWED_FAILURES) -> int:
    old = int(dask_scheduler.allowed_failures)
    dask_scheduler.allowed_failures = value
    return old


@contextlib.contextmanager
def open_client(options: ClusterOptions, events: Events) -> Iterator[Any]:
    """A distributed Client on the given scheduler, or on a LocalCluster that ends with it."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})
    cluster = None
    if options.scheduler:
        client = Client(options.scheduler, timeout="30s")
        old = client.run_on_scheduler(_set_allowed_failures)
        if old != ALLOWED_FAILURES:
            events.note(f"scheduler allowed-failures set to {ALLOWED_FAILURES} (was {old})")
    else:
        cluster = LocalCluster(
            n_workers=options.workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",  # any free port: several batches may run at once
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=20)


def dashboard_link(client: Any) -> str:
    """The scheduler's dashboard, when it serves one (it needs bokeh where the scheduler runs)."""
    services = client.scheduler_info().get("services", {})
    if "dashboard" not in services:
        return ""
    link = str(client.dashboard_link)
    if client.cluster is not None:  # our own LocalCluster: its dashboard is ours to vouch for
        try:
            import bokeh  # noqa: F401
        except ImportError:
            return link + " (install bokeh for the charts: pip install 'cra-fw[dashboard]')"
    return link


def _workers(client: Any) -> int:
    return len(client.scheduler_info().get("workers", {}))


def _failed(sha: str, item: BatchItem, reason: str) -> ImageResult:
    return ImageResult(
        sha256=sha, name=Path(item.path).name, size=item.size, status=ImageStatus.FAILED, reason=reason
    )


def plan(
    items: Sequence[BatchItem],
    outdir: Path,
    rescan: bool,
    fail_on: str | None,
    fail_on_vuln: tuple[str, ...],
) -> tuple[dict[str, list[BatchItem]], dict[str, ImageResult]]:
    """Group items by content; the stored results that this run can reuse."""
    by_sha: dict[str, list[BatchItem]] = {}
    for item in items:
        by_sha.setdefault(item.sha256, []).append(item)
    done: dict[str, ImageResult] = {}
    if rescan:
        return by_sha, done
    wanted = gate_options(fail_on, fail_on_vuln)
    for sha in by_sha:
        stored = load_result(outdir, sha)
        if stored is None:
            continue
        if stored.gate_options != wanted:  # same scan, another gate: evaluate it again here
            from cra_fw.batch.loadreport import ReportLoadError, load_report

            try:
                report = load_report(outdir / sha / "report.json")
            except ReportLoadError:
                continue
            stored = summarise(
                report,
                fail_on=fail_on,
                fail_on_vuln=fail_on_vuln,
                exit_status=stored.exit_status,
                seconds=stored.seconds,
                peak_rss=stored.peak_rss,
                cpu_seconds=stored.cpu_seconds,
                worker=stored.worker,
            )
            save_result(outdir, stored)
        done[sha] = replace(stored, resumed=True)
    return by_sha, done


def run_scans(
    items: list[BatchItem],
    unreadable: list[tuple[BatchItem, str]],
    outdir: Path,
    cluster: ClusterOptions,
    *,
    scan_args: tuple[str, ...],
    timeout: float,
    memory: int,
    rescan: bool,
    fail_on: str | None,
    fail_on_vuln: tuple[str, ...],
    events: Events,
    on_result: Callable[[ImageResult, list[BatchItem]], None] | None = None,
    feeds_db: Path | None = None,
) -> BatchRun:
    """Scan every distinct image not already done; results in input order.

    ``feeds_db``: on a cluster (``cluster.scheduler``), the feed database to snapshot
    and copy to each node (:mod:`cra_fw.batch.feeds`); ``scan_args`` then carry no ``--db``.
    """
    from cra_fw.batch.tasks import abort_running, scan_task

    start = time.monotonic()
    outdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(outdir / ".partial", ignore_errors=True)  # leftovers of a killed run
    by_sha, results = plan(items, outdir, rescan, fail_on, fail_on_vuln)
    todo = [sha for sha in by_sha if sha not in results]
    events.planned(len(items), len(todo), len(results), len(items) - len(by_sha))
    run = BatchRun(items=items, results=results, unreadable=unreadable)
    for sha, done in list(results.items()):
        done = replace(done, paths=tuple(i.path for i in by_sha[sha]))
        results[sha] = done
        events.image(done)
        if on_result:
            on_result(done, by_sha[sha])
    if not todo:
        run.seconds = time.monotonic() - start
        return run
    snapshot = ""
    if feeds_db is not None and feeds_db.is_file():
        from cra_fw.batch.feeds import take_snapshot

        snapshot = str(take_snapshot(feeds_db, outdir).resolve())
        events.note(f"feeds: scans read a snapshot of {feeds_db}, copied once to each node")
    with open_client(cluster, events) as client:
        run.dashboard = dashboard_link(client)
        run.scheduler = str(client.scheduler.address)
        run.workers = _workers(client)
        events.cluster(run.scheduler, run.workers, run.dashboard)
        token = uuid.uuid4().hex[:8]
        futures = {}
        for sha in sorted(todo, key=lambda s: -by_sha[s][0].size):
            first = by_sha[sha][0]
            task = ScanTask(
                path=str(Path(first.path).resolve()),
                sha256=sha,
                outdir=str(outdir.resolve()),
                scan_args=scan_args,
                timeout=timeout,
                memory=memory,
                fail_on=fail_on,
                fail_on_vuln=fail_on_vuln,
                feeds_snapshot=snapshot,
            )
            fut = client.submit(
                scan_task, task, key=f"cra-fw-scan-{sha[:16]}-{token}", pure=False, priority=first.size
            )
            futures[fut] = sha
        try:
            _collect(futures, by_sha, results, events, on_result)
        except KeyboardInterrupt:
            run.interrupted = True
            events.note("interrupted: stopping the scans in progress; finished images are kept")
            with contextlib.suppress(Exception):
                client.cancel(list(futures), force=True)
            with contextlib.suppress(Exception):
                client.run(abort_running, wait=True)
    if snapshot:
        from cra_fw.batch.feeds import drop_snapshots

        drop_snapshots(outdir)
    with contextlib.suppress(OSError):
        (outdir / ".partial").rmdir()  # only when empty: a task still running elsewhere keeps its folder
    for sha in todo:
        if sha not in results:
            first = by_sha[sha][0]
            results[sha] = replace(
                _failed(sha, first, "not scanned: the batch was interrupted"),
                status=ImageStatus.INTERRUPTED,
                paths=tuple(i.path for i in by_sha[sha]),
            )
    run.seconds = time.monotonic() - start
    return run


def _collect(
    futures: dict[Any, str],
    by_sha: dict[str, list[BatchItem]],
    results: dict[str, ImageResult],
    events: Events,
    on_result: Callable[[ImageResult, list[BatchItem]], None] | None,
) -> None:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    for fut in as_completed(list(futures)):
        sha = futures[fut]
        first = by_sha[sha][0]
        try:
            result = fut.result()
        except KilledWorker:
            result = _failed(
                sha,
                first,
                "the worker running it was lost, and again on the retry (out of memory, killed, "
                "or its node went away)",
            )
        except Exception as exc:  # noqa: BLE001 - a task bug is one image's failure
            result = _failed(sha, first, f"task error: {type(exc).__name__}: {exc}"[:500])
        if not result.size:
            result = replace(result, size=first.size)
        result = replace(result, paths=tuple(i.path for i in by_sha[sha]))
        results[sha] = result
        fut.release()
        events.image(result)
        if on_result:
            on_result(result, by_sha[sha])


def run_verify(
    paths: list[Path],
    trust: tuple[str, ...],
    cluster: ClusterOptions,
    *,
    timeout: float,
    memory: int,
    events: Events,
    on_result: Callable[[VerifyResult], None] | None = None,
) -> tuple[list[VerifyResult], bool]:
    """`cra-fw verify` of every path in the pool; results in input order, and whether interrupted."""
    from distributed import as_completed

    from cra_fw.batch.tasks import abort_running, verify_task

    out: dict[str, VerifyResult] = {}
    interrupted = False
    with open_client(cluster, events) as client:
        events.cluster(str(client.scheduler.address), _workers(client), dashboard_link(client))
        token = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                verify_task,
                VerifyTask(str(p.resolve()), trust, timeout, memory),
                key=f"cra-fw-verify-{i}-{token}",
                pure=False,
            ): str(p)
            for i, p in enumerate(paths)
        }
        try:
            for fut in as_completed(list(futures)):
                path = futures[fut]
                try:
                    res: VerifyResult = fut.result()
                    res = replace(res, path=path)
                except Exception as exc:  # noqa: BLE001 - lost worker or task bug: this bundle's verdict
                    res = VerifyResult(path, "error", reason=f"{type(exc).__name__}: {exc}"[:300])
                out[path] = res
                if on_result:
                    on_result(res)
        except KeyboardInterrupt:
            interrupted = True
            with contextlib.suppress(Exception):
                client.cancel(list(futures), force=True)
                client.run(abort_running, wait=True)
    results = [out.get(str(p)) or VerifyResult(str(p), "not-verified", reason="interrupted") for p in paths]
    return results, interrupted
