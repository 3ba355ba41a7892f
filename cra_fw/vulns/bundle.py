"""The whole vulnerability database as one file, for air-gapped CI.

``cra-fw db export FILE`` writes a zip with two members: ``feeds.sqlite`` (the feed tables
and the triage decisions, nothing of the ledger) and ``manifest.json`` (format, cra-fw
version, when, each feed's date, record count and origin, and the SHA-256 of
``feeds.sqlite``).  ``cra-fw db import FILE`` checks the hash and replaces the feed tables
with the bundle's (triage decisions are merged, the bundle's winning), so a CI job without
internet gets the same matches as the machine that downloaded the feeds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from cra_fw.db import transaction
from cra_fw.errors import FeedError
from cra_fw.feeddb import feed_status, now_iso

FORMAT = "cra-fw-feeds"
FORMAT_VERSION = 1
FEED_TABLES = ("advisories", "cpe_match", "osv_affected", "kev", "epss", "cve_files", "feed_meta")
MERGED_TABLES = ("triage",)
MAX_BUNDLE_DB = 8 * 1024 * 1024 * 1024  # bytes of feeds.sqlite accepted on import


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    sha256: str
    feeds: tuple[dict, ...]
    created: str


def is_bundle(path: Path) -> bool:
    """True for a file ``db export`` wrote (a zip holding manifest.json of our format)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if "manifest.json" not in zf.namelist():
                return False
            return json.loads(zf.read("manifest.json")).get("format") == FORMAT
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_db(db: sqlite_utils.Database, out: Path) -> BundleInfo:
    """Write the feed tables and triage decisions of ``db`` to ``out``."""
    from cra_fw import __version__

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="cra-fw-export-") as tmp:
        copy = Path(tmp) / "feeds.sqlite"
        dest = sqlite3.connect(copy)
        try:
            db.conn.backup(dest)
            keep = set(FEED_TABLES) | set(MERGED_TABLES) | {"schema_versions"}
            tables = [r[0] for r in dest.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in tables:
                if name not in keep and not name.startswith("sqlite_"):
                    dest.execute(f'DROP TABLE "{name}"')
            dest.execute("DELETE FROM schema_versions WHERE namespace NOT IN ('feeds', 'triage')")
            dest.commit()
            dest.execute("PRAGMA journal_mode=DELETE")
            dest.execute("VACUUM")
        finally:
            dest.close()
        digest = _sha256(copy)
        feeds = tuple(
            {
                "name": s.name,
                "records": s.records,
                "feed_date": s.feed_date,
                "imported_at": s.imported_at,
                "source": s.source,
            }
            for s in feed_status(db)
        )
        created = now_iso()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "cra_fw_version": __version__,
            "created": created,
            "feeds": list(feeds),
            "sha256": {"feeds.sqlite": digest},
        }
        tmp_out = out.with_name(out.name + ".tmp")
        with zipfile.ZipFile(tmp_out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
            zf.write(copy, "feeds.sqlite")
        tmp_out.replace(out)
    return BundleInfo(out, digest, feeds, created)


def import_bundle(db: sqlite_utils.Database, path: Path) -> BundleInfo:
    """Replace the feed tables of ``db`` with the bundle's; merge its triage decisions."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="cra-fw-import-") as tmp:
        try:
            with zipfile.ZipFile(path) as zf:
                manifest = json.loads(zf.read("manifest.json"))
                info = zf.getinfo("feeds.sqlite")
                if info.file_size > MAX_BUNDLE_DB:
                    raise FeedError(f"{path}: feeds.sqlite is {info.file_size} bytes, over {MAX_BUNDLE_DB}")
                copy = Path(tmp) / "feeds.sqlite"
                with zf.open(info) as src, copy.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise FeedError(f"{path}: not a complete cra-fw feed export ({exc})") from exc
        if manifest.get("format") != FORMAT or int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise FeedError(
                f"{path}: feed export format {manifest.get('format_version')} is not readable here"
            )
        want = (manifest.get("sha256") or {}).get("feeds.sqlite", "")
        got = _sha256(copy)
        if got != want:
            raise FeedError(f"{path}: feeds.sqlite has SHA-256 {got}, the manifest says {want}: damaged")
        conn = db.conn
        conn.execute("ATTACH DATABASE ? AS bundle", (str(copy),))
        try:
            with transaction(db):
                for table in FEED_TABLES + MERGED_TABLES:
                    cols = [r[1] for r in conn.execute(f'PRAGMA main.table_info("{table}")')]
                    theirs = {r[1] for r in conn.execute(f'PRAGMA bundle.table_info("{table}")')}
                    shared = [c for c in cols if c in theirs]
                    if not shared:
                        continue
                    names = ", ".join(f'"{c}"' for c in shared)
                    if table in FEED_TABLES:
                        conn.execute(f'DELETE FROM main."{table}"')
                    verb = "INSERT OR REPLACE" if table in MERGED_TABLES else "INSERT"
                    conn.execute(f'{verb} INTO main."{table}" ({names}) SELECT {names} FROM bundle."{table}"')
                created = str(manifest.get("created", ""))
                # where each feed came from: the bundle, and the source it was imported from there
                conn.execute(
                    "UPDATE main.feed_meta SET source = ? || ' (exported ' || ? || ', originally ' || source || ')'",
                    (str(path.name), created),
                )
        finally:
            conn.execute("DETACH DATABASE bundle")
    return BundleInfo(path, got, tuple(manifest.get("feeds") or ()), str(manifest.get("created", "")))
