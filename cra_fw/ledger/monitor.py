"""Re-match every stored SBOM against the current feeds, without re-unpacking anything.

Components are shared between releases in the ledger, so each distinct
component is matched once however many releases contain it; changes are then
expanded to releases with one indexed join.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from cra_fw.db import transaction
from cra_fw.errors import LedgerError
from cra_fw.ledger import feeds
from cra_fw.ledger.clocks import format_utc
from cra_fw.ledger.store import _COMPONENT_COLS, _component_row, detect_fixes, store_matches, sync_cases
from cra_fw.records import AssessmentStatus, Component

NEW = "new"  # a new advisory matches a component
NOW_EXPLOITED = "now-exploited"  # an advisory already matched became KEV-listed
GONE = "gone"  # an advisory no longer matches (withdrawn, range corrected, triaged away)


@dataclass(frozen=True)
class Change:
    kind: str
    advisory_id: str
    component: str  # name@version
    severity: str
    kev: bool
    releases: int  # how many recorded releases contain the component
    release_labels: tuple[str, ...] = ()  # the first few, PRODUCT@VERSION


@dataclass(frozen=True)
class MonitorResult:
    run_id: int
    run_at: str
    components_matched: int
    changes: tuple[Change, ...]
    cases_opened: tuple[int, ...]
    cases_fixed: tuple[int, ...]
    feed_ages: dict[str, float]
    coverage: tuple[str, ...] = ()  # what the feeds could only partly judge (stale, partial NVD, no KEV)


_LABELS = 5
LABELLED_CHANGES = 200  # changes listed with release names; the rest with counts only


def _labels(db: sqlite_utils.Database, component_id: int) -> tuple[str, ...]:
    rows = db.conn.execute(
        "SELECT p.name || '@' || r.version FROM release_components rc JOIN releases r ON r.id = rc.release_id "
        "JOIN products p ON p.id = r.product_id WHERE rc.component_id = ? ORDER BY p.name, r.released_at, r.id "
        f"LIMIT {_LABELS}",
        (component_id,),
    ).fetchall()
    return tuple(r[0] for r in rows)


def _release_counts(db: sqlite_utils.Database, component_ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for start in range(0, len(component_ids), 500):
        chunk = component_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        counts.update(
            db.conn.execute(
                f"SELECT component_id, COUNT(*) FROM release_components WHERE component_id IN ({marks}) "
                "GROUP BY component_id",
                chunk,
            ).fetchall()
        )
    return counts


MatchMany = Callable[[list[Component]], list[list[feeds.Match]]]


def run_monitor(
    db: sqlite_utils.Database, now: datetime, match_many: MatchMany | None = None
) -> MonitorResult:
    """Re-match all recorded components, store what changed, open cases for exploited ones.

    ``match_many`` matches a list of components at once (e.g. in a Dask pool, see
    ``cra_fw.batch.pool``); by default they are matched here, one by one.
    """
    vulns, _kev = feeds.assess(db, now)
    if vulns.status == AssessmentStatus.NOT_ASSESSED:
        # matching against nothing would report "0 changes": say why nothing can be monitored
        raise LedgerError(f"cannot monitor: {vulns.reason}; then run `cra-fw monitor` again")
    conn = db.conn
    components = [
        _component_row(r)
        for r in conn.execute(
            f"SELECT {_COMPONENT_COLS} FROM components c WHERE EXISTS "
            "(SELECT 1 FROM release_components rc WHERE rc.component_id = c.id) ORDER BY c.id"
        )
    ]
    old: dict[int, dict[str, tuple]] = {}
    for cid, adv, sev, kev, kev_date, fixed, summary, score in conn.execute(
        "SELECT component_id, advisory_id, severity, kev, kev_date_added, fixed_version, summary, cvss_score "
        "FROM component_vulns"
    ):
        old.setdefault(cid, {})[adv] = (sev, bool(kev), kev_date, fixed, summary, score)
    new: dict[int, list[feeds.Match]] = {}
    wanted = [c.to_component() for c in components]
    found = match_many(wanted) if match_many is not None else feeds.match_each(wanted, db)
    for comp, matches in zip(components, found, strict=True):
        new[comp.id] = matches
    by_id = {c.id: c for c in components}
    raw_changes: list[tuple[str, str, int, str, bool]] = []
    rewrite: list[int] = []
    for cid, matches in new.items():
        before = old.get(cid, {})
        after = {
            m.advisory_id: (m.severity, m.kev, m.kev_date_added, m.fixed_version, m.summary, m.cvss_score)
            for m in matches
        }
        if before == after:
            continue
        rewrite.append(cid)
        for adv, fields in after.items():
            if adv not in before:
                raw_changes.append((NEW, adv, cid, fields[0], fields[1]))
            elif fields[1] and not before[adv][1]:
                raw_changes.append((NOW_EXPLOITED, adv, cid, fields[0], True))
        for adv, fields in before.items():
            if adv not in after:
                raw_changes.append((GONE, adv, cid, fields[0], fields[1]))
    counts = _release_counts(db, sorted({c[2] for c in raw_changes}))
    ages = feeds.feed_ages(db, now)
    stamp = format_utc(now)
    with transaction(db):
        for cid in rewrite:
            store_matches(db, cid, new[cid], now)
        cur = conn.execute(
            "INSERT INTO monitor_runs (run_at, feed_ages, components_matched, added, removed, cases_opened) "
            "VALUES (?,?,?,?,?,0)",
            (
                stamp,
                json.dumps(ages, sort_keys=True),
                len(components),
                sum(1 for c in raw_changes if c[0] != GONE),
                sum(1 for c in raw_changes if c[0] == GONE),
            ),
        )
        run_id = int(cur.lastrowid)
        conn.executemany(
            "INSERT OR IGNORE INTO monitor_changes (run_id, kind, advisory_id, component_id, releases) "
            "VALUES (?,?,?,?,?)",
            [(run_id, k, adv, cid, counts.get(cid, 0)) for k, adv, cid, _s, _k in raw_changes],
        )
        opened = sync_cases(db, now)
        fixed = detect_fixes(db, now)
        conn.execute("UPDATE monitor_runs SET cases_opened = ? WHERE id = ?", (len(opened), run_id))
    order = {NOW_EXPLOITED: 0, NEW: 1, GONE: 2}
    raw_changes.sort(key=lambda c: (order[c[0]], not c[4], c[1], by_id[c[2]].key))
    changes = tuple(
        Change(
            kind,
            adv,
            by_id[cid].key,
            sev,
            kev,
            counts.get(cid, 0),
            _labels(db, cid) if i < LABELLED_CHANGES else (),
        )
        for i, (kind, adv, cid, sev, kev) in enumerate(raw_changes)
    )
    coverage = tuple(
        f"{a.topic} only partly assessed: {a.reason}"
        if a.status == AssessmentStatus.PARTIAL
        else f"{a.topic} not assessed: {a.reason}"
        for a in feeds.assess(db, now)
        if a.status != AssessmentStatus.COMPLETE
    )
    return MonitorResult(run_id, stamp, len(components), changes, tuple(opened), tuple(fixed), ages, coverage)
