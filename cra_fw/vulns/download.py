"""``cra-fw db update``: download the feeds (online) and import them.

Sources are URLs, so a mirror (or a test server on 127.0.0.1) can stand in for
the public ones.  Each download is bounded in size and time, written to a
temporary file and imported with the same importers as ``db import``.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from cra_fw.errors import FeedError
from cra_fw.vulns.importers import import_path
from cra_fw.vulns.store import ImportStats

NVD_FEED_BASE = "https://nvd.nist.gov/feeds/json/cve/2.0/"
DEFAULT_SOURCES = {
    "kev": "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    "epss": "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
    "nvd-modified": NVD_FEED_BASE + "nvdcve-2.0-modified.json.gz",
}
MAX_DOWNLOAD = 2 * 1024**3
USER_AGENT = "cra-fw feed updater"


@dataclass(frozen=True)
class FeedSource:
    name: str
    url: str


def nvd_year_sources(first_year: int = 2002, last_year: int | None = None) -> list[FeedSource]:
    """The NVD 2.0 yearly feed files, for a full initial download."""
    last = last_year or datetime.now(UTC).year
    return [
        FeedSource(f"nvd-{y}", f"{NVD_FEED_BASE}nvdcve-2.0-{y}.json.gz") for y in range(first_year, last + 1)
    ]


OSV_BUCKET = "https://osv-vulnerabilities.storage.googleapis.com/"


def osv_source(ecosystem: str) -> FeedSource:
    """An OSV ecosystem's ``all.zip`` (e.g. ``Debian``, ``Alpine``, ``PyPI``)."""
    name = urllib.parse.quote(ecosystem.strip(), safe=":")
    return FeedSource(f"osv-{ecosystem.strip()}", f"{OSV_BUCKET}{name}/all.zip")


def default_sources(full_nvd: bool = False, osv_ecosystems: tuple[str, ...] = ()) -> list[FeedSource]:
    sources = [FeedSource(n, u) for n, u in DEFAULT_SOURCES.items()]
    if full_nvd:
        sources = nvd_year_sources() + sources
    return sources + [osv_source(e) for e in osv_ecosystems]


def fetch(url: str, dest: Path, timeout: float = 120.0, max_bytes: int = MAX_DOWNLOAD) -> Path:
    """Download ``url`` (http, https or file) to ``dest``; raise FeedError on any failure."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise FeedError(f"unsupported URL scheme in {url!r}: use http(s) or file")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, dest.open("wb") as out:  # noqa: S310
            copied = 0
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                copied += len(block)
                if copied > max_bytes:
                    raise FeedError(f"{url}: larger than {max_bytes} bytes; refusing")
                out.write(block)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FeedError(
            f"{url}: cannot download ({reason}); check the network or import files with `cra-fw db import`"
        ) from exc
    return dest


def update(
    db: sqlite_utils.Database, sources: list[FeedSource], timeout: float = 120.0
) -> tuple[list[ImportStats], list[str]]:
    """Download and import each source; a failing source is reported and the others go on."""
    results: list[ImportStats] = []
    errors: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="cra-fw-feeds-"))
    try:
        for source in sources:
            name = Path(urllib.parse.urlparse(source.url).path).name or source.name
            dest = workdir / f"{source.name}-{name}"
            try:
                fetch(source.url, dest, timeout)
                results.append(import_path(db, dest, origin=source.url))
            except FeedError as exc:
                errors.append(f"{source.name}: {exc}")
            finally:
                dest.unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results, errors
