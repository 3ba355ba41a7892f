"""Ledger commands: product, release, support, monitor, cases, case, diff, export, import.

Each command opens the database given by ``--db`` (or ``$CRA_FW_DB``, or the
default in the user's data directory), does its writes in one transaction and
prints times in the local zone.  ``$CRA_FW_NOW`` fixes "now" (reproducible runs).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from cra_fw.cli.common import echo, fail
from cra_fw.db import default_path
from cra_fw.exitcodes import EXIT_GATE, EXIT_NOT_ANALYSED
from cra_fw.ledger.clocks import ClockState, Stage, format_local, human_delta, now_utc, parse_utc, urgency_key

_STAGE_CHOICE = click.Choice([str(s) for s in Stage])


def db_option(func: Callable) -> Callable:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Ledger database (default: $CRA_FW_DB or ~/.local/share/cra-fw/cra-fw.db).",
    )(func)


def _open(db_path: Path | None, readonly: bool = False):
    """The ledger; ``readonly`` for commands that only look: never created, migrated or rewritten
    (no database yet reads as an empty ledger)."""
    from cra_fw.ledger.store import open_ledger

    if readonly:
        target = Path(db_path) if db_path else default_path()
        return open_ledger(target if target.exists() else ":memory:", readonly=target.exists())
    return open_ledger(db_path)


def _time(text: str) -> str:
    return format_local(parse_utc(text)) if text else "-"


def _emit_json(value: Any) -> None:
    echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# ---------------------------------------------------------------- product


@click.group()
def product() -> None:
    """Products the manufacturer places on the market."""


@product.command("add")
@click.argument("name")
@click.option("--manufacturer", default="", help="Manufacturer name as it appears on the product.")
@click.option("--model", default="", help="Model or type number.")
@click.option("--category", default="", help="CRA category, e.g. default, important-class-I, critical.")
@click.option("--market", "markets", multiple=True, help="Member State code where it is sold (repeatable).")
@db_option
def product_add(
    name: str, manufacturer: str, model: str, category: str, markets: tuple[str, ...], db_path: Path | None
) -> None:
    """Record a product NAME."""
    from cra_fw.ledger.store import add_product

    db = _open(db_path)
    prod = add_product(
        db,
        name,
        manufacturer=manufacturer,
        model=model,
        category=category,
        markets=[m.upper() for m in markets],
        now=now_utc(),
    )
    echo(f"product {prod.name} added")


@product.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def product_list(as_json: bool, db_path: Path | None) -> None:
    """List products."""
    from cra_fw.ledger.store import list_products

    products = list_products(_open(db_path, readonly=True))
    if as_json:
        _emit_json([asdict(p) for p in products])
        return
    if not products:
        echo("no products yet; add one with `cra-fw product add NAME`")
    for p in products:
        echo(f"{p.name}\t{p.manufacturer or '-'}\t{p.model or '-'}\t{','.join(p.markets) or '-'}")


@product.command("show")
@click.argument("name")
@db_option
def product_show(name: str, db_path: Path | None) -> None:
    """A product with its support period, releases and cases."""
    from cra_fw.ledger.store import get_product, get_support, list_cases, list_releases

    db = _open(db_path, readonly=True)
    now = now_utc()
    p = get_product(db, name)
    support = get_support(db, p.id)
    echo(f"product:      {p.name}")
    echo(f"manufacturer: {p.manufacturer or '-'}")
    echo(f"model:        {p.model or '-'}")
    echo(f"category:     {p.category or '-'}")
    echo(f"markets:      {', '.join(p.markets) or '-'}")
    if support:
        just = f" (justification: {support.justification})" if support.justification else ""
        echo(f"support:      {support.start_month} to {support.end_month}, {support.months} months{just}")
    else:
        echo("support:      not declared")
    echo("releases:")
    for r in list_releases(db, name):
        state = "on market" if r.on_market(now) else ("withdrawn" if r.withdrawn_at else "not on market")
        echo(f"  {r.version}\t{_time(r.released_at)}\t{state}\t{r.image_sha256[:16]}")
    cases = [c for c in list_cases(db) if c.product_id == p.id]
    if cases:
        echo("cases:")
        for c in cases:
            echo(f"  {c.id}\t{c.advisory_id}\t{c.stage}")


# ---------------------------------------------------------------- release


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


@click.group()
def release() -> None:
    """Releases (firmware images) of a product."""


@release.command("add")
@click.argument("product_name", metavar="PRODUCT")
@click.argument("version")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--date", "released", default=None, help="Release time (ISO, default now).")
@click.option("--not-on-market", is_flag=True, help="Record it without placing it on the market.")
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the scan reports go (default: beside the database, reports/PRODUCT/VERSION).",
)
@click.option("--extractor", type=click.Choice(["unblob", "binwalk"]), default="unblob", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@db_option
def release_add(
    product_name: str,
    version: str,
    image: Path,
    released: str | None,
    not_on_market: bool,
    outdir: Path | None,
    extractor: str,
    quiet: bool,
    db_path: Path | None,
) -> None:
    """Scan IMAGE and record it as release VERSION of PRODUCT (all or nothing)."""
    from cra_fw.context import ScanOptions
    from cra_fw.ledger.store import get_product, record_release
    from cra_fw.pipeline import scan as run_scan

    db = _open(db_path)
    now = now_utc()
    get_product(db, product_name)  # fail before a long scan
    target = Path(db_path) if db_path else default_path()
    outdir = outdir or target.parent / "reports" / _safe(product_name) / _safe(version)

    def say(message: str) -> None:
        if not quiet:
            echo(message, err=True)

    # the report folder belongs to this release: a re-run replaces cra-fw's own files in it
    options = ScanOptions(extractor=extractor, db_path=target, progress=not quiet, replace_outputs=True)
    report = run_scan(image, outdir, options, say)
    for error in report.errors:
        echo(f"cra-fw: {error}", err=True)
    from cra_fw.gate import not_analysed

    if not_analysed(report):
        fail(
            f"nothing in {image} could be analysed; release {product_name}@{version} was not recorded",
            EXIT_NOT_ANALYSED,
        )
    rel = record_release(
        db,
        product_name,
        version,
        report,
        now=now,
        released_at=parse_utc(released) if released else None,
        on_market=not not_on_market,
        report_path=str(Path(outdir).resolve() / "report.json"),
        progress=None,
    )
    summary = f"{len(report.components)} components, {len(report.findings)} findings"
    echo(f"release {rel.label} recorded ({summary}; image sha256 {rel.image_sha256[:16]}...)")
    _print_case_hint(db, rel.product_id)


def _print_case_hint(db: Any, product_id: int) -> None:
    from cra_fw.ledger.store import list_cases

    open_cases = [c for c in list_cases(db) if c.product_id == product_id and c.status == "open"]
    for case in open_cases:
        echo(f"case {case.id}: {case.advisory_id} is at stage {case.stage}; see `cra-fw cases`")


@release.command("list")
@click.argument("product_name", metavar="[PRODUCT]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def release_list(product_name: str | None, as_json: bool, db_path: Path | None) -> None:
    """List releases (of one PRODUCT, or all)."""
    from cra_fw.ledger import feeds
    from cra_fw.ledger.store import list_releases, release_scans, vuln_counts
    from cra_fw.records import AssessmentStatus

    db = _open(db_path, readonly=True)
    now = now_utc()
    releases = list_releases(db, product_name)
    counts = vuln_counts(db)  # current matches (updated by monitor), not the ones at scan time
    vulns, kev = feeds.assess(db, now)
    assessed = vulns.status != AssessmentStatus.NOT_ASSESSED
    if as_json:
        _emit_json(
            [
                asdict(r)
                | {
                    "on_market": r.on_market(now),
                    # null, never 0, when nothing was matched: see vulnerabilities_assessed
                    "vulnerabilities": counts.get(r.id, (0, 0))[0] if assessed else None,
                    "kev": counts.get(r.id, (0, 0))[1]
                    if kev.status != AssessmentStatus.NOT_ASSESSED
                    else None,
                    "vulnerabilities_assessed": {"status": str(vulns.status), "reason": vulns.reason},
                    "kev_assessed": {"status": str(kev.status), "reason": kev.reason},
                    "scans": [asdict(s) for s in release_scans(db, r.id)],
                }
                for r in releases
            ]
        )
        return
    if not releases:
        echo("no releases yet; add one with `cra-fw release add PRODUCT VERSION IMAGE`")
    for r in releases:
        state = "on market" if r.on_market(now) else ("withdrawn" if r.withdrawn_at else "not on market")
        scans = release_scans(db, r.id)
        summary = scans[-1].summary if scans else {}
        found, exploited = counts.get(r.id, (0, 0))
        kev_text = f"{exploited} KEV" if kev.status != AssessmentStatus.NOT_ASSESSED else "KEV not assessed"
        vuln_text = f"{found} vulns ({kev_text})" if assessed else "vulns not assessed"
        echo(
            f"{r.label}\t{_time(r.released_at)}\t{state}\t{summary.get('components', 0)} components\t"
            + vuln_text
        )
    for item in (vulns, kev):
        if releases and item.status != AssessmentStatus.COMPLETE:
            state_text = (
                "not assessed" if item.status == AssessmentStatus.NOT_ASSESSED else "only partly assessed"
            )
            echo(f"note: {item.topic} {state_text}: {item.reason}", err=True)


@release.command("withdraw")
@click.argument("product_name", metavar="PRODUCT")
@click.argument("version")
@click.option("--at", "at", default=None, help="When it left the market (ISO, default now).")
@db_option
def release_withdraw(product_name: str, version: str, at: str | None, db_path: Path | None) -> None:
    """Record that a release is no longer made available on the market."""
    from cra_fw.ledger.store import get_release, withdraw_release

    db = _open(db_path)
    rel = withdraw_release(db, get_release(db, product_name, version), parse_utc(at) if at else now_utc())
    echo(f"{rel.label} withdrawn at {_time(rel.withdrawn_at)}")


# ---------------------------------------------------------------- support


@click.group()
def support() -> None:
    """Support periods (CRA Article 13(8))."""


@support.command("set")
@click.argument("product_name", metavar="PRODUCT")
@click.option("--end", "end", required=True, help="Last month of support, YYYY-MM.")
@click.option("--start", "start", default=None, help="First month, YYYY-MM (default: first release).")
@click.option("--justification", default="", help="Why support is shorter than 5 years (expected use).")
@db_option
def support_set(
    product_name: str, end: str, start: str | None, justification: str, db_path: Path | None
) -> None:
    """Declare PRODUCT's support period."""
    from cra_fw.ledger.store import set_support
    from cra_fw.ledger.support import MIN_MONTHS

    period = set_support(
        _open(db_path), product_name, end, start_month=start, justification=justification, now=now_utc()
    )
    echo(f"{product_name}: support {period.start_month} to {period.end_month} ({period.months} months)")
    if period.months < MIN_MONTHS and not period.justification:
        echo(
            f"warning: under {MIN_MONTHS} months without a justification (CRA Article 13(8)); "
            "add --justification if the product's expected use is shorter",
            err=True,
        )


