"""`cra-fw serve` without a browser: what it refuses to open, its SQL functions, its metadata,
and why it reads the ledger read-only rather than immutable.  Ledgers here are written with
the ledger API on hand-made scan records (tests/ledger/conftest.py); no image is scanned."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.cli import main
from cra_fw.ledger.schema import TABLES
from cra_fw.ledger.store import add_product, open_ledger, record_release
from cra_fw.ledger.support import months_left
from cra_fw.serve import app
from cra_fw.serve.metadata import TABLE_DOCS
from cra_fw.serve.queries import views
from cra_fw.serve.sql import version_in
from tests.ledger.conftest import GLIBC_236, T0, make_report


def _ledger(path: Path) -> Path:
    db = open_ledger(path)
    add_product(db, "router", manufacturer="Example GmbH", now=T0)
    record_release(db, "router", "1.0", make_report("fw-1.0.bin", [GLIBC_236]), now=T0)
    db.conn.close()
    return path


def _serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["serve", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


# ---- what serve refuses, and that it creates nothing


def test_serve_does_not_create_a_ledger_that_does_not_exist(tmp_path: Path):
    missing = tmp_path / "nothing-here" / "ledger.db"
    code, out = _serve("--db", str(missing), "--port", "0")
    assert code == 2 and f"no ledger at {missing}" in out and "cra-fw product add" in out
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a database\n", "is not an SQLite database"),
        (b"", "is not an SQLite database"),
    ],
)
def test_serve_refuses_what_is_not_a_ledger(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    code, out = _serve("--db", str(path))
    assert code == 2 and message in out
    assert path.read_bytes() == content
    code, out = _serve("--db", str(tmp_path))
    assert code == 2 and "is a directory" in out  # click says so


def test_serve_refuses_a_foreign_or_other_version_database(tmp_path: Path):
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    code, out = _serve("--db", str(foreign))
    assert code == 2 and "holds no cra-fw ledger" in out

    old = _ledger(tmp_path / "old.db")
    conn = sqlite3.connect(old)
    conn.execute("UPDATE schema_versions SET version = 2 WHERE namespace = 'ledger'")
    conn.commit()
    conn.close()
    before = old.read_bytes()
    code, out = _serve("--db", str(old))
    assert code == 2 and "schema version 2, older than this cra-fw" in out and "does not write" in out
    assert old.read_bytes() == before  # not migrated: serve writes nothing

    conn = sqlite3.connect(old)
    conn.execute("UPDATE schema_versions SET version = 99 WHERE namespace = 'ledger'")
    conn.commit()
    conn.close()
    code, out = _serve("--db", str(old))
    assert code == 2 and "newer than this cra-fw" in out and "upgrade cra-fw" in out


def test_serve_refuses_a_bad_gate_or_a_busy_port(tmp_path: Path):
    ledger = _ledger(tmp_path / "ledger.db")
    code, out = _serve("--db", str(ledger), "--fail-on-vuln", "severe")
    assert code == 2 and "--fail-on-vuln 'severe'" in out
    busy = app.bind("127.0.0.1", 0)
    try:
        code, out = _serve("--db", str(ledger), "--port", str(busy.getsockname()[1]))
        assert code == 2 and "cannot listen on 127.0.0.1" in out and "choose another --port" in out
    finally:
        busy.close()


# ---- read-only, not immutable


def test_immutable_mode_would_hide_committed_writes_and_mode_ro_does_not(tmp_path: Path):
    """Why serve opens the ledger with mode=ro and not Datasette's immutable mode (-i)."""
    path = _ledger(tmp_path / "ledger.db")
    writer = open_ledger(path)  # a cra-fw command still running: WAL mode, log not yet checkpointed
    writer.conn.execute("PRAGMA wal_autocheckpoint=0")
    add_product(writer, "camera", now=T0)
    try:
        immutable = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        names = "SELECT name FROM products ORDER BY name"
        assert [r[0] for r in immutable.execute(names)] == ["router"]  # the committed camera is missing
        assert [r[0] for r in read_only.execute(names)] == ["camera", "router"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            read_only.execute("DELETE FROM products")

        async def through_datasette() -> tuple[list, dict, dict]:
            ours = app.build(path)
            shown = (await ours.client.get("/ledger/products.json?_shape=array")).json()
            write = "WITH x AS (SELECT 1) DELETE FROM products"
            refused = (await ours.client.get("/ledger.json", params={"sql": write})).json()
            from datasette.app import Datasette

            frozen = Datasette([], immutables=[str(path)])
            also_refused = (await frozen.client.get("/ledger.json", params={"sql": write})).json()
            return [p["name"] for p in shown], refused, also_refused

        shown, refused, also_refused = asyncio.run(through_datasette())
        assert shown == ["camera", "router"]
        # a write is refused either way: by the read-only connection here, by immutable=1 there
        assert refused["ok"] is False and "readonly" in refused["error"]
        assert also_refused["ok"] is False and "readonly" in also_refused["error"]
        immutable.close()
        read_only.close()
    finally:
        writer.conn.close()


# ---- metadata and views


def test_every_ledger_table_and_column_is_described(tmp_path: Path):
    db = open_ledger(tmp_path / "ledger.db")
    assert set(TABLE_DOCS) == set(TABLES)
    for table in TABLES:
        columns = {row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")}
        documented = set(TABLE_DOCS[table]["columns"])
        assert columns == documented, (table, columns ^ documented)
        assert TABLE_DOCS[table]["title"] and TABLE_DOCS[table]["description"]
        assert all(text.strip() for text in TABLE_DOCS[table]["columns"].values())
    # a view named like a table would hide the table's own page
    assert not {v.name for v in views(1000)} & set(TABLES)


def test_every_view_runs_on_an_empty_ledger(tmp_path: Path):
    path = tmp_path / "ledger.db"
    open_ledger(path).conn.close()

    async def fetch() -> dict[str, int]:
        ds = app.build(path)
        out = {}
        for view in views(1000):
            response = await ds.client.get(f"/ledger/{view.name}.json?_shape=array")
            out[view.name] = response.status_code
        return out

    assert asyncio.run(fetch()) == {v.name: 200 for v in views(1000)}


# ---- the SQL functions' own rules


def test_version_constraints():
    assert version_in("2.36", ">=2.34, <2.39") == 1
    assert version_in("2.39", ">=2.34,<2.39") == 0
    assert version_in("2.34", ">= 2.34 < 2.39") == 1
    assert version_in("1.2.11", "1.2.11") == 1 and version_in("1.2.12", "1.2.11") == 0
    assert version_in("1.0.2k", "<1.0.2u") == 1  # OpenSSL letter releases, the firmware order
    assert version_in("2022.83", "<=2022.83") == 1 and version_in("2024.84", "<=2022.83") == 0
    assert version_in("anything", "") == 1 and version_in("", ">=1") == 0
    assert version_in("1.5", "!=1.5") == 0
    # Debian order for Debian packages: an epoch outranks the upstream version
    assert version_in("1:1.2.13.dfsg-1", ">=2.0", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1") == 1
    assert version_in("1:1.2.13.dfsg-1", ">=2.0", "pkg:generic/zlib@1.2.13") == 0


@pytest.mark.parametrize(
    "end, now, left",
    [
        ("2027-06", datetime(2026, 11, 20, 12, tzinfo=UTC), 7),  # ends 2027-07-01: 7 whole months
        ("2027-06", datetime(2026, 12, 1, tzinfo=UTC), 7),  # exactly 7 months before the end
        ("2027-06", datetime(2027, 6, 30, 23, 59, tzinfo=UTC), 0),
        ("2026-10", datetime(2026, 11, 1, tzinfo=UTC), 0),  # ended this instant
        ("2026-09", datetime(2026, 11, 20, tzinfo=UTC), -2),  # ended 1 month 19 days ago
    ],
)
def test_months_left(end: str, now: datetime, left: int):
    assert months_left(end, now) == left


@pytest.mark.parametrize(
    "gate, severity, kev, trips",
    [
        ("high", "critical", 0, 1),
        ("high", "high", 0, 1),
        ("high", "medium", 0, 0),
        ("high", "", 0, 0),  # unscored: only KEV trips it
        ("high", "", 1, 1),
        ("kev", "critical", 0, 0),
        ("kev", "low", 1, 1),
        ("", "critical", 1, 0),  # no --fail-on-vuln: nothing trips
    ],
)
def test_sql_vuln_gate_is_the_scan_gate(gate, severity, kev, trips):
    """cra_vuln_trips(severity, kev) over the ledger's columns applies gate.level_trips, the rule
    `cra-fw scan --fail-on-vuln` applies to a scan's open matches."""
    from cra_fw.serve.sql import GatePolicy, register

    conn = sqlite3.connect(":memory:")
    register(conn, GatePolicy.parse(None, gate or None))
    assert conn.execute("select cra_vuln_trips(?, ?)", (severity, kev)).fetchone()[0] == trips
