"""Ledger queries: reading and writing the records of :mod:`cra_fw.ledger.records`.

Every write function runs inside :func:`cra_fw.db.transaction`; when called
inside an outer transaction it joins it, so a command's writes commit or roll
back together.  Times are stored as UTC ISO strings (``...Z``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

import sqlite_utils

from cra_fw.db import open_db, transaction
from cra_fw.errors import LedgerError
from cra_fw.ledger import feeds
from cra_fw.ledger.clocks import STAGES, Stage, format_utc, parse_utc
from cra_fw.ledger.records import (
    Case,
    Filing,
    Product,
    Release,
    Scan,
    StoredComponent,
    StoredFinding,
    StoredVuln,
    SupportPeriod,
    parse_month,
)
from cra_fw.ledger.schema import NAMESPACE
from cra_fw.records import Component, Finding, ScanReport

ProgressFn = Callable[[str], None]


def open_ledger(path: Path | str | None = None, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the shared database with the ledger (and, when installed, feed) tables migrated
    (``readonly``: as it is, never created or rewritten)."""
    return open_db(path, [NAMESPACE, *feeds.namespaces()], readonly=readonly)


# ---------------------------------------------------------------- helpers


def check_month(text: str) -> str:
    year, month = parse_month(text)
    return f"{year:04d}-{month:02d}"


