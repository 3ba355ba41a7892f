"""Migrations on real SQLite files: from empty, and from every earlier ledger schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from cra_fw.db import schema_versions
from cra_fw.errors import LedgerError
from cra_fw.ledger import schema
from cra_fw.ledger.store import list_cases, list_products, open_ledger


def _db_at(path: Path, version: int) -> sqlite_utils.Database:
    """A database whose ledger schema stops at ``version``, as an older cra-fw left it."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    db = sqlite_utils.Database(conn)
    conn.execute("CREATE TABLE schema_versions (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for step in schema.STEPS[:version]:
        step(db)
    conn.execute("INSERT INTO schema_versions VALUES ('ledger', ?)", (version,))
    return db


def _index_names(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_from_empty(tmp_path: Path):
    db = open_ledger(tmp_path / "new.db")
    assert schema_versions(db)["ledger"] == schema.VERSION == 3
    assert set(schema.TABLES) <= set(db.table_names())
    assert "idx_release_components_component" in _index_names(db)
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # opening again applies nothing and keeps the version
    db.conn.close()
    assert schema_versions(open_ledger(tmp_path / "new.db"))["ledger"] == 3


def test_from_version_1_keeps_data(tmp_path: Path):
    path = tmp_path / "v1.db"
    old = _db_at(path, 1)
    old.conn.execute(
        "INSERT INTO products (name, markets, created) VALUES ('router', '[\"DE\"]', '2026-01-01T00:00:00Z')"
    )
    old.conn.execute(
        "INSERT INTO cases (product_id, advisory_id, aware_at, created) "
        "VALUES (1, 'CVE-2023-4911', '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z')"
    )
    assert "monitor_runs" not in old.table_names()
    old.conn.close()
    db = open_ledger(path)
    assert schema_versions(db)["ledger"] == 3
    assert [p.name for p in list_products(db)] == ["router"]
    [case] = list_cases(db)
    assert (case.advisory_id, case.severity, case.components, case.status) == (
        "CVE-2023-4911",
        "",
        (),
        "open",
    )
    assert "monitor_runs" in db.table_names()
    assert "idx_cases_status" in _index_names(db)


def test_from_version_2_keeps_data(tmp_path: Path):
    path = tmp_path / "v2.db"
    old = _db_at(path, 2)
    old.conn.execute("INSERT INTO products (name, created) VALUES ('camera', '2026-01-01T00:00:00Z')")
    old.conn.execute("INSERT INTO monitor_runs (run_at) VALUES ('2026-01-03T00:00:00Z')")
    assert "idx_cases_status" not in _index_names(old)
    old.conn.close()
    db = open_ledger(path)
    assert schema_versions(db)["ledger"] == 3
    assert [p.name for p in list_products(db)] == ["camera"]
    assert db.conn.execute("SELECT run_at FROM monitor_runs").fetchall() == [("2026-01-03T00:00:00Z",)]
    assert "idx_cases_status" in _index_names(db)


def test_every_version_reaches_the_same_schema(tmp_path: Path):
    def shape(db: sqlite_utils.Database) -> list[tuple]:
        tables = [
            r[0]
            for r in db.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return [
            (t, [(c[1], c[2], c[3], c[4], c[5]) for c in db.conn.execute(f"PRAGMA table_info({t})")])
            for t in tables
        ] + sorted(_index_names(db))

    shapes = []
    for version in range(schema.VERSION + 1):
        path = tmp_path / f"at{version}.db"
        _db_at(path, version).conn.close()
        shapes.append(shape(open_ledger(path)))
    assert all(s == shapes[0] for s in shapes[1:])


def test_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "future.db"
    db = _db_at(path, schema.VERSION)
    db.conn.execute("UPDATE schema_versions SET version = 99 WHERE namespace = 'ledger'")
    db.conn.close()
    with pytest.raises(LedgerError, match="upgrade cra-fw"):
        open_ledger(path)


def test_failed_migration_leaves_the_version(tmp_path: Path):
    """A step that fails half-way is rolled back: tables and version as before."""
    path = tmp_path / "broken.db"
    old = _db_at(path, 1)
    # a table the v2 step is about to create already exists: the step fails after its ALTERs
    old.conn.execute("CREATE TABLE monitor_changes (x INTEGER)")
    old.conn.close()
    with pytest.raises(LedgerError, match="monitor_changes already exists"):
        open_ledger(path)
    db = sqlite_utils.Database(sqlite3.connect(str(path)))
    assert schema_versions(db)["ledger"] == 1
    cols = [c[1] for c in db.conn.execute("PRAGMA table_info(cases)")]
    assert "severity" not in cols  # the ALTER TABLE of the failed step was rolled back
