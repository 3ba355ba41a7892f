"""`cra-fw batch INPUTS... -o OUTDIR`: scan a portfolio on a Dask cluster; `--verify` for auditors."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cra_fw.batch.engine import Events
from cra_fw.cli.common import echo, fail, parse_size
from cra_fw.exitcodes import EXIT_GATE, EXIT_INTERRUPTED, EXIT_NOT_ANALYSED, EXIT_OK

GiB = 1 << 30


def _default_memory(workers: int | None) -> int:
    """Per-scan resident memory limit: a fair share of this machine, at most 8 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * GiB
    return min(8 * GiB, total // max(1, workers or os.cpu_count() or 1))


class _Events(Events):
    """Progress for people: a bar on a terminal, one line per image otherwise (stderr)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.total = self.done = self.failed = 0
        self.bar: Any = None
        self.task: Any = None
        self.start = time.monotonic()

    def _say(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.console.print(message, markup=False, highlight=False)
        else:
            echo(message, err=True)

    def note(self, message: str) -> None:
        self._say(message)

    def cluster(self, scheduler: str, workers: int, dashboard: str) -> None:
        where = f"Dask scheduler {scheduler}, {workers} workers"
        self._say(where + (f"; dashboard {dashboard}" if dashboard else ""))

    def planned(self, total: int, todo: int, resumed: int, duplicates: int) -> None:
        self.total = total - duplicates
        parts = [f"{total} inputs", f"{todo} to scan"]
        if resumed:
            parts.append(f"{resumed} done by an earlier run (use --rescan to scan again)")
        if duplicates:
            parts.append(f"{duplicates} duplicates of other inputs (scanned once)")
        self._say("batch: " + ", ".join(parts))
        if not self.quiet and sys.stderr.isatty() and todo:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("scanning"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("scan", total=self.total, failed=0)

    def image(self, result: Any) -> None:
        self.done += 1
        ok = result.status.value == "analysed"
        if not ok:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, failed=self.failed)
            if not ok:
                self._say(f"{result.status.value.upper()} {result.name}: {result.reason}")
            return
        tag = "resumed " if result.resumed else ""
        line = f"[{self.done}/{self.total}] {tag}{result.status.value} {result.name}"
        if result.reason:
            line += f": {result.reason}"
        elif result.seconds and not result.resumed:
            line += f" ({result.seconds:.1f} s)"
        self._say(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _JsonEvents(_Events):
    """`--json`: one JSON object per line on stdout, for CI."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    @staticmethod
    def emit(event: str, **fields: Any) -> None:
        from cra_fw.jsonout import to_jsonable

        echo(json.dumps({"event": event, **to_jsonable(fields)}, ensure_ascii=False))

    def note(self, message: str) -> None:
        self.emit("note", message=message)

    def cluster(self, scheduler: str, workers: int, dashboard: str) -> None:
        self.emit("cluster", scheduler=scheduler, workers=workers, dashboard=dashboard)

    def planned(self, total: int, todo: int, resumed: int, duplicates: int) -> None:
        self.total = total - duplicates
        self.emit("planned", inputs=total, to_scan=todo, resumed=resumed, duplicates=duplicates)

    def image(self, result: Any) -> None:
        self.done += 1
        self.emit("image", done=self.done, total=self.total, **asdict(result))


def _check_outdir(outdir: Path, force: bool) -> None:
    """A batch folder is reused (that is how a rerun resumes); any other non-empty folder is refused."""
    if not outdir.exists():
        return
    if not outdir.is_dir():
        fail(f"{outdir} exists and is not a folder")
    if force or (outdir / ".batch").is_dir() or not any(outdir.iterdir()):
        return
    fail(f"{outdir} is not empty and holds no earlier batch; choose another folder or give --force")


def _feeds_db(params: dict[str, Any]) -> Path:
    from cra_fw.db import default_path

    return Path(params["db"]) if params["db"] else default_path()


def _scan_args(params: dict[str, Any]) -> tuple[str, ...]:
    args: list[str] = [
        "--extractor",
        params["extractor"],
        "--extractor-timeout",
        str(params["extractor_timeout"]),
    ]
    # on a cluster the scans read a per-node copy of the feeds instead (cra_fw.batch.feeds)
    if not (params["scheduler"] and _feeds_db(params).is_file()):
        args += ["--db", str(_feeds_db(params).resolve())]
    if params["policy"]:
        args += ["--policy", str(Path(params["policy"]).resolve())]
    for key in params["trust"]:
        args += ["--trust", str(Path(key).resolve())]
    if params["fail_on"]:
        args += ["--fail-on", params["fail_on"]]
    for gate in params["fail_on_vuln"]:
        args += ["--fail-on-vuln", gate]
    return tuple(args)


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("cra-fw-batch"),
    show_default=True,
    help="Batch folder: OUTDIR/<sha256>/ per image, batch-summary.json, portfolio.html.",
)
@click.option(
    "--scheduler",
    default=None,
    envvar="CRA_FW_SCHEDULER",
    metavar="ADDRESS",
    help="Dask scheduler to run on, e.g. tcp://host:8786 (default: a local cluster on this machine).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=None,
    help="Worker processes of the local cluster (default: one per core).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=1800.0,
    show_default=True,
    help="Seconds one image may take; then it is killed and recorded as failed.",
)
@click.option(
    "--memory-limit",
    default=None,
    metavar="SIZE",
    help="Resident memory one scan may use (default: the machine's memory per worker, at most 8G).",
)
@click.option("--rescan", is_flag=True, help="Scan images again even when an earlier run finished them.")
@click.option("--force", is_flag=True, help="Use an OUTDIR that holds other files.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON lines on stdout (one per image, then the summary)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option(
    "--db",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="CRA_FW_DB",
    help="Feed database the scans read and ledger the releases go to "
    "(default: $CRA_FW_DB or ~/.local/share/cra-fw/cra-fw.db). On a cluster: a path every worker reads.",
)
@click.option("--extractor", type=click.Choice(["unblob", "binwalk"]), default="unblob", show_default=True)
@click.option("--extractor-timeout", type=float, default=300.0, show_default=True)
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Trust anchor for bundles (repeatable); with --verify, the key bundles must chain to.",
)
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--fail-on", default=None, help="Gate per image on findings of this severity or higher.")
@click.option(
    "--fail-on-vuln",
    multiple=True,
    help="Gate per image on open vulnerabilities: critical, high, medium, low or kev (repeatable).",
)
@click.option(
    "--verify",
    "verify_mode",
    is_flag=True,
    help="Auditor mode: verify every bundle in the INPUTS folders against --trust; exit 0 only if all are valid.",
)
def batch(**params: Any) -> None:
    """Scan every image in INPUTS (files, folders, CSV/JSON manifests) on a Dask cluster.

    Each distinct image (by sha256) is scanned once, by `cra-fw scan`, into
    OUTDIR/<sha256>/; a rerun skips what is done. Manifest rows naming a product
    and version are recorded in the ledger. Exit status: 0 every image analysed
    (and no gate failed), 1 a gate failed, 3 an image failed or could not be
    analysed, 130 interrupted; with --verify, 0 only when every bundle is valid.
    """
    if params["verify_mode"]:
        _verify(params)
    _batch(params)


