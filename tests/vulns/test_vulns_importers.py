"""Importers: formats, incremental behaviour, feed age, malformed input."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import pytest

from cra_fw.errors import FeedError
from cra_fw.feeddb import feed_status, open_feed_db
from cra_fw.vulns.importers import import_path, sniff
from cra_fw.vulns.importers.jsonstream import iter_array

from .conftest import FEEDS


@pytest.fixture
def db(tmp_path: Path):
    database = open_feed_db(tmp_path / "t.db")
    yield database
    database.conn.close()


def count(db, table: str, where: str = "1=1", args: tuple = ()) -> int:
    return db.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0]


def test_sniff_kinds() -> None:
    assert sniff(FEEDS / "nvd/nvdcve-2.0-fixture.json.gz") == "nvd"
    assert sniff(FEEDS / "nvd/api-page-0.json") == "nvd"
    assert sniff(FEEDS / "osv/Debian-all.zip") == "osv-zip"
    assert sniff(FEEDS / "osv/debian") == "osv-dir"
    assert sniff(FEEDS / "osv/debian/DEBIAN-CVE-2023-4911.json") == "osv"
    assert sniff(FEEDS / "kev/known_exploited_vulnerabilities.json") == "kev"
    assert sniff(FEEDS / "epss/epss_scores-fixture.csv.gz") == "epss"


def test_nvd_gzip_feed_then_reimport_is_unchanged(db) -> None:
    first = import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    assert (first.added, first.updated, first.unchanged) == (24, 0, 0)
    rows_before = count(db, "cpe_match")
    again = import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 24)
    assert count(db, "cpe_match") == rows_before
    # CVE-2022-0778 has three ranges; CVE-2023-4911 one (>=2.34 <2.39)
    assert count(db, "cpe_match", "advisory_id = ?", ("CVE-2022-0778",)) == 3
    assert count(db, "cpe_match", "advisory_id = ?", ("CVE-2023-4911",)) == 1


def test_modified_feed_rewrites_only_newer_records(db) -> None:
    import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    before = dict(db.conn.execute("SELECT id, modified FROM advisories").fetchall())
    stats = import_path(db, FEEDS / "nvd/nvdcve-2.0-modified.json")
    assert (stats.added, stats.updated, stats.unchanged) == (0, 2, 0)
    after = dict(db.conn.execute("SELECT id, modified FROM advisories").fetchall())
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"CVE-2023-45853", "CVE-2022-28391"}
    assert count(db, "cpe_match", "advisory_id = ?", ("CVE-2023-45853",)) == 1  # replaced, not duplicated
    # an older copy does not roll a record back
    stats = import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    assert (stats.updated, stats.unchanged) == (0, 24)
    assert (
        db.conn.execute("SELECT modified FROM advisories WHERE id='CVE-2023-45853'").fetchone()[0]
        == "2024-12-20T10:15:08.000"
    )


def test_rejected_cve_is_removed(db, tmp_path: Path) -> None:
    import_path(db, FEEDS / "nvd/api-page-0.json")
    page = json.loads((FEEDS / "nvd/api-page-0.json").read_text())
    item = page["vulnerabilities"][0]
    item["cve"]["vulnStatus"] = "Rejected"
    item["cve"]["lastModified"] = "2025-01-01T00:00:00.000"
    page["vulnerabilities"] = [item]
    (tmp_path / "page.json").write_text(json.dumps(page))
    stats = import_path(db, tmp_path / "page.json")
    assert stats.removed == 1
    assert count(db, "cpe_match", "advisory_id = ?", (item["cve"]["id"],)) == 0
    assert count(db, "advisories", "id = ?", (item["cve"]["id"],)) == 0


def test_osv_zip_and_folder_are_the_same(db, tmp_path: Path) -> None:
    stats = import_path(db, FEEDS / "osv/Debian-all.zip")
    assert (stats.added, stats.feed) == (5, "osv")
    again = import_path(db, FEEDS / "osv/debian")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)
    rows = db.conn.execute(
        "SELECT ecosystem, name, introduced, fixed FROM osv_affected ORDER BY name, ecosystem, fixed"
    ).fetchall()
    assert rows == [
        ("Debian:12", "dropbear", "0", "2022.83-1+deb12u1"),
        ("Debian:12", "expat", "0", "2.5.0-1+deb12u1"),
        ("Debian:12", "expat", "0", "2.5.0-1+deb12u4"),
        ("Debian:12", "glibc", "0", "2.36-9+deb12u3"),
        ("Debian:12", "zlib", "0", ""),
        ("Debian:13", "zlib", "0", "1:1.3.dfsg-2"),
    ]


def test_kev_and_epss_skip_when_not_newer(db) -> None:
    kev = import_path(db, FEEDS / "kev/known_exploited_vulnerabilities.json")
    assert kev.added == 3
    assert import_path(db, FEEDS / "kev/known_exploited_vulnerabilities.json").added == 0
    epss = import_path(db, FEEDS / "epss/epss_scores-fixture.csv.gz")
    assert epss.updated == 3 and epss.feed_date.startswith("2024-12-01")
    assert import_path(db, FEEDS / "epss/epss_scores-fixture.csv.gz").updated == 0
    assert (
        db.conn.execute("SELECT due_date FROM kev WHERE cve_id='CVE-2024-1086'").fetchone()[0] == "2024-06-20"
    )


def test_feed_age_is_recorded(db) -> None:
    from datetime import UTC, datetime

    import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    import_path(db, FEEDS / "kev/known_exploited_vulnerabilities.json")
    status = {s.name: s for s in feed_status(db)}
    assert set(status) == {"nvd", "kev"}
    assert status["nvd"].records == 24
    assert status["nvd"].feed_date == "2026-06-17T05:47:45.783"  # newest lastModified in the file
    now = datetime(2024, 12, 11, 15, 0, tzinfo=UTC)
    assert round(status["kev"].age_days(now)) == 10


def test_plain_and_gzip_give_identical_rows(tmp_path: Path) -> None:
    plain = tmp_path / "feed.json"
    plain.write_bytes(gzip.decompress((FEEDS / "nvd/nvdcve-2.0-fixture.json.gz").read_bytes()))
    a = open_feed_db(tmp_path / "a.db")
    b = open_feed_db(tmp_path / "b.db")
    import_path(a, plain)
    import_path(b, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    q = "SELECT * FROM cpe_match ORDER BY advisory_id, vendor, version, start_incl, end_excl, end_incl, update_"
    assert a.conn.execute(q).fetchall() == b.conn.execute(q).fetchall()


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_stream_reader_handles_any_chunk_boundary(chunk: int) -> None:
    doc = {
        "format": "NVD_CVE",
        "n": 12345,
        "vulnerabilities": [{"a": i, "s": 'x"]},{' * i} for i in range(20)],
        "after": 1.5,
    }
    meta: dict = {}
    items = list(iter_array(io.StringIO(json.dumps(doc)), "vulnerabilities", meta, chunk=chunk))
    assert items == doc["vulnerabilities"]
    assert meta == {"format": "NVD_CVE", "n": 12345, "after": 1.5}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.json", b"", "not a recognised feed"),
        ("garbage.bin", b"\x00\x01garbage", "not a recognised feed"),
        ("old.json", b'{"CVE_data_type": "CVE", "CVE_Items": []}', "NVD 1.1"),
        ("trunc.json", b'{"format": "NVD_CVE", "vulnerabilities": [{"cve": {"id": "CVE-1"', "malformed JSON"),
        ("bad.zip", b"PK\x03\x04notreallyazip", "broken zip"),
    ],
)
def test_malformed_inputs_raise_feed_error(
    db, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FeedError, match=message):
        import_path(db, path)


def test_truncated_gzip_is_a_feed_error(db, tmp_path: Path) -> None:
    data = (FEEDS / "nvd/nvdcve-2.0-fixture.json.gz").read_bytes()
    (tmp_path / "cut.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FeedError):
        import_path(db, tmp_path / "cut.json.gz")


def test_bad_items_are_skipped_and_reported(db, tmp_path: Path) -> None:
    page = json.loads((FEEDS / "nvd/api-page-0.json").read_text())
    page["vulnerabilities"].insert(0, {"cve": {"no-id": True}})
    page["vulnerabilities"].insert(0, "not an object")
    (tmp_path / "p.json").write_text(json.dumps(page))
    stats = import_path(db, tmp_path / "p.json")
    assert stats.added == 3 and len(stats.errors) == 2


def test_osv_folder_skips_bad_records(db, tmp_path: Path) -> None:
    folder = tmp_path / "osv"
    shutil.copytree(FEEDS / "osv/debian", folder)
    (folder / "broken.json").write_text("{not json")
    (folder / "noid.json").write_text('{"modified": "2024-01-01T00:00:00Z"}')
    stats = import_path(db, folder)
    assert stats.added == 5 and len(stats.errors) == 2


def test_oversized_item_is_refused(monkeypatch) -> None:
    from cra_fw.vulns.importers import jsonstream

    monkeypatch.setattr(jsonstream, "MAX_ITEM_CHARS", 1000)
    text = '{"vulnerabilities": [{"cve": "' + "A" * 5000 + '"}]}'
    with pytest.raises(FeedError, match="larger than"):
        list(jsonstream.iter_array(io.StringIO(text), "vulnerabilities", chunk=64))


def test_schema_v1_database_is_migrated_and_backfilled(tmp_path: Path) -> None:
    import sqlite3

    import sqlite_utils

    from cra_fw.feeddb import _feeds_v1
    from cra_fw.vulns import match_components

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    _feeds_v1(old)
    old.conn.execute("CREATE TABLE schema_versions (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    old.conn.execute("INSERT INTO schema_versions VALUES ('feeds', 1)")
    old["advisories"].insert({"id": "CVE-2022-0778", "source": "nvd", "modified": "2024", "aliases": "[]"})
    old["cpe_match"].insert(
        {
            "advisory_id": "CVE-2022-0778",
            "part": "a",
            "vendor": "openssl",
            "product": "openssl",
            "version": "*",
            "update_": "*",
            "edition": "*",
            "language": "*",
            "sw_edition": "*",
            "target_sw": "*",
            "target_hw": "*",
            "other": "*",
            "start_incl": "1.0.2",
            "start_excl": "",
            "end_incl": "",
            "end_excl": "1.0.2zd",
        }
    )
    old.conn.close()
    from cra_fw.records import Component

    db = open_feed_db(path)
    assert db.conn.execute("SELECT version FROM schema_versions WHERE namespace='feeds'").fetchone()[0] == 4
    assert "cve_files" in db.table_names()
    indexes = {r[1] for r in db.conn.execute("PRAGMA index_list(cpe_match)")}
    assert "idx_cpe_match_range" in indexes and "idx_cpe_match_vendor_product" not in indexes
    assert [m.advisory_id for m in match_components([Component("openssl", "1.0.2k")], db)] == [
        "CVE-2022-0778"
    ]
    assert match_components([Component("openssl", "1.0.2zd")], db) == []


def test_matcher_query_reads_ranges_from_the_covering_index_only(feed_db) -> None:
    """Each branch of the range test is an index-only search; the table is read for hits alone."""
    from cra_fw.vulns.match import Matcher

    plan = [
        r[3] for r in feed_db.conn.execute("EXPLAIN QUERY PLAN " + Matcher._CPE_SQL, ("a", "b", "c", "d"))
    ]
    searches = [p for p in plan if "cpe_match" in p]
    assert sum("COVERING INDEX idx_cpe_match_range" in p for p in searches) == 3
    assert not any(p.startswith("SCAN") for p in searches), plan
