"""Writing the feed tables (schema and status: :mod:`cra_fw.feeddb`).

Importers parse a feed into :class:`ParsedAdvisory` records; the
:class:`AdvisoryWriter` upserts them, and :func:`record_feed` notes the
feed's date in ``feed_meta``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from cra_fw.db import transaction
from cra_fw.feeddb import now_iso, range_keys_of


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


def _range_keys(r: CpeMatchRow) -> tuple:
    return range_keys_of(r.version, r.update, r.start_incl, r.start_excl, r.end_incl, r.end_excl)


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
