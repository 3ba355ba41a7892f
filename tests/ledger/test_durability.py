"""Concurrent writers and a writer killed mid-transaction, in real processes on a real file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from cra_fw.ledger.exchange import export_ledger
from cra_fw.ledger.store import add_product, list_releases, open_ledger, record_release
from cra_fw.records import Component
from tests.ledger.conftest import GLIBC_236, T0, make_report

SPAWN = multiprocessing.get_context("spawn")


def _components(prefix: str, n: int) -> list[Component]:
    return [
        Component(f"{prefix}-lib{i}", f"1.{i}", purl=f"pkg:generic/{prefix}-lib{i}@1.{i}") for i in range(n)
    ]


def _writer(db_path: str, version: str, start_at: float) -> None:
    db = open_ledger(db_path)
    report = make_report(f"{version}.bin", [GLIBC_236, *_components(version, 400)])
    while time.time() < start_at:  # both processes begin their transaction together
        time.sleep(0.001)
    record_release(db, "router", version, report, now=T0)


def test_two_writers_at_the_same_time_both_land(tmp_path: Path):
    path = tmp_path / "ledger.db"
    db = open_ledger(path)
    add_product(db, "router", now=T0)
    start_at = time.time() + 6.0  # after both have imported and opened the db
    procs = [SPAWN.Process(target=_writer, args=(str(path), v, start_at)) for v in ("1.0", "2.0")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(r.version for r in list_releases(db, "router")) == ["1.0", "2.0"]
    for release in list_releases(db):
        count = db.conn.execute(
            "SELECT COUNT(*) FROM release_components WHERE release_id = ?", (release.id,)
        ).fetchone()[0]
        assert count == 401
    # glibc is shared, the rest is per release
    assert db.conn.execute("SELECT COUNT(*) FROM components").fetchone()[0] == 801


def _killed_writer(db_path: str, marker: str) -> None:
    db = open_ledger(db_path)
    report = make_report("2.0.bin", [GLIBC_236, *_components("k", 300)])

    def progress(stage: str) -> None:
        if stage == "components":  # release and components written, not committed
            Path(marker).write_text(stage)
            time.sleep(600)

    record_release(db, "router", "2.0", report, now=T0, progress=progress)


def test_writer_killed_mid_release_leaves_the_ledger_as_before(tmp_path: Path):
    path = tmp_path / "ledger.db"
    db = open_ledger(path)
    add_product(db, "router", now=T0)
    record_release(db, "router", "1.0", make_report("1.0.bin", [GLIBC_236]), now=T0)
    before = export_ledger(db)
    db.conn.close()
    marker = tmp_path / "in-transaction"
    proc = SPAWN.Process(target=_killed_writer, args=(str(path), str(marker)))
    proc.start()
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.is_alive():
        time.sleep(0.05)
    assert marker.exists(), "the writer never reached the middle of its transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    after_db = open_ledger(path)
    assert after_db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert export_ledger(after_db) == before
    assert [r.version for r in list_releases(after_db)] == ["1.0"]
    # and the ledger still takes writes: the lock died with the process
    record_release(after_db, "router", "2.0", make_report("2.0.bin", [GLIBC_236]), now=T0)
    assert [r.version for r in list_releases(after_db)] == ["1.0", "2.0"]
