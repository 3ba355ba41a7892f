"""The functions Dask runs on a worker: scan one image, verify one bundle, match components.

Each hands the real work to this worker's runner (a forked child per image,
bounded in time and memory), so a hostile image costs its own task only.
Outputs are written next to the final folder and renamed into place, so
``OUTDIR/<sha256>/`` exists only complete.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

from cra_fw.batch.feeds import local_copy
from cra_fw.batch.loadreport import ReportLoadError, load_report
from cra_fw.batch.records import ImageResult, ImageStatus, ScanTask, VerifyResult, VerifyTask
from cra_fw.batch.runner import RunOutcome, runner
from cra_fw.batch.summary import save_result, summarise

PARTIAL = ".partial"
SCAN_EXITS = (0, 1, 3)  # analysed (gate passed or none), gate failed, nothing analysable


def worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return socket.gethostname()


def failed(task: ScanTask, reason: str, outcome: RunOutcome | None = None) -> ImageResult:
    return ImageResult(
        sha256=task.sha256,
        name=Path(task.path).name,
        size=0,
        status=ImageStatus.FAILED,
        reason=reason[:500],
        seconds=round(outcome.seconds, 3) if outcome else 0.0,
        peak_rss=outcome.peak_rss if outcome else 0,
        cpu_seconds=outcome.cpu_seconds if outcome else 0.0,
        worker=worker_name(),
    )


def scan_task(task: ScanTask) -> ImageResult:
    """Scan one image into ``OUTDIR/<sha256>/``; the result, failed or not, never raises."""
    image = Path(task.path)
    if not image.is_file():
        return failed(
            task,
            f"{task.path} is not readable on worker {worker_name()}: inputs and OUTDIR must be at the "
            "same path on every worker (shared storage)",
        )
    out = Path(task.outdir)
    root = out / PARTIAL
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{task.sha256[:16]}-", dir=root))
    try:
        scan_out = work / "out"
        argv = ["scan", str(image), "-o", str(scan_out), "--quiet", "--workers", "1", *task.scan_args]
        if task.feeds_snapshot:
            try:
                argv += ["--db", str(local_copy(Path(task.feeds_snapshot)))]
            except OSError as exc:
                return failed(task, f"cannot copy the feed database to this node: {exc}")
        outcome = runner().run(argv, work / "scan.log", task.timeout, task.memory)
        if outcome.reason or outcome.exit_status not in SCAN_EXITS:
            why = outcome.describe
            if outcome.log_tail and not outcome.reason:
                why += f": {outcome.log_tail}"
            return failed(task, why, outcome)
        try:
            report = load_report(scan_out / "report.json")
        except ReportLoadError as exc:
            return failed(task, f"the scan wrote no readable report.json: {exc}", outcome)
        if report.image.sha256 != task.sha256:
            return failed(
                task,
                f"the file changed while the batch ran (sha256 now {report.image.sha256[:16]}...)",
                outcome,
            )
        result = summarise(
            report,
            fail_on=task.fail_on,
            fail_on_vuln=task.fail_on_vuln,
            exit_status=outcome.exit_status,
            seconds=round(outcome.seconds, 3),
            peak_rss=outcome.peak_rss,
            cpu_seconds=outcome.cpu_seconds,
            worker=worker_name(),
        )
        final = out / task.sha256
        if final.exists():  # --rescan: the old outputs go only once the new ones are complete
            final.rename(work / "old")
        save_result(out, result)
        scan_out.rename(final)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify_task(task: VerifyTask) -> VerifyResult:
    """`cra-fw verify --json` on one bundle, in the runner's child."""
    with tempfile.TemporaryDirectory(prefix="cra-fw-verify-") as tmp:
        argv = ["verify", task.path, "--json"]
        for key in task.trust:
            argv += ["--trust", key]
        log = Path(tmp) / "verify.log"
        outcome = runner().run(argv, log, task.timeout, task.memory)
        text = log.read_text(errors="replace") if log.exists() else ""
    start = text.find("{")
    payload = None
    if start >= 0:
        try:
            payload, _end = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            payload = None
    if outcome.reason or not isinstance(payload, dict):
        reason = outcome.describe if outcome.reason else (outcome.log_tail or outcome.describe)
        return VerifyResult(task.path, "error", reason=reason, seconds=round(outcome.seconds, 3))
    return VerifyResult(
        path=task.path,
        verdict=str(payload.get("verdict", "error")),
        format=str(payload.get("format") or ""),
        reason=str(payload.get("reason") or ""),
        signer=str(payload.get("signer") or ""),
        known_key=bool(payload.get("known_key")),
        seconds=round(outcome.seconds, 3),
    )


def abort_running() -> int:
    """Run on every worker when the client is interrupted: stop the scans in progress."""
    from cra_fw.batch.runner import abort_all

    return abort_all()