@support.command("status")
@click.option(
    "--within",
    "within",
    type=click.IntRange(0),
    default=90,
    show_default=True,
    help="Flag support ending within this many days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fail", "fail_on_issue", is_flag=True, help="Exit with status 1 when anything is flagged.")
@db_option
def support_status_cmd(within: int, as_json: bool, fail_on_issue: bool, db_path: Path | None) -> None:
    """Support periods and what needs attention."""
    from cra_fw.ledger.support import support_status

    periods, issues = support_status(_open(db_path, readonly=True), now_utc(), within)
    if as_json:
        _emit_json(
            {
                "products": [
                    {
                        "product": p.product.name,
                        "start": p.start_month,
                        "end": p.end_month,
                        "months": p.months,
                        "justification": p.justification,
                    }
                    for p in periods
                ],
                "issues": [asdict(i) for i in issues],
            }
        )
    else:
        for p in periods:
            span = f"{p.start_month} to {p.end_month} ({p.months} months)" if p.end_month else "not declared"
            echo(f"{p.product.name}\t{span}")
        if issues:
            echo("")
        for issue in issues:
            echo(f"{issue.kind}\t{issue.product}\t{issue.detail}\t[{issue.reference}]")
        if not issues:
            echo("nothing flagged")
    if issues and fail_on_issue:
        sys.exit(EXIT_GATE)


