"""The feed database's schema and status, shared by the vulns stage, the ledger and evidence packs.

Advisories from every source live in ``advisories``; their version ranges in
``cpe_match`` (NVD) and ``osv_affected`` (OSV), indexed by vendor/product and
package name so matching one component is one indexed query.  ``feed_meta``
records each feed's age.  Triage decisions live under namespace ``triage``
(see :mod:`cra_fw.vulns.triage`).  Writing advisories is the vulns stage's
job (:mod:`cra_fw.vulns.store`); this module only creates and reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from cra_fw.db import open_db, register_migrations
from cra_fw.records import Assessment, AssessmentStatus
from cra_fw.versions import sortable


def range_keys_of(
    version: str, update: str, start_incl: str, start_excl: str, end_incl: str, end_excl: str
) -> tuple:
    """(exact_key, start_key, start_incl, end_key, end_incl) for one cpeMatch row."""
    exact = None
    if version not in ("*", "", "-"):
        exact = sortable(version if update in ("*", "", "-") else f"{version}-{update}")
    start = start_incl or start_excl
    end = end_incl or end_excl
    return (
        exact,
        sortable(start) if start else None,
        1 if start_incl else 0,
        sortable(end) if end else None,
        1 if end_incl else 0,
    )


NAMESPACES = ["feeds", "triage"]


def columns(spec: str) -> dict[str, type]:
    """Columns from ``"name name:int name:float ..."`` (TEXT unless a type follows), in order."""
    kinds = {"str": str, "int": int, "float": float}
    out: dict[str, type] = {}
    for item in spec.split():
        name, _, kind = item.partition(":")
        out[name] = kinds[kind or "str"]
    return out


# The first schema of the feed tables: (table, columns, primary key, indexes).
_V1_TABLES: tuple[tuple[str, str, str | tuple[str, ...] | None, tuple[tuple[str, ...], ...]], ...] = (
    ("feed_meta", "name imported_at feed_date records:int source", "name", ()),
    (
        "advisories",
        "id source published modified summary cvss31_vector cvss31_score:float cvss4_vector "
        "cvss4_score:float cvss2_score:float severity aliases withdrawn:int",
        ("id", "source"),
        (),
    ),
    (
        "cpe_match",
        "advisory_id part vendor product version update_ edition language sw_edition target_sw "
        "target_hw other start_incl start_excl end_incl end_excl",
        None,
        (("vendor", "product"), ("advisory_id",)),
    ),
    (
        "osv_affected",
        "advisory_id ecosystem name range_type introduced fixed last_affected limit_ versions",
        None,
        (("name",), ("advisory_id",)),
    ),
    (
        "kev",
        "cve_id vendor_project product name date_added due_date ransomware required_action",
        "cve_id",
        (),
    ),
    ("epss", "cve_id score:float percentile:float date", "cve_id", ()),
)


def _feeds_v1(db: sqlite_utils.Database) -> None:
    for name, spec, pk, indexes in _V1_TABLES:
        table = db.table(name)
        table.create(columns(spec), pk=pk)
        for index in indexes:
            table.create_index(list(index))


def _feeds_v2(db: sqlite_utils.Database) -> None:
    """Sortable version keys (versions.sortable) so SQLite filters ranges itself."""
    table = db.table("cpe_match")
    for name, kind in (
        ("exact_key", str),
        ("start_key", str),
        ("start_key_incl", int),
        ("end_key", str),
        ("end_key_incl", int),
    ):
        if name not in table.columns_dict:
            table.add_column(name, kind)
    rows = db.conn.execute(
        "SELECT rowid, version, update_, start_incl, start_excl, end_incl, end_excl FROM cpe_match"
    ).fetchall()
    db.conn.executemany(
        "UPDATE cpe_match SET exact_key=?, start_key=?, start_key_incl=?, end_key=?, end_key_incl=? WHERE rowid=?",
        [(*range_keys_of(r[1], r[2], r[3], r[4], r[5], r[6]), r[0]) for r in rows],
    )


def _feeds_v3(db: sqlite_utils.Database) -> None:
    """One covering index for the matcher, replacing the plain (vendor, product) one.

    It holds every column the matcher reads, range keys first: testing a component's version
    against all of a product's ranges is an index-only range scan that never reads the table.
    """
    db.conn.execute("DROP INDEX IF EXISTS idx_cpe_match_range")
    db.conn.execute(
        "CREATE INDEX idx_cpe_match_range ON cpe_match (vendor, product, exact_key, end_key, start_key, "
        "start_key_incl, end_key_incl, advisory_id, part, version, update_, edition, language, sw_edition, "
        "target_sw, target_hw, other, start_incl, start_excl, end_incl, end_excl)"
    )
    db.conn.execute("DROP INDEX IF EXISTS idx_cpe_match_vendor_product")


def _feeds_v4(db: sqlite_utils.Database) -> None:
    """The source files each CVE's fix touched (CVE JSON 5 ``programFiles``: the kernel CNA's records)."""
    db.table("cve_files").create(columns("advisory_id path"), pk=("advisory_id", "path"))


def _triage_v1(db: sqlite_utils.Database) -> None:
    db.table("triage").create(
        columns("advisory_id component state justification response detail source updated"),
        pk=("advisory_id", "component"),
    )


register_migrations("feeds", [_feeds_v1, _feeds_v2, _feeds_v3, _feeds_v4])
register_migrations("triage", [_triage_v1])


def open_feed_db(path: Path | str | None = None, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the shared database with the feed and triage tables in place (``readonly``: as it is)."""
    db = open_db(path, NAMESPACES, readonly=readonly)
    if not readonly:
        # bulk imports: WAL + NORMAL is durable enough for re-importable feed data
        db.conn.execute("PRAGMA synchronous=NORMAL")
    return db


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class FeedStatus:
    """One feed's freshness, as ``db status`` and scans see it."""

    name: str
    records: int
    feed_date: str
    imported_at: str
    source: str

    def age_days(self, now: datetime | None = None) -> float | None:
        stamp = parse_date(self.feed_date) or parse_date(self.imported_at)
        if stamp is None:
            return None
        return ((now or datetime.now(UTC)) - stamp).total_seconds() / 86400.0