def _batch(params: dict[str, Any]) -> None:
    from cra_fw.batch import engine, inputs, portfolio
    from cra_fw.batch.ledger import LedgerWriter
    from cra_fw.checks.policy import load_policy
    from cra_fw.gate import parse_fail_on, parse_fail_on_vuln
    from cra_fw.ledger.clocks import format_utc, now_utc

    outdir: Path = params["outdir"]
    _check_outdir(outdir, params["force"])
    fail_on = params["fail_on"]
    if fail_on is None and params["policy"]:
        fail_on = load_policy(params["policy"]).fail_on
    level = parse_fail_on(fail_on)
    fail_on = level.value if level is not None else None
    fail_on_vuln = parse_fail_on_vuln(params["fail_on_vuln"])
    memory = (
        parse_size(params["memory_limit"]) if params["memory_limit"] else _default_memory(params["workers"])
    )
    events = _JsonEvents() if params["as_json"] else _Events(params["quiet"])
    started = format_utc(now_utc())
    items = inputs.collect(params["inputs"], exclude=outdir)
    if not items:
        fail("no input files found")
    hashed, unreadable = inputs.hash_items(items, inputs.HashCache(outdir / ".batch" / "hashes.json"))
    for item, why in unreadable:
        events.note(f"cannot scan {item.path}: {why}")
    writer = LedgerWriter(params["db"]) if any(i.release_label for i in hashed) else None
    index = {id(item): n for n, item in enumerate(hashed)}
    ledger: dict[int, str] = {}

    def on_result(result: Any, group: list[Any]) -> None:
        if writer is None:
            return
        for item in group:
            if item.release_label:
                ledger[index[id(item)]] = writer.record(result, item, outdir)

    try:
        run = engine.run_scans(
            hashed,
            unreadable,
            outdir,
            engine.ClusterOptions(params["scheduler"], params["workers"]),
            scan_args=_scan_args(params),
            timeout=params["timeout"],
            memory=memory,
            rescan=params["rescan"],
            fail_on=fail_on,
            fail_on_vuln=fail_on_vuln,
            events=events,
            on_result=on_result,
            feeds_db=_feeds_db(params) if params["scheduler"] else None,
        )
    finally:
        events.close()
    run.started, run.finished = started, format_utc(now_utc())
    support = {i.product: writer.support_end(i.product) for i in hashed if i.product} if writer else {}
    if writer is not None:
        writer.close()
    table = portfolio.rows(run, ledger, support)
    summary_path, html_path = portfolio.write_summary(outdir, run, table)
    counts = portfolio.counts(run, table)
    if params["as_json"]:
        _JsonEvents.emit(
            "summary",
            counts=counts,
            failures=portfolio.failures(table),
            summary=str(summary_path),
            portfolio=str(html_path),
        )
    elif not params["quiet"]:
        echo(portfolio.text_table(table))
        echo("")
        for failure in portfolio.failures(table):
            echo(f"{failure['status'].upper()}: {failure['path']}: {failure['reason']}")
        echo(
            f"{counts['analysed']} analysed, {counts['not-analysed']} not analysed, {counts['failed']} failed"
            + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else "")
            + f" of {counts['images']} images in {run.seconds:.1f} s"
        )
        echo(f"Summary: {summary_path}\nPortfolio: {html_path}")
    if run.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    if counts["failed"] or counts["not-analysed"]:
        sys.exit(EXIT_NOT_ANALYSED)
    sys.exit(EXIT_GATE if counts["gate_failed"] else EXIT_OK)