# ---------------------------------------------------------------- monitor

POOL_FROM_COMPONENTS = 20_000  # below this, starting a pool costs more than it saves


def _large_ledger(db: Any) -> bool:
    import os

    if (os.cpu_count() or 1) < 2:
        return False
    row = db.conn.execute("SELECT COUNT(*) FROM components").fetchone()
    return bool(row and row[0] >= POOL_FROM_COMPONENTS)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Match on this Dask cluster (tcp://host:8786); the database must be at the same path on its workers.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=None,
    help="Match in a local pool of this many processes (default: a pool of one per core once the "
    "ledger holds many components).",
)
@db_option
def monitor(as_json: bool, scheduler: str | None, workers: int | None, db_path: Path | None) -> None:
    """Re-match every recorded release against the current feeds; open cases for exploited ones."""
    from cra_fw.ledger.monitor import run_monitor

    db = _open(db_path)
    match_many = None
    if scheduler or workers or _large_ledger(db):
        from cra_fw.batch.pool import pool_matcher

        match_many = pool_matcher(Path(db_path) if db_path else default_path(), scheduler, workers)
    result = run_monitor(db, now_utc(), match_many)
    if as_json:
        _emit_json(asdict(result))
        return
    echo(
        f"matched {result.components_matched} components at {_time(result.run_at)}; "
        f"{len(result.changes)} changes"
    )
    for change in result.changes:
        where = ", ".join(change.release_labels)
        more = change.releases - len(change.release_labels)
        if more > 0:
            where += f" and {more} more"
        kev = " [KEV]" if change.kev else ""
        echo(
            f"{change.kind}\t{change.advisory_id}{kev}\t{change.severity or '-'}\t{change.component}\t"
            f"{where or 'no releases'}"
        )
    for note in result.coverage:
        echo(f"note: {note}", err=True)
    for case_id in result.cases_opened:
        echo(f"case {case_id} opened: Article 14 clocks started; see `cra-fw cases`")
    for case_id in result.cases_fixed:
        echo(f"case {case_id}: a fixing release is recorded; the final-report clock started")