def _loads(text: str | None, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _product_row(row: Sequence) -> Product:
    return Product(row[0], row[1], row[2], row[3], row[4], tuple(_loads(row[5], [])), row[6])


_PRODUCT_COLS = "id, name, manufacturer, model, category, markets, created"
_RELEASE_COLS = (
    "r.id, r.product_id, p.name, r.version, r.released_at, r.image_sha256, r.image_name, "
    "r.on_market_since, r.withdrawn_at, r.created"
)
_COMPONENT_COLS = "c.id, c.name, c.version, c.purl, c.cpe, c.supplier, c.kind, c.licenses"


def _component_row(row: Sequence) -> StoredComponent:
    return StoredComponent(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(_loads(row[7], [])))


# ---------------------------------------------------------------- products


def add_product(
    db: sqlite_utils.Database,
    name: str,
    *,
    manufacturer: str = "",
    model: str = "",
    category: str = "",
    markets: Iterable[str] = (),
    now: datetime,
) -> Product:
    """Record a product; its name is its handle in every other command."""
    name = name.strip()
    if not name or "@" in name:
        raise LedgerError(f"{name!r} is not a usable product name: give a non-empty name without '@'")
    with transaction(db):
        if db.conn.execute("SELECT 1 FROM products WHERE name = ?", (name,)).fetchone():
            raise LedgerError(f"product {name!r} already exists; see `cra-fw product show {name}`")
        db.conn.execute(
            "INSERT INTO products (name, manufacturer, model, category, markets, created) VALUES (?,?,?,?,?,?)",
            (name, manufacturer, model, category, json.dumps(sorted(set(markets))), format_utc(now)),
        )
    return get_product(db, name)


def get_product(db: sqlite_utils.Database, name: str) -> Product:
    row = db.conn.execute(f"SELECT {_PRODUCT_COLS} FROM products WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise LedgerError(f"no product named {name!r}; add it with `cra-fw product add {name}`")
    return _product_row(row)


def list_products(db: sqlite_utils.Database) -> list[Product]:
    rows = db.conn.execute(f"SELECT {_PRODUCT_COLS} FROM products ORDER BY name").fetchall()
    return [_product_row(r) for r in rows]


# ---------------------------------------------------------------- releases


def _release_row(row: Sequence) -> Release:
    return Release(*row)


def list_releases(db: sqlite_utils.Database, product: str | None = None) -> list[Release]:
    sql = f"SELECT {_RELEASE_COLS} FROM releases r JOIN products p ON p.id = r.product_id"
    params: tuple = ()
    if product is not None:
        get_product(db, product)
        sql += " WHERE p.name = ?"
        params = (product,)
    sql += " ORDER BY p.name, r.released_at, r.id"
    return [_release_row(r) for r in db.conn.execute(sql, params).fetchall()]


def get_release(db: sqlite_utils.Database, product: str, version: str) -> Release:
    row = db.conn.execute(
        f"SELECT {_RELEASE_COLS} FROM releases r JOIN products p ON p.id = r.product_id "
        "WHERE p.name = ? AND r.version = ?",
        (product, version),
    ).fetchone()
    if row is None:
        get_product(db, product)
        raise LedgerError(f"product {product!r} has no release {version!r}; see `cra-fw release list`")
    return _release_row(row)


def release_by_id(db: sqlite_utils.Database, release_id: int) -> Release:
    row = db.conn.execute(
        f"SELECT {_RELEASE_COLS} FROM releases r JOIN products p ON p.id = r.product_id WHERE r.id = ?",
        (release_id,),
    ).fetchone()
    if row is None:
        raise LedgerError(f"no release with id {release_id}; see `cra-fw release list`")
    return _release_row(row)


def resolve_release(db: sqlite_utils.Database, text: str) -> Release:
    """'PRODUCT@VERSION' (or a release id) to a release."""
    if "@" in text:
        product, version = text.split("@", 1)
        return get_release(db, product, version)
    if text.isdigit():
        return release_by_id(db, int(text))
    raise LedgerError(f"{text!r}: name a release as PRODUCT@VERSION (see `cra-fw release list`)")


def finding_key(finding: Finding) -> str:
    """Identity of a finding across releases: rule, path, line/offset, fingerprint (not layer ids)."""
    loc = finding.location
    raw = "|".join(
        (finding.rule_id, loc.path, str(loc.line or ""), str(loc.offset or ""), finding.fingerprint)
    )
    return f"{finding.rule_id}:{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def _scan_summary(report: ScanReport, matched: int, kev: int) -> dict[str, int]:
    summary: dict[str, int] = {
        "components": len(report.components),
        "files": len(report.files),
        "layers": len(report.layers),
        "findings": len(report.findings),
        "vulnerabilities": matched,
        "kev": kev,
        "errors": len(report.errors),
    }
    for finding in report.findings:
        key = f"findings_{finding.severity.value}"
        summary[key] = summary.get(key, 0) + 1
    return summary


def _component_ids(db: sqlite_utils.Database, components: Iterable[Component]) -> dict[tuple, int]:
    """Insert missing components; their ids by identity (name, version, purl, cpe)."""
    conn = db.conn
    ids: dict[tuple, int] = {}
    for comp in components:
        ident = (comp.name, comp.version, comp.purl, comp.cpe)
        if ident in ids:
            continue
        conn.execute(
            "INSERT OR IGNORE INTO components (name, version, purl, cpe, supplier, kind, licenses) "
            "VALUES (?,?,?,?,?,?,?)",
            (*ident, comp.supplier, comp.kind, json.dumps(list(comp.licenses))),
        )
        row = conn.execute(
            "SELECT id FROM components WHERE name=? AND version=? AND purl=? AND cpe=?", ident
        ).fetchone()
        ids[ident] = row[0]
    return ids


def store_matches(
    db: sqlite_utils.Database, component_id: int, matches: Iterable[feeds.Match], now: datetime
) -> None:
    """Replace the stored matches of one component (keeping when each was first seen)."""
    conn = db.conn
    seen = dict(
        conn.execute(
            "SELECT advisory_id, first_seen FROM component_vulns WHERE component_id = ?", (component_id,)
        ).fetchall()
    )
    conn.execute("DELETE FROM component_vulns WHERE component_id = ?", (component_id,))
    rows = {}
    for m in matches:
        rows[m.advisory_id] = (
            component_id,
            m.advisory_id,
            m.severity,
            int(m.kev),
            m.kev_date_added,
            m.fixed_version,
            m.summary,
            seen.get(m.advisory_id, format_utc(now)),
            m.cvss_score,
        )
    conn.executemany(
        "INSERT INTO component_vulns (component_id, advisory_id, severity, kev, kev_date_added, fixed_version, "
        "summary, first_seen, cvss_score) VALUES (?,?,?,?,?,?,?,?,?)",
        list(rows.values()),
    )


def _report_matches(report: ScanReport) -> dict[str, list[feeds.Match]]:
    by_key: dict[str, list[feeds.Match]] = {}
    for vuln in report.vulnerabilities:
        if vuln.open:
            by_key.setdefault(vuln.component_key, []).append(feeds.from_vuln_match(vuln))
    return by_key


def record_release(
    db: sqlite_utils.Database,
    product: str,
    version: str,
    report: ScanReport,
    *,
    now: datetime,
    released_at: datetime | None = None,
    on_market: bool = True,
    report_path: str = "",
    progress: ProgressFn | None = None,
) -> Release:
    """Record a scanned release with its SBOM, findings and matches, in one transaction.

    Matches come from the feeds in ``db`` when they are there (the same matching
    ``monitor`` does later), else from the scan's own vulnerability results.
    Cases are opened or updated for the product afterwards (see :func:`sync_cases`).
    """
    say = progress or (lambda _m: None)
    version = version.strip()
    if not version:
        raise LedgerError("empty release version: give e.g. 1.2.0")
    released = released_at or now
    unique = {(c.name, c.version, c.purl, c.cpe): c for c in report.components}
    if feeds.available(db):
        matched = dict(zip(unique, feeds.match_each(unique.values(), db), strict=True))
    else:
        by_key = _report_matches(report)
        matched = {ident: by_key.get(f"{ident[0]}@{ident[1]}", []) for ident in unique}
    ages = feeds.feed_ages(db, now)
    conn = db.conn
    with transaction(db):
        prod = get_product(db, product)
        if conn.execute(
            "SELECT 1 FROM releases WHERE product_id = ? AND version = ?", (prod.id, version)
        ).fetchone():
            raise LedgerError(
                f"{product}@{version} is already recorded; give the new release another version"
            )
        cur = conn.execute(
            "INSERT INTO releases (product_id, version, released_at, image_sha256, image_name, on_market_since, "
            "withdrawn_at, created) VALUES (?,?,?,?,?,?,?,?)",
            (
                prod.id,
                version,
                format_utc(released),
                report.image.sha256,
                report.image.name,
                format_utc(released) if on_market else "",
                "",
                format_utc(now),
            ),
        )
        release_id = int(cur.lastrowid)
        say("release")
        ids = _component_ids(db, unique.values())
        conn.executemany(
            "INSERT OR IGNORE INTO release_components (release_id, component_id) VALUES (?, ?)",
            [(release_id, cid) for cid in sorted(set(ids.values()))],
        )
        say("components")
        conn.executemany(
            "INSERT OR IGNORE INTO release_findings (release_id, key, rule_id, category, severity, title, path, "
            "cra_reference) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    release_id,
                    finding_key(f),
                    f.rule_id,
                    f.category,
                    f.severity.value,
                    f.title,
                    f.location.path,
                    json.dumps(list(f.cra_reference)),
                )
                for f in report.findings
                if not f.suppressed
            ],
        )
        say("findings")
        for ident, matches in matched.items():
            store_matches(db, ids[ident], matches, now)
        total = sum(len(m) for m in matched.values())
        kev = sum(1 for ms in matched.values() for m in ms if m.kev)
        conn.execute(
            "INSERT INTO scans (release_id, scanned_at, tool_version, feed_ages, report_path, summary) "
            "VALUES (?,?,?,?,?,?)",
            (
                release_id,
                report.finished or report.started or format_utc(now),
                report.tool.version,
                json.dumps(ages, sort_keys=True),
                report_path,
                json.dumps(_scan_summary(report, total, kev), sort_keys=True),
            ),
        )
        say("vulnerabilities")
        sync_cases(db, now, product_id=prod.id)
        detect_fixes(db, now, product_id=prod.id)
        say("cases")
    return release_by_id(db, release_id)


