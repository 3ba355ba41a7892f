"""Feed tables in the shared SQLite database (namespace ``feeds``).

Advisories from every source live in ``advisories``; their version ranges in
``cpe_match`` (NVD) and ``osv_affected`` (OSV), indexed by vendor/product and
package name so matching one component is one indexed query.  ``feed_meta``
records each feed's age.  Triage decisions live under namespace ``triage``
(see :mod:`cra_fw.vulns.triage`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from cra_fw.db import open_db, register_migrations, transaction
from cra_fw.vulns.versions import sortable

NAMESPACES = ["feeds", "triage"]


def _feeds_v1(db: sqlite_utils.Database) -> None:
    db["feed_meta"].create(
        {"name": str, "imported_at": str, "feed_date": str, "records": int, "source": str},
        pk="name",
    )
    db["advisories"].create(
        {
            "id": str,
            "source": str,
            "published": str,
            "modified": str,
            "summary": str,
            "cvss31_vector": str,
            "cvss31_score": float,
            "cvss4_vector": str,
            "cvss4_score": float,
            "cvss2_score": float,
            "severity": str,
            "aliases": str,
            "withdrawn": int,
        },
        pk=("id", "source"),
    )
    db["cpe_match"].create(
        {
            "advisory_id": str,
            "part": str,
            "vendor": str,
            "product": str,
            "version": str,
            "update_": str,
            "edition": str,
            "language": str,
            "sw_edition": str,
            "target_sw": str,
            "target_hw": str,
            "other": str,
            "start_incl": str,
            "start_excl": str,
            "end_incl": str,
            "end_excl": str,
        }
    )
    db["cpe_match"].create_index(["vendor", "product"])
    db["cpe_match"].create_index(["advisory_id"])
    db["osv_affected"].create(
        {
            "advisory_id": str,
            "ecosystem": str,
            "name": str,
            "range_type": str,
            "introduced": str,
            "fixed": str,
            "last_affected": str,
            "limit_": str,
            "versions": str,
        }
    )
    db["osv_affected"].create_index(["name"])
    db["osv_affected"].create_index(["advisory_id"])
    db["kev"].create(
        {
            "cve_id": str,
            "vendor_project": str,
            "product": str,
            "name": str,
            "date_added": str,
            "due_date": str,
            "ransomware": str,
            "required_action": str,
        },
        pk="cve_id",
    )
    db["epss"].create({"cve_id": str, "score": float, "percentile": float, "date": str}, pk="cve_id")


def _feeds_v2(db: sqlite_utils.Database) -> None:
    """Sortable version keys (versions.sortable) so SQLite filters ranges itself."""
    table = db["cpe_match"]
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
        [(*_range_keys_of(r[1], r[2], r[3], r[4], r[5], r[6]), r[0]) for r in rows],
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


def _triage_v1(db: sqlite_utils.Database) -> None:
    db["triage"].create(
        {
            "advisory_id": str,
            "component": str,
            "state": str,
            "justification": str,
            "response": str,
            "detail": str,
            "source": str,
            "updated": str,
        },
        pk=("advisory_id", "component"),
    )


register_migrations("feeds", [_feeds_v1, _feeds_v2, _feeds_v3])
register_migrations("triage", [_triage_v1])


def open_feed_db(path: Path | str | None = None) -> sqlite_utils.Database:
    """Open the shared database with the feed and triage tables in place."""
    db = open_db(path, NAMESPACES)
    # bulk imports: WAL + NORMAL is durable enough for re-importable feed data
    db.conn.execute("PRAGMA synchronous=NORMAL")
    return db


@dataclass(frozen=True)
class AdvisoryRow:
    """One advisory as stored (NVD CVE or OSV record)."""

    id: str
    source: str  # nvd | osv
    published: str = ""
    modified: str = ""
    summary: str = ""
    cvss31_vector: str = ""
    cvss31_score: float | None = None
    cvss4_vector: str = ""
    cvss4_score: float | None = None
    cvss2_score: float | None = None
    severity: str = ""  # textual severity from the source when it has no CVSS score
    aliases: tuple[str, ...] = ()
    withdrawn: bool = False


@dataclass(frozen=True)
class CpeMatchRow:
    advisory_id: str
    part: str
    vendor: str
    product: str
    version: str
    update: str
    edition: str
    language: str
    sw_edition: str
    target_sw: str
    target_hw: str
    other: str
    start_incl: str = ""
    start_excl: str = ""
    end_incl: str = ""
    end_excl: str = ""


@dataclass(frozen=True)
class OsvRangeRow:
    advisory_id: str
    ecosystem: str
    name: str
    range_type: str  # ECOSYSTEM | SEMVER | VERSIONS
    introduced: str = ""
    fixed: str = ""
    last_affected: str = ""
    limit: str = ""
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedAdvisory:
    """An advisory with its ranges, as an importer yields it."""

    advisory: AdvisoryRow
    cpe_ranges: tuple[CpeMatchRow, ...] = ()
    osv_ranges: tuple[OsvRangeRow, ...] = ()


@dataclass(frozen=True)
class ImportStats:
    """What one import did."""

    feed: str
    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    feed_date: str = ""
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        return (
            f"{self.feed}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed (feed date {self.feed_date or 'unknown'}) from {self.source}"
        )


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


_ADV_SQL = (
    "INSERT OR REPLACE INTO advisories (id, source, published, modified, summary, cvss31_vector, "
    "cvss31_score, cvss4_vector, cvss4_score, cvss2_score, severity, aliases, withdrawn) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_CPE_SQL = (
    "INSERT INTO cpe_match (advisory_id, part, vendor, product, version, update_, edition, language, "
    "sw_edition, target_sw, target_hw, other, start_incl, start_excl, end_incl, end_excl, "
    "exact_key, start_key, start_key_incl, end_key, end_key_incl) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _range_keys_of(
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


def _range_keys(r: CpeMatchRow) -> tuple:
    return _range_keys_of(r.version, r.update, r.start_incl, r.start_excl, r.end_incl, r.end_excl)


_OSV_SQL = (
    "INSERT INTO osv_affected (advisory_id, ecosystem, name, range_type, introduced, fixed, "
    "last_affected, limit_, versions) VALUES (?,?,?,?,?,?,?,?,?)"
)


class AdvisoryWriter:
    """Incremental writer: an advisory is rewritten only when its modified date moved on.

    Use as a context manager; rows are flushed in batches inside one transaction each.
    """

    BATCH = 5000

    def __init__(self, db: sqlite_utils.Database, source: str, feed: str, origin: str) -> None:
        self.db = db
        self.source = source
        self.feed = feed
        self.origin = origin
        rows = db.conn.execute("SELECT id, modified FROM advisories WHERE source = ?", (source,))
        self._known: dict[str, str] = dict(rows.fetchall())
        self._adv: list[tuple] = []
        self._cpe: list[tuple] = []
        self._osv: list[tuple] = []
        self._delete: list[str] = []
        self.added = self.updated = self.unchanged = self.removed = 0
        self.newest = ""
        self.errors: list[str] = []

    def __enter__(self) -> AdvisoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()

    def add(self, parsed: ParsedAdvisory) -> None:
        adv = parsed.advisory
        if adv.modified > self.newest:
            self.newest = adv.modified
        old = self._known.get(adv.id)
        if old is not None and old >= adv.modified and not adv.withdrawn:
            self.unchanged += 1
            return
        if old is not None:
            self._delete.append(adv.id)
        if adv.withdrawn:
            if old is not None:
                self.removed += 1
                self._known.pop(adv.id, None)
            return
        if old is None:
            self.added += 1
        else:
            self.updated += 1
        self._known[adv.id] = adv.modified
        self._adv.append(
            (
                adv.id,
                adv.source,
                adv.published,
                adv.modified,
                adv.summary[:2000],
                adv.cvss31_vector,
                adv.cvss31_score,
                adv.cvss4_vector,
                adv.cvss4_score,
                adv.cvss2_score,
                adv.severity,
                json.dumps(list(adv.aliases)),
                0,
            )
        )
        for r in parsed.cpe_ranges:
            self._cpe.append(
                (
                    r.advisory_id,
                    r.part,
                    r.vendor,
                    r.product,
                    r.version,
                    r.update,
                    r.edition,
                    r.language,
                    r.sw_edition,
                    r.target_sw,
                    r.target_hw,
                    r.other,
                    r.start_incl,
                    r.start_excl,
                    r.end_incl,
                    r.end_excl,
                    *_range_keys(r),
                )
            )
        for o in parsed.osv_ranges:
            self._osv.append(
                (
                    o.advisory_id,
                    o.ecosystem,
                    o.name,
                    o.range_type,
                    o.introduced,
                    o.fixed,
                    o.last_affected,
                    o.limit,
                    json.dumps(list(o.versions)) if o.versions else "",
                )
            )
        if len(self._adv) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if not (self._adv or self._delete):
            return
        conn: sqlite3.Connection = self.db.conn
        with transaction(self.db):
            if self._delete:
                ids = [(i,) for i in self._delete]
                # each source owns one range table; OSV may reuse a CVE id as its own
                table = "cpe_match" if self.source == "nvd" else "osv_affected"
                conn.executemany(f"DELETE FROM {table} WHERE advisory_id = ?", ids)
                conn.executemany(
                    "DELETE FROM advisories WHERE id = ? AND source = ?",
                    [(i, self.source) for i in self._delete],
                )
            conn.executemany(_ADV_SQL, self._adv)
            if self._cpe:
                conn.executemany(_CPE_SQL, self._cpe)
            if self._osv:
                conn.executemany(_OSV_SQL, self._osv)
        self._adv, self._cpe, self._osv, self._delete = [], [], [], []

    def stats(self) -> ImportStats:
        return ImportStats(
            self.feed,
            self.origin,
            self.added,
            self.updated,
            self.unchanged,
            self.removed,
            self.newest,
            tuple(self.errors),
        )


def record_feed(db: sqlite_utils.Database, name: str, feed_date: str, source: str) -> None:
    """Remember when a feed was imported and how fresh its newest data is."""
    if name in ("nvd", "osv"):
        src = name
        row = db.conn.execute(
            "SELECT COUNT(*), MAX(modified) FROM advisories WHERE source = ?", (src,)
        ).fetchone()
        count, newest = row[0], row[1] or ""
        feed_date = max(feed_date or "", newest)
    elif name == "kev":
        count = db.conn.execute("SELECT COUNT(*) FROM kev").fetchone()[0]
    else:
        count = db.conn.execute("SELECT COUNT(*) FROM epss").fetchone()[0]
    old = db.conn.execute("SELECT feed_date FROM feed_meta WHERE name = ?", (name,)).fetchone()
    if old and (old[0] or "") > (feed_date or ""):
        feed_date = old[0]
    with transaction(db):
        db["feed_meta"].upsert(
            {
                "name": name,
                "imported_at": now_iso(),
                "feed_date": feed_date,
                "records": count,
                "source": source,
            },
            pk="name",
        )


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


def feed_status(db: sqlite_utils.Database) -> list[FeedStatus]:
    rows = db.conn.execute(
        "SELECT name, records, feed_date, imported_at, source FROM feed_meta ORDER BY name"
    ).fetchall()
    return [FeedStatus(r[0], r[1] or 0, r[2] or "", r[3] or "", r[4] or "") for r in rows]


def replace_rows(db: sqlite_utils.Database, table: str, rows: Iterable[dict], pk: str) -> int:
    """Upsert many rows into a small keyed table (KEV, EPSS) in one transaction."""
    count = 0
    with transaction(db):
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            count += 1
            if len(batch) >= 10000:
                db[table].upsert_all(batch, pk=pk)
                batch = []
        if batch:
            db[table].upsert_all(batch, pk=pk)
    return count