# ---------------------------------------------------------------- cases


def _case_json(case: Any, now: Any) -> dict[str, Any]:
    return {
        "id": case.id,
        "product": case.product,
        "advisory_id": case.advisory_id,
        "status": case.status,
        "stage": case.stage,
        "severity": case.severity,
        "aware_at": case.aware_at,
        "actively_exploited": case.actively_exploited,
        "components": list(case.components),
        "release_ids": list(case.release_ids),
        "fixing_release_id": case.fixing_release_id,
        "fix_available_at": case.fix_available_at,
        "clocks": [
            {
                "stage": str(c.stage),
                "due": c.due.strftime("%Y-%m-%dT%H:%M:%SZ") if c.due else "",
                "filed_at": c.filed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if c.filed_at else "",
                "state": str(c.state(now)),
                "seconds_left": int(c.remaining(now).total_seconds())
                if c.remaining(now) is not None
                else None,
            }
            for c in case.clocks
        ],
    }


def sorted_cases(db: Any, now: Any, only_open: bool = False, only_overdue: bool = False) -> list:
    """Cases, overdue first (see :func:`cra_fw.ledger.clocks.urgency_key`)."""
    from cra_fw.ledger.store import list_cases

    cases = list_cases(db)
    if only_open:
        cases = [c for c in cases if c.status == "open"]
    if only_overdue:
        cases = [c for c in cases if any(k.state(now) == ClockState.OVERDUE for k in c.clocks)]
    return sorted(cases, key=lambda c: urgency_key(c.clocks, now, c.id))