def withdraw_release(db: sqlite_utils.Database, release: Release, at: datetime) -> Release:
    with transaction(db):
        db.conn.execute("UPDATE releases SET withdrawn_at = ? WHERE id = ?", (format_utc(at), release.id))
    return release_by_id(db, release.id)


def release_components(db: sqlite_utils.Database, release_id: int) -> list[StoredComponent]:
    rows = db.conn.execute(
        f"SELECT {_COMPONENT_COLS} FROM release_components rc JOIN components c ON c.id = rc.component_id "
        "WHERE rc.release_id = ? ORDER BY c.name, c.version, c.purl, c.cpe",
        (release_id,),
    ).fetchall()
    return [_component_row(r) for r in rows]


def release_vulns(db: sqlite_utils.Database, release_id: int) -> list[StoredVuln]:
    rows = db.conn.execute(
        f"SELECT {_COMPONENT_COLS}, v.advisory_id, v.severity, v.kev, v.kev_date_added, v.fixed_version, "
        "v.summary, v.first_seen, v.cvss_score FROM release_components rc "
        "JOIN components c ON c.id = rc.component_id JOIN component_vulns v ON v.component_id = c.id "
        "WHERE rc.release_id = ? ORDER BY v.advisory_id, c.name, c.version",
        (release_id,),
    ).fetchall()
    return [
        StoredVuln(r[8], _component_row(r[:8]), r[9], bool(r[10]), r[11], r[12], r[13], r[14], r[15])
        for r in rows
    ]


