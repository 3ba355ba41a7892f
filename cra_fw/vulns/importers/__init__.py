"""Feed importers: detect a file's format and load it into the feed tables.

Formats: NVD CVE JSON 2.0 (feed files or API pages, gzip or plain), OSV (one
record, a folder of records, or an ecosystem ``all.zip``), CISA KEV JSON,
and EPSS CSV (gzip or plain).  Imports are incremental: an advisory is only
rewritten when its modified date is newer than the stored one; KEV and EPSS
are skipped when the stored catalog is at least as new.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cra_fw import safejson
from cra_fw.errors import FeedError
from cra_fw.vulns.importers.epss import iter_epss
from cra_fw.vulns.importers.kev import kev_rows
from cra_fw.vulns.importers.nvd import iter_nvd
from cra_fw.vulns.importers.osv import parse_osv
from cra_fw.vulns.store import AdvisoryWriter, ImportStats, ParsedAdvisory, record_feed, replace_rows

if TYPE_CHECKING:
    import sqlite_utils

MAX_RECORD_BYTES = 64 * 1024 * 1024  # one OSV record / KEV catalog read into memory
MAX_ZIP_MEMBERS = 2_000_000


def _open_binary(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _text(stream: IO[bytes]) -> IO[str]:
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


def sniff(path: Path) -> str:
    """The feed kind of a file or folder: nvd, osv, osv-zip, osv-dir, cve5, cve5-dir, kev or epss."""
    if path.is_dir():
        first = next(iter(sorted(path.rglob("*.json"))), None)
        if first is not None and first.stat().st_size < MAX_RECORD_BYTES:
            if b'"cveMetadata"' in first.read_bytes()[:65536]:
                return "cve5-dir"
        return "osv-dir"
    with path.open("rb") as fh:
        if fh.read(4) == b"PK\x03\x04":
            return "osv-zip"
    try:
        with _open_binary(path) as fh:
            head = fh.read(65536).decode("utf-8", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise FeedError(f"cannot read {path}: {exc}") from exc
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith("#model_version") or stripped.lower().startswith("cve,epss"):
        return "epss"
    if stripped.startswith("{"):
        if '"cveID"' in head or '"catalogVersion"' in head:
            return "kev"
        if '"cveMetadata"' in head and '"containers"' in head:
            return "cve5"
        if '"CVE_Items"' in head:
            raise FeedError(
                f"{path} is an NVD 1.1 feed, which NVD retired; download the 2.0 feeds "
                "(nvdcve-2.0-*.json.gz) or use `cra-fw db update`"
            )
        if '"NVD_CVE"' in head or '"cve"' in head:
            return "nvd"
        if '"affected"' in head or ('"modified"' in head and '"id"' in head):
            return "osv"
    raise FeedError(
        f"{path}: not a recognised feed (NVD CVE JSON 2.0, OSV JSON/zip/folder, CISA KEV JSON or EPSS CSV)"
    )


def _load_json(data: bytes, name: str) -> dict:
    try:
        doc = safejson.loads(data)
    except ValueError as exc:  # JSON, UTF-8, nesting
        raise FeedError(f"{name}: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise FeedError(f"{name}: expected a JSON object")
    return doc


def _iter_osv(path: Path, kind: str, errors: list[str]) -> Iterator[ParsedAdvisory]:
    def one(data: bytes, name: str) -> ParsedAdvisory | None:
        try:
            return parse_osv(_load_json(data, name))
        except (FeedError, KeyError, TypeError, AttributeError, ValueError) as exc:
            if len(errors) < 20:
                errors.append(f"skipped {name}: {exc}")
            return None

    if kind == "osv-zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = zf.infolist()
                if len(members) > MAX_ZIP_MEMBERS:
                    raise FeedError(f"{path}: {len(members)} members is over the limit {MAX_ZIP_MEMBERS}")
                for info in members:
                    if info.is_dir() or not info.filename.endswith(".json"):
                        continue
                    if info.file_size > MAX_RECORD_BYTES:
                        errors.append(f"skipped {info.filename}: larger than {MAX_RECORD_BYTES} bytes")
                        continue
                    parsed = one(zf.read(info), info.filename)
                    if parsed:
                        yield parsed
        except zipfile.BadZipFile as exc:
            raise FeedError(f"{path}: broken zip file ({exc}); download it again") from exc
        return
    files = sorted(path.rglob("*.json")) if kind == "osv-dir" else [path]
    for file in files:
        if file.is_symlink() or file.stat().st_size > MAX_RECORD_BYTES:
            continue
        with _open_binary(file) as fh:
            parsed = one(fh.read(MAX_RECORD_BYTES + 1), str(file))
        if parsed:
            yield parsed


def import_path(db: sqlite_utils.Database, path: Path | str, origin: str = "") -> ImportStats:
    """Import one feed file or OSV folder; returns what changed.  Raises FeedError."""
    try:
        return _import_path(db, path, origin)
    except sqlite3.Error as exc:
        raise FeedError(
            f"database error while importing {path}: {exc}; check the --db file "
            "(or move it away and import again)"
        ) from exc


def _import_path(db: sqlite_utils.Database, path: Path | str, origin: str = "") -> ImportStats:
    path = Path(path)
    if not path.exists():
        raise FeedError(f"{path}: no such file or folder")
    kind = sniff(path)
    origin = origin or str(path)
    errors: list[str] = []
    if kind == "nvd":
        try:
            with _text(_open_binary(path)) as fh, AdvisoryWriter(db, "nvd", "nvd", origin) as writer:
                for parsed in iter_nvd(fh, errors):
                    writer.add(parsed)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise FeedError(
                f"{path}: cannot read ({exc}); the file may be truncated, download it again"
            ) from exc
        writer.errors.extend(errors)
        record_feed(db, "nvd", writer.newest, origin)
        return writer.stats()
    if kind.startswith("cve5"):
        return _import_cve5(db, path, kind, origin)
    if kind.startswith("osv"):
        with AdvisoryWriter(db, "osv", "osv", origin) as writer:
            for parsed in _iter_osv(path, kind, errors):
                writer.add(parsed)
        writer.errors.extend(errors)
        record_feed(db, "osv", writer.newest, origin)
        return writer.stats()
    if kind == "kev":
        with _open_binary(path) as fh:
            doc = _load_json(fh.read(MAX_RECORD_BYTES), str(path))
        released = str(doc.get("dateReleased") or doc.get("catalogVersion") or "")
        old = db.conn.execute("SELECT feed_date FROM feed_meta WHERE name='kev'").fetchone()
        if old and old[0] and released and old[0] >= released:
            return ImportStats(
                "kev", origin, unchanged=len(doc.get("vulnerabilities") or []), feed_date=old[0]
            )
        rows = kev_rows(doc)
        known = {r[0] for r in db.conn.execute("SELECT cve_id FROM kev")}
        replace_rows(db, "kev", rows, "cve_id")
        added = sum(1 for r in rows if r["cve_id"] not in known)
        record_feed(db, "kev", released, origin)
        return ImportStats("kev", origin, added=added, updated=len(rows) - added, feed_date=released)
    # epss
    meta: dict[str, str] = {}
    with _text(_open_binary(path)) as fh:
        rows_iter = iter_epss(fh, meta)
        first = next(rows_iter, None)
        score_date = meta.get("score_date", "")
        old = db.conn.execute("SELECT feed_date FROM feed_meta WHERE name='epss'").fetchone()
        if old and old[0] and score_date and old[0] >= score_date:
            return ImportStats("epss", origin, feed_date=old[0])
        count = replace_rows(db, "epss", ([first] if first else []) + list(rows_iter), "cve_id")
    record_feed(db, "epss", score_date, origin)
    return ImportStats("epss", origin, updated=count, feed_date=score_date)


def _import_cve5(db: sqlite_utils.Database, path: Path, kind: str, origin: str) -> ImportStats:
    """CVE JSON 5 records (cvelistV5): the files each CVE's fix touched (``programFiles``)."""
    from cra_fw.feeddb import now_iso
    from cra_fw.vulns.kernel import cve5_program_files, store_program_files

    files = sorted(path.rglob("*.json")) if kind == "cve5-dir" else [path]
    rows: list[tuple[str, str]] = []
    errors: list[str] = []
    newest = ""
    records = 0
    for file in files:
        if file.is_symlink() or file.stat().st_size > MAX_RECORD_BYTES:
            continue
        try:
            doc = _load_json(file.read_bytes(), str(file))
        except FeedError as exc:
            if len(errors) < 20:
                errors.append(f"skipped {file}: {exc}")
            continue
        records += 1
        rows.extend(cve5_program_files(doc))
        updated = str((doc.get("cveMetadata") or {}).get("dateUpdated", ""))
        newest = max(newest, updated)
    store_program_files(db, rows)
    count = db.conn.execute("SELECT COUNT(DISTINCT advisory_id) FROM cve_files").fetchone()[0]
    db.table("feed_meta").upsert(
        {"name": "cve5", "imported_at": now_iso(), "feed_date": newest, "records": count, "source": origin},
        pk="name",
    )
    return ImportStats("cve5", origin, added=records, feed_date=newest, errors=tuple(errors))
