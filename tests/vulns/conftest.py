"""Fixtures for the vulnerability stage: a real SQLite database loaded from fixtures/feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cra_fw.feeddb import open_feed_db
from cra_fw.vulns.importers import import_path

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
ALL_FEEDS = (
    "nvd/nvdcve-2.0-fixture.json.gz",
    "nvd/api-page-0.json",
    "osv/Debian-all.zip",
    "osv/alpine",
    "cve5",
    "kev/known_exploited_vulnerabilities.json",
    "epss/epss_scores-fixture.csv.gz",
)


def load_all(db_path: Path):
    db = open_feed_db(db_path)
    for rel in ALL_FEEDS:
        import_path(db, FEEDS / rel)
    return db


@pytest.fixture
def feed_db(tmp_path: Path):
    db = load_all(tmp_path / "feeds.db")
    yield db
    db.conn.close()