def release_findings(db: sqlite_utils.Database, release_id: int) -> list[StoredFinding]:
    rows = db.conn.execute(
        "SELECT release_id, key, rule_id, category, severity, title, path, cra_reference FROM release_findings "
        "WHERE release_id = ? ORDER BY rule_id, path, key",
        (release_id,),
    ).fetchall()
    return [StoredFinding(*r[:7], tuple(_loads(r[7], []))) for r in rows]


def vuln_counts(db: sqlite_utils.Database) -> dict[int, tuple[int, int]]:
    """Per release: (vulnerabilities, KEV-listed ones) matched now, from the stored matches."""
    rows = db.conn.execute(
        "SELECT rc.release_id, COUNT(*), SUM(v.kev) FROM release_components rc "
        "JOIN component_vulns v ON v.component_id = rc.component_id GROUP BY rc.release_id"
    ).fetchall()
    return {r[0]: (r[1], r[2] or 0) for r in rows}


def release_scans(db: sqlite_utils.Database, release_id: int) -> list[Scan]:
    rows = db.conn.execute(
        "SELECT id, release_id, scanned_at, tool_version, feed_ages, report_path, summary FROM scans "
        "WHERE release_id = ? ORDER BY id",
        (release_id,),
    ).fetchall()
    return [Scan(r[0], r[1], r[2], r[3], _loads(r[4], {}), r[5], _loads(r[6], {})) for r in rows]


# ---------------------------------------------------------------- support periods


def set_support(
    db: sqlite_utils.Database,
    product: str,
    end_month: str,
    *,
    start_month: str | None = None,
    justification: str = "",
    now: datetime,
) -> SupportPeriod:
    """Declare (or change) a product's support period; start defaults to its first release's month."""
    end_month = check_month(end_month)
    with transaction(db):
        prod = get_product(db, product)
        if start_month is None:
            row = db.conn.execute(
                "SELECT MIN(released_at) FROM releases WHERE product_id = ?", (prod.id,)
            ).fetchone()
            start_month = (row[0] or prod.created or format_utc(now))[:7]
        start_month = check_month(start_month)
        if parse_month(end_month) < parse_month(start_month):
            raise LedgerError(
                f"support end {end_month} is before its start {start_month}; check --end/--start"
            )
        db.conn.execute(
            "INSERT INTO support_periods (product_id, start_month, end_month, justification, updated) "
            "VALUES (?,?,?,?,?) ON CONFLICT(product_id) DO UPDATE SET start_month=excluded.start_month, "
            "end_month=excluded.end_month, justification=excluded.justification, updated=excluded.updated",
            (prod.id, start_month, end_month, justification.strip(), format_utc(now)),
        )
    return get_support(db, prod.id)  # type: ignore[return-value]


def get_support(db: sqlite_utils.Database, product_id: int) -> SupportPeriod | None:
    row = db.conn.execute(
        "SELECT product_id, start_month, end_month, justification, updated "
        "FROM support_periods WHERE product_id = ?",
        (product_id,),
    ).fetchone()
    return SupportPeriod(*row) if row else None


# ---------------------------------------------------------------- cases