SIGNATURE_SUFFIXES = (".sig", ".asc", ".gpg", ".minisig", ".p7s", ".sigstore", ".sigstore.json")


def _is_signature_of_neighbour(path: Path) -> bool:
    """A detached signature next to the file it signs is verified with that file, not alone."""
    name = path.name
    for suffix in SIGNATURE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            if (path.parent / name[: -len(suffix)]).is_file():
                return True
    return False


def _verify(params: dict[str, Any]) -> None:
    from cra_fw.batch import engine, inputs, portfolio

    if not params["trust"]:
        fail("--verify needs --trust KEY: nothing can be valid without a trust anchor")
    paths: list[Path] = []
    for given in params["inputs"]:
        if Path(given).is_dir():
            paths.extend(inputs._walk(Path(given)))
        elif Path(given).is_file():
            paths.append(Path(given))
        else:
            fail(f"{given}: no such file or folder")
    trust_files = {Path(t).resolve() for t in params["trust"]}
    paths = [p for p in paths if p.resolve() not in trust_files and not _is_signature_of_neighbour(p)]
    if not paths:
        fail("no files to verify")
    events = _JsonEvents() if params["as_json"] else _Events(params["quiet"])
    memory = (
        parse_size(params["memory_limit"]) if params["memory_limit"] else _default_memory(params["workers"])
    )

    def on_result(res: Any) -> None:
        if params["as_json"]:
            _JsonEvents.emit("bundle", **asdict(res))

    results, interrupted = engine.run_verify(
        paths,
        tuple(str(Path(t).resolve()) for t in params["trust"]),
        engine.ClusterOptions(params["scheduler"], params["workers"]),
        timeout=params["timeout"],
        memory=memory,
        events=events,
        on_result=on_result,
    )
    valid = sum(1 for r in results if r.verdict == "valid" and not r.known_key)
    if params["as_json"]:
        _JsonEvents.emit("summary", bundles=len(results), valid=valid, not_valid=len(results) - valid)
    else:
        echo(portfolio.verify_table(results))
        echo(f"\n{valid} of {len(results)} valid")
    if interrupted:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK if valid == len(results) else EXIT_GATE)
