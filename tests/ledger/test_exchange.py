"""Export then import gives an identical ledger; bad imports change nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from cra_fw.errors import LedgerError
from cra_fw.ledger.exchange import dumps, export_ledger, import_ledger, read_import, write_export
from cra_fw.ledger.monitor import run_monitor
from cra_fw.ledger.store import add_product, file_report, list_cases, open_ledger, record_release, set_support
from tests.ledger.conftest import (
    GLIBC_236,
    GLIBC_239,
    KEV,
    NVD,
    T0,
    ZLIB_1211,
    finding,
    import_feed,
    make_report,
)


def _full_ledger(path: Path):
    db = open_ledger(path)
    add_product(db, "router", manufacturer="Exämple GmbH", markets=["DE"], now=T0)
    add_product(db, "camera", now=T0)
    set_support(db, "router", "2029-12", start_month="2026-01", justification="", now=T0)
    record_release(
        db,
        "router",
        "1.0",
        make_report("r1.bin", [GLIBC_236, ZLIB_1211], [finding("cred.empty", "/etc/shadow")]),
        now=T0,
    )
    import_feed(db, NVD)
    import_feed(db, KEV)
    run_monitor(db, T0 + timedelta(hours=1))
    [case] = list_cases(db)
    file_report(db, case.id, "early-warning", filed_at=T0 + timedelta(hours=3), reference="EW-1", note="ü")
    record_release(db, "router", "1.1", make_report("r2.bin", [GLIBC_239]), now=T0 + timedelta(days=2))
    return db


def test_export_import_round_trip_is_exact(tmp_path: Path):
    db = _full_ledger(tmp_path / "a.db")
    doc = export_ledger(db)
    assert doc["tables"]["cases"]["rows"] and doc["tables"]["component_vulns"]["rows"]
    out = write_export(db, tmp_path / "ledger.json")
    fresh = open_ledger(tmp_path / "b.db")
    counts = read_import(fresh, out)
    assert counts["releases"] == 2 and counts["filings"] == 1
    assert export_ledger(fresh) == doc
    assert dumps(export_ledger(fresh)) == out.read_text(encoding="utf-8")
    # the imported ledger works: same cases, same clocks
    assert [(c.id, c.stage, c.fix_available_at) for c in list_cases(fresh)] == [
        (c.id, c.stage, c.fix_available_at) for c in list_cases(db)
    ]
    # feeds are not part of the export
    assert fresh.conn.execute("SELECT COUNT(*) FROM advisories").fetchone()[0] == 0


def test_import_refuses_a_non_empty_ledger_unless_replace(tmp_path: Path):
    db = _full_ledger(tmp_path / "a.db")
    doc = export_ledger(db)
    other = open_ledger(tmp_path / "c.db")
    add_product(other, "toaster", now=T0)
    with pytest.raises(LedgerError, match="--replace"):
        import_ledger(other, doc)
    assert [r[0] for r in other.conn.execute("SELECT name FROM products")] == ["toaster"]
    import_ledger(other, doc, replace=True)
    assert export_ledger(other) == doc


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(format="something"), "not a cra-fw ledger export"),
        (lambda d: d.update(schema_version=1), "schema 1"),
        (lambda d: d["tables"]["products"]["columns"].append("evil; DROP TABLE x"), "unknown columns"),
        (lambda d: d["tables"]["releases"]["rows"][0].pop(), "malformed rows"),
        (
            lambda d: d["tables"]["case_releases"]["rows"].append(d["tables"]["case_releases"]["rows"][0]),
            "cannot import table case_releases",
        ),
    ],
)
def test_damaged_exports_are_refused_and_change_nothing(tmp_path: Path, mutate, message):
    doc = export_ledger(_full_ledger(tmp_path / "a.db"))
    mutate(doc)
    fresh = open_ledger(tmp_path / "d.db")
    with pytest.raises(LedgerError, match=message):
        import_ledger(fresh, doc)
    assert fresh.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0


def test_unreadable_import_file(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LedgerError, match="not JSON"):
        read_import(open_ledger(tmp_path / "e.db"), bad)
    assert json.loads(dumps({"a": 1})) == {"a": 1}