def list_cases(db: sqlite_utils.Database, *, case_id: int | None = None) -> list[Case]:
    """Cases with their releases and filings (three queries, whatever the ledger size)."""
    conn = db.conn
    where, params = ("WHERE c.id = ?", (case_id,)) if case_id is not None else ("", ())
    rows = conn.execute(
        "SELECT c.id, c.product_id, p.name, c.advisory_id, c.aware_at, c.actively_exploited, c.status, c.created, "
        "c.severity, c.summary, c.components, c.fixing_release_id, c.fix_available_at "
        f"FROM cases c JOIN products p ON p.id = c.product_id {where} ORDER BY c.id",
        params,
    ).fetchall()
    releases: dict[int, list[int]] = {}
    filings: dict[int, list[Filing]] = {}
    sub = "WHERE case_id = ?" if case_id is not None else ""
    # one row per case (not per release): this is what keeps `cases` fast on large ledgers
    for cid, rids in conn.execute(
        f"SELECT case_id, group_concat(release_id) FROM case_releases {sub} GROUP BY case_id", params
    ):
        releases[cid] = sorted(int(r) for r in rids.split(","))
    order = {s: i for i, s in enumerate(STAGES)}
    for cid, stage, filed_at, ref, note in conn.execute(
        f"SELECT case_id, stage, filed_at, reference, note FROM filings {sub}", params
    ):
        filings.setdefault(cid, []).append(Filing(cid, Stage(stage), filed_at, ref, note))
    return [
        Case(
            id=r[0],
            product_id=r[1],
            product=r[2],
            advisory_id=r[3],
            aware_at=r[4],
            actively_exploited=bool(r[5]),
            status=r[6],
            created=r[7],
            severity=r[8],
            summary=r[9],
            components=tuple(_loads(r[10], [])),
            release_ids=tuple(releases.get(r[0], ())),
            fixing_release_id=r[11],
            fix_available_at=r[12],
            filings=tuple(sorted(filings.get(r[0], ()), key=lambda f: order[f.stage])),
        )
        for r in rows
    ]


def get_case(db: sqlite_utils.Database, case_id: int) -> Case:
    found = list_cases(db, case_id=case_id)
    if not found:
        raise LedgerError(f"no case {case_id}; see `cra-fw cases`")
    return found[0]


def file_report(
    db: sqlite_utils.Database,
    case_id: int,
    stage: Stage | str,
    *,
    filed_at: datetime,
    reference: str = "",
    note: str = "",
) -> Case:
    """Record that a report was sent; the final report closes the case."""
    try:
        stage = Stage(stage)
    except ValueError:
        raise LedgerError(f"unknown stage {stage!r}; use early-warning, notification or final") from None
    with transaction(db):
        case = get_case(db, case_id)
        if any(f.stage == stage for f in case.filings):
            raise LedgerError(f"the {stage} report of case {case_id} is already recorded as filed")
        if stage == Stage.FINAL and not case.fix_available_at:
            raise LedgerError(
                f"case {case_id} has no fix yet: record a fixing release (`cra-fw release add`) "
                f"or a mitigation (`cra-fw case fix {case_id} --at TIME`) first"
            )
        db.conn.execute(
            "INSERT INTO filings (case_id, stage, filed_at, reference, note) VALUES (?,?,?,?,?)",
            (case_id, str(stage), format_utc(filed_at), reference, note),
        )
        if stage == Stage.FINAL:
            db.conn.execute("UPDATE cases SET status = 'closed' WHERE id = ?", (case_id,))
    return get_case(db, case_id)


def set_fix(db: sqlite_utils.Database, case_id: int, at: datetime, release: Release | None = None) -> Case:
    """Record that a corrective or mitigating measure is available (starts the final-report clock)."""
    with transaction(db):
        case = get_case(db, case_id)
        if release is not None and release.product_id != case.product_id:
            raise LedgerError(f"{release.label} is not a release of {case.product}")
        db.conn.execute(
            "UPDATE cases SET fix_available_at = ?, fixing_release_id = ? WHERE id = ?",
            (format_utc(at), release.id if release else None, case_id),
        )
    return get_case(db, case_id)