def parse_date(text: str) -> datetime | None:
    """ISO date or datetime (with or without zone) to an aware UTC datetime."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        try:
            stamp = datetime.strptime(value[:10], "%Y-%m-%d")
        except ValueError:
            try:
                stamp = datetime.strptime(value[:10], "%Y.%m.%d")
            except ValueError:
                return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp


# NVD's oldest CVEs were published in the 1990s: a database whose oldest NVD record is newer
# than this holds only recent changes (the "modified" feed), not the yearly feeds
NVD_COMPLETE_BEFORE = "2003-01-01"


def assess_feeds(
    db: sqlite_utils.Database, max_age_days: int, now: datetime | None = None
) -> tuple[Assessment, Assessment]:
    """Whether matches against ``db`` can be trusted: (vulnerabilities, kev).

    The one place that decides it, for scans, ``monitor`` and ``release list``: no
    advisory feed is ``not_assessed``; a missing, partial (NVD without its yearly feeds)
    or stale feed is ``partial``; the reason says which and what to run.
    """
    status = {s.name: s for s in feed_status(db)} if "feed_meta" in db.table_names() else {}
    problems: list[str] = []
    if "nvd" not in status and "osv" not in status:
        reason = "no NVD or OSV feed imported: `cra-fw db update` or `cra-fw db import FILE`"
        vulns = Assessment("vulnerabilities", AssessmentStatus.NOT_ASSESSED, reason)
    else:
        if "nvd" not in status:
            problems.append("no NVD feed imported (OSV only)")
        else:
            oldest = db.conn.execute("SELECT MIN(published) FROM advisories WHERE source = 'nvd'").fetchone()[
                0
            ]
            if oldest and oldest[:10] > NVD_COMPLETE_BEFORE:
                problems.append(
                    f"the NVD feed holds only CVEs published since {oldest[:10]} (loaded without "
                    "--full-nvd: `cra-fw db update --full-nvd`)"
                )
        for s in status.values():
            age = s.age_days(now)
            if s.name in ("nvd", "osv") and age is not None and age > max_age_days:
                problems.append(f"the {s.name.upper()} feed is {int(age)} days old (limit {max_age_days})")
        vulns = Assessment(
            "vulnerabilities",
            AssessmentStatus.PARTIAL if problems else AssessmentStatus.COMPLETE,
            "; ".join(problems),
        )
    kev_status = status.get("kev")
    if kev_status is None:
        kev = Assessment(
            "kev", AssessmentStatus.NOT_ASSESSED, "no CISA KEV feed imported: `cra-fw db update`"
        )
    elif vulns.status == AssessmentStatus.NOT_ASSESSED:
        kev = Assessment("kev", AssessmentStatus.NOT_ASSESSED, vulns.reason)
    else:
        age = kev_status.age_days(now)
        stale = age is not None and age > max_age_days
        kev = Assessment(
            "kev",
            AssessmentStatus.PARTIAL if stale else AssessmentStatus.COMPLETE,
            f"the KEV feed is {int(age or 0)} days old (limit {max_age_days})" if stale else "",
        )
    return vulns, kev


def feed_status(db: sqlite_utils.Database) -> list[FeedStatus]:
    rows = db.conn.execute(
        "SELECT name, records, feed_date, imported_at, source FROM feed_meta ORDER BY name"
    ).fetchall()
    return [FeedStatus(r[0], r[1] or 0, r[2] or "", r[3] or "", r[4] or "") for r in rows]
