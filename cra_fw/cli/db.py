"""`cra-fw db`: import, download and inspect the offline vulnerability feeds."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo, fail
from cra_fw.errors import CraFwError
from cra_fw.exitcodes import EXIT_USAGE

DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CRA_FW_DB",
    help="Database file (default: $CRA_FW_DB or ~/.local/share/cra-fw/cra-fw.db).",
)


@click.group("db")
def db() -> None:
    """Manage the offline vulnerability database (NVD, OSV, CISA KEV, EPSS)."""


@db.command("import")
@DB_OPTION
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_cmd(db_path: Path | None, files: tuple[Path, ...]) -> None:
    """Import feed FILES: NVD CVE JSON 2.0 (.json/.json.gz, API pages), OSV (record, folder,
    all.zip), CISA KEV JSON, EPSS CSV, or a whole database written by `cra-fw db export`.
    Only records newer than the stored ones are rewritten; an export replaces the feeds."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.bundle import import_bundle, is_bundle
    from cra_fw.vulns.importers import import_path

    database = open_feed_db(db_path)
    failed = 0
    for file in files:
        if file.is_file() and is_bundle(file):
            try:
                info = import_bundle(database, file)
            except CraFwError as exc:
                echo(f"cra-fw: error: {exc}", err=True)
                failed += 1
                continue
            echo(f"{file}: feed export of {info.created}, sha256 {info.sha256} verified")
            for feed in info.feeds:
                echo(f"  {feed['name']}: {feed['records']} records, newest {feed['feed_date'] or '-'}")
            continue
        try:
            stats = import_path(database, file)
        except CraFwError as exc:
            echo(f"cra-fw: error: {exc}", err=True)
            failed += 1
            continue
        echo(stats.summary())
        for err in stats.errors:
            echo(f"  warning: {err}", err=True)
    if failed:
        sys.exit(EXIT_USAGE)


@db.command("update")
@DB_OPTION
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME=URL",
    help="Feed to download instead of the defaults (repeatable), e.g. kev=https://mirror/kev.json.",
)
@click.option("--full-nvd", is_flag=True, help="Also download every NVD yearly feed (first run).")
@click.option(
    "--osv",
    "osv",
    multiple=True,
    metavar="ECOSYSTEM",
    help="Also download an OSV ecosystem's all.zip (repeatable), e.g. --osv Debian --osv Alpine.",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds per download.")
def update_cmd(
    db_path: Path | None, sources: tuple[str, ...], full_nvd: bool, osv: tuple[str, ...], timeout: float
) -> None:
    """Download the feeds (needs network access) and import them."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.download import FeedSource, default_sources, update

    chosen = []
    for item in sources:
        name, sep, url = item.partition("=")
        if not sep or not url:
            fail(f"--source {item!r}: expected NAME=URL")
        chosen.append(FeedSource(name, url))
    database = open_feed_db(db_path)
    results, errors = update(database, chosen or default_sources(full_nvd, osv), timeout)
    for stats in results:
        echo(stats.summary())
    for err in errors:
        echo(f"cra-fw: error: {err}", err=True)
    if errors:
        sys.exit(EXIT_USAGE)


@db.command("export")
@DB_OPTION
@click.argument("file", type=click.Path(path_type=Path))
def export_cmd(db_path: Path | None, file: Path) -> None:
    """Write the whole vulnerability database (feeds and triage decisions) to FILE, with each
    feed's date and origin and a SHA-256, for `cra-fw db import FILE` on a machine without internet."""
    from cra_fw.db import default_path
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.bundle import export_db

    path = db_path or default_path()
    if not path.exists():
        fail(f"no database at {path}; import feeds first")
    info = export_db(open_feed_db(path, readonly=True), file)  # errors: the CLI guard, one line
    echo(f"{file}: sha256 of feeds.sqlite {info.sha256}")
    for feed in info.feeds:
        echo(f"  {feed['name']}: {feed['records']} records, newest {feed['feed_date'] or '-'}")


@db.command("status")
@DB_OPTION
@click.option("--max-age", type=int, default=7, show_default=True, help="Days after which a feed is stale.")
def status_cmd(db_path: Path | None, max_age: int) -> None:
    """Show each feed's record count, newest data and age."""
    from cra_fw.db import default_path
    from cra_fw.feeddb import feed_status, open_feed_db

    path = db_path or default_path()
    if not path.exists():
        fail(f"no database at {path}; import feeds with `cra-fw db import FILE...` or `cra-fw db update`")
    database = open_feed_db(path, readonly=True)
    rows = feed_status(database)
    echo(f"database: {path}")
    if not rows:
        echo("no feeds imported")
    for s in rows:
        age = s.age_days()
        age_text = f"{age:.0f} days" if age is not None else "unknown age"
        stale = "  STALE" if age is not None and age > max_age else ""
        echo(f"{s.name:5} {s.records:>8} records  newest {s.feed_date or '-':32} {age_text}{stale}")
        echo(f"      from {s.source or 'unknown'} (imported {s.imported_at})")
    triaged = database.conn.execute("SELECT COUNT(*) FROM triage").fetchone()[0]
    echo(f"triage decisions: {triaged}")