@click.command()
@click.option("--open", "only_open", is_flag=True, help="Only open cases.")
@click.option("--overdue", "only_overdue", is_flag=True, help="Only cases with an overdue report.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def cases(only_open: bool, only_overdue: bool, as_json: bool, db_path: Path | None) -> None:
    """Vulnerability cases with the time left on each Article 14 clock, overdue first."""
    db = _open(db_path, readonly=True)
    now = now_utc()
    found = sorted_cases(db, now, only_open, only_overdue)
    if as_json:
        _emit_json([_case_json(c, now) for c in found])
        return
    if not found:
        echo("no cases")
    for case in found:
        echo(
            f"case {case.id}  {case.product}  {case.advisory_id}  {case.severity or '-'}  "
            f"stage: {case.stage}  aware: {_time(case.aware_at)}"
        )
        for clock in case.clocks:
            state = clock.state(now)
            if state == ClockState.FILED:
                text = f"filed {format_local(clock.filed_at)}" + (" (late)" if clock.filed_late else "")
            elif state == ClockState.NOT_STARTED:
                text = "starts when a fix is available"
            else:
                left = clock.remaining(now)
                text = f"due {format_local(clock.due)}, " + (
                    f"OVERDUE by {human_delta(-left)}"
                    if state == ClockState.OVERDUE
                    else f"{human_delta(left)} left"
                )
            echo(f"    {clock.stage:<14} {text}")


@click.group()
def case() -> None:
    """One vulnerability case: file a report, draft it, record a fix."""


@case.command("show")
@click.argument("case_id", type=int)
@db_option
def case_show(case_id: int, db_path: Path | None) -> None:
    """One case as JSON, with its clocks."""
    from cra_fw.ledger.store import get_case

    _emit_json(_case_json(get_case(_open(db_path, readonly=True), case_id), now_utc()))


@case.command("file")
@click.argument("case_id", type=int)
@click.option("--stage", required=True, type=_STAGE_CHOICE, help="Which report was sent.")
@click.option("--at", "at", default=None, help="When it was sent (ISO, default now).")
@click.option("--reference", default="", help="Reference given by the reporting platform.")
@click.option("--note", default="", help="Free text kept with the filing.")
@db_option
def case_file(
    case_id: int, stage: str, at: str | None, reference: str, note: str, db_path: Path | None
) -> None:
    """Record that a report of case CASE_ID was filed."""
    from cra_fw.ledger.store import file_report

    updated = file_report(
        _open(db_path),
        case_id,
        stage,
        filed_at=parse_utc(at) if at else now_utc(),
        reference=reference,
        note=note,
    )
    echo(f"case {case_id}: {stage} filed; now at stage {updated.stage}")


@case.command("fix")
@click.argument("case_id", type=int)
@click.option("--at", "at", default=None, help="When the corrective or mitigating measure became available.")
@click.option("--release", "release_ref", default=None, help="The fixing release, PRODUCT@VERSION.")
@db_option
def case_fix(case_id: int, at: str | None, release_ref: str | None, db_path: Path | None) -> None:
    """Record a corrective or mitigating measure (starts the 14-day final-report clock)."""
    from cra_fw.ledger.store import resolve_release, set_fix

    db = _open(db_path)
    rel = resolve_release(db, release_ref) if release_ref else None
    updated = set_fix(db, case_id, parse_utc(at) if at else now_utc(), rel)
    echo(f"case {case_id}: fix available {_time(updated.fix_available_at)}; now at stage {updated.stage}")


@case.command("draft")
@click.argument("case_id", type=int)
@click.option("--stage", required=True, type=_STAGE_CHOICE, help="Which report to draft.")
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cra-fw-drafts"),
    show_default=True,
    help="Folder for the Markdown and JSON.",
)
@db_option
def case_draft(case_id: int, stage: str, outdir: Path, db_path: Path | None) -> None:
    """Write a pre-filled draft of one report of case CASE_ID (Markdown and JSON)."""
    from cra_fw.ledger.drafts import build_draft, write_draft

    md, js = write_draft(build_draft(_open(db_path, readonly=True), case_id, stage, now_utc()), outdir)
    echo(f"wrote {md}")
    echo(f"wrote {js}")