def sync_cases(db: sqlite_utils.Database, now: datetime, *, product_id: int | None = None) -> list[int]:
    """Open a case per (product, actively exploited advisory) affecting a release on the market.

    Newly affected releases are linked to the existing open case.  Returns the new case ids.
    """
    conn = db.conn
    extra, params = ("AND r.product_id = ?", (product_id,)) if product_id is not None else ("", ())
    stamp = format_utc(now)
    rows = conn.execute(
        "SELECT r.product_id, r.id, v.advisory_id, v.severity, v.summary, c.name || '@' || c.version "
        "FROM component_vulns v JOIN release_components rc ON rc.component_id = v.component_id "
        "JOIN releases r ON r.id = rc.release_id JOIN components c ON c.id = v.component_id "
        "WHERE v.kev = 1 AND r.on_market_since != '' AND r.on_market_since <= ? AND r.withdrawn_at = '' "
        f"{extra} ORDER BY r.product_id, v.advisory_id, r.id",
        (stamp, *params),
    ).fetchall()
    grouped: dict[tuple[int, str], dict] = {}
    for pid, rid, advisory, severity, summary, comp in rows:
        entry = grouped.setdefault(
            (pid, advisory),
            {"releases": set(), "components": set(), "severity": severity, "summary": summary},
        )
        entry["releases"].add(rid)
        entry["components"].add(comp)
    if not grouped:
        return []
    existing = {
        (r[1], r[2]): (r[0], r[3])
        for r in conn.execute("SELECT id, product_id, advisory_id, status FROM cases")
    }
    opened: list[int] = []
    with transaction(db):
        for (pid, advisory), entry in sorted(grouped.items()):
            found = existing.get((pid, advisory))
            if found is None:
                cur = conn.execute(
                    "INSERT INTO cases (product_id, advisory_id, aware_at, actively_exploited, status, created, "
                    "severity, summary, components) VALUES (?,?,?,1,'open',?,?,?,?)",
                    (
                        pid,
                        advisory,
                        stamp,
                        stamp,
                        entry["severity"],
                        entry["summary"],
                        json.dumps(sorted(entry["components"])),
                    ),
                )
                case_id = int(cur.lastrowid)
                opened.append(case_id)
            else:
                case_id, status = found
                if status != "open":
                    continue
                old = conn.execute("SELECT components FROM cases WHERE id = ?", (case_id,)).fetchone()[0]
                merged = sorted(set(_loads(old, [])) | entry["components"])
                conn.execute("UPDATE cases SET components = ? WHERE id = ?", (json.dumps(merged), case_id))
            conn.executemany(
                "INSERT OR IGNORE INTO case_releases (case_id, release_id) VALUES (?, ?)",
                [(case_id, rid) for rid in sorted(entry["releases"])],
            )
    return opened


def detect_fixes(db: sqlite_utils.Database, now: datetime, *, product_id: int | None = None) -> list[int]:
    """Give open cases without a fix their fixing release, when one is recorded.

    A fixing release is a later release of the same product, on the market, with
    identified components, none of which matches the case's advisory.  The final-report clock
    starts when it became available (not before the manufacturer was aware).
    """
    conn = db.conn
    fixed: list[int] = []
    open_cases = [
        c
        for c in list_cases(db)
        if c.status == "open"
        and c.fix_available_at == ""
        and (product_id is None or c.product_id == product_id)
    ]
    if not open_cases:
        return fixed
    stamp = format_utc(now)
    with transaction(db):
        for case in open_cases:
            affected = set(case.release_ids)
            if not affected:
                continue
            marks = ",".join("?" * len(affected))
            latest = conn.execute(
                f"SELECT MAX(released_at || printf('%012d', id)) FROM releases WHERE id IN ({marks})",
                tuple(affected),
            ).fetchone()[0]
            candidates = conn.execute(
                "SELECT id, released_at FROM releases WHERE product_id = ? AND on_market_since != '' "
                "AND on_market_since <= ? AND withdrawn_at = '' AND released_at || printf('%012d', id) > ? "
                "ORDER BY released_at, id",
                (case.product_id, stamp, latest),
            ).fetchall()
            for rid, released_at in candidates:
                if (
                    conn.execute(
                        "SELECT 1 FROM release_components WHERE release_id = ? LIMIT 1", (rid,)
                    ).fetchone()
                    is None
                ):
                    continue  # nothing identified in it: no evidence that it fixes anything
                hit = conn.execute(
                    "SELECT 1 FROM release_components rc JOIN component_vulns v ON v.component_id = rc.component_id "
                    "WHERE rc.release_id = ? AND v.advisory_id = ? LIMIT 1",
                    (rid, case.advisory_id),
                ).fetchone()
                if hit:
                    continue
                available = max(parse_utc(released_at), parse_utc(case.aware_at))
                conn.execute(
                    "UPDATE cases SET fixing_release_id = ?, fix_available_at = ? WHERE id = ?",
                    (rid, format_utc(available), case.id),
                )
                fixed.append(case.id)
                break
    return fixed