# ---------------------------------------------------------------- diff, export, import


@click.command()
@click.argument("release_a")
@click.argument("release_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def diff(release_a: str, release_b: str, as_json: bool, db_path: Path | None) -> None:
    """What changed from RELEASE_A to RELEASE_B (each PRODUCT@VERSION)."""
    from cra_fw.ledger.diff import diff_releases
    from cra_fw.ledger.store import resolve_release

    db = _open(db_path, readonly=True)
    result = diff_releases(db, resolve_release(db, release_a), resolve_release(db, release_b))
    if as_json:
        _emit_json(
            {
                "old": result.old.label,
                "new": result.new.label,
                "components_added": [c.key for c in result.components_added],
                "components_removed": [c.key for c in result.components_removed],
                "components_changed": [asdict(c) for c in result.components_changed],
                "vulnerabilities_fixed": [f"{v.advisory_id} {v.component.key}" for v in result.vulns_fixed],
                "vulnerabilities_introduced": [
                    f"{v.advisory_id} {v.component.key}" for v in result.vulns_introduced
                ],
                "findings_fixed": [f"{f.rule_id} {f.path}" for f in result.findings_fixed],
                "findings_introduced": [f"{f.rule_id} {f.path}" for f in result.findings_introduced],
            }
        )
        return
    echo(f"{result.old.label} -> {result.new.label}")
    if result.empty:
        echo("no differences")
    for c in result.components_added:
        echo(f"+ component {c.key}")
    for c in result.components_removed:
        echo(f"- component {c.key}")
    for ch in result.components_changed:
        echo(f"{'^' if ch.upgraded else 'v'} component {ch.name} {ch.old_version} -> {ch.new_version}")
    for v in result.vulns_fixed:
        echo(f"fixed      {v.advisory_id}{' [KEV]' if v.kev else ''} in {v.component.key}")
    for v in result.vulns_introduced:
        echo(f"introduced {v.advisory_id}{' [KEV]' if v.kev else ''} in {v.component.key}")
    for f in result.findings_fixed:
        echo(f"fixed      finding {f.rule_id} {f.path} ({f.severity})")
    for f in result.findings_introduced:
        echo(f"introduced finding {f.rule_id} {f.path} ({f.severity})")


@click.command("export")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout).",
)
@db_option
def export_cmd(output: Path | None, db_path: Path | None) -> None:
    """Write the whole ledger as JSON (feeds are not included)."""
    from cra_fw.ledger.exchange import dumps, export_ledger, write_export

    db = _open(db_path, readonly=True)
    if output is None:
        sys.stdout.write(dumps(export_ledger(db)))
    else:
        write_export(db, output)
        echo(f"wrote {output}", err=True)


@click.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a ledger that is not empty.")
@db_option
def import_cmd(source: Path, replace: bool, db_path: Path | None) -> None:
    """Load a ledger written by `cra-fw export` (into an empty ledger unless --replace)."""
    from cra_fw.ledger.exchange import read_import

    counts = read_import(_open(db_path), source, replace=replace)
    echo(", ".join(f"{n} {t}" for t, n in counts.items() if n) or "nothing to import")


COMMANDS = (product, release, support, monitor, cases, case, diff, export_cmd, import_cmd)
