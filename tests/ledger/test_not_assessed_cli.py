"""Counts that depend on feeds are never shown as 0 when nothing was matched (issue 13).

A ledger with a release but no vulnerability feeds: `release list` says "vulns not
assessed" (JSON: null counts and the reason), `monitor` refuses with what to run
(exit 2, never "0 changes"); with only the NVD feed, KEV is not assessed.
"""

from __future__ import annotations

import json
from pathlib import Path

from cra_fw.ledger.store import add_product, open_ledger, record_release
from tests.conftest import run_cli
from tests.ledger.conftest import GLIBC_236, NVD, T0, import_feed, make_report


def _ledger_with_a_release(path: Path, feeds: tuple[Path, ...] = ()) -> None:
    db = open_ledger(path)
    try:
        add_product(db, "router", now=T0)
        for feed in feeds:
            import_feed(db, feed)
        record_release(db, "router", "1.0", make_report("a.bin", [GLIBC_236]), now=T0)
    finally:
        db.conn.close()


def test_release_list_and_monitor_without_feeds_say_not_assessed(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger_with_a_release(db)
    before = db.read_bytes()
    listing = run_cli("release", "list", "--db", str(db))
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("router@1.0"))
    assert line.endswith("vulns not assessed") and "0 vulns" not in line
    assert "not assessed: no NVD or OSV feed imported" in listing.stderr
    rows = json.loads(run_cli("release", "list", "--db", str(db), "--json").stdout)
    assert (rows[0]["vulnerabilities"], rows[0]["kev"]) == (None, None)
    assert rows[0]["vulnerabilities_assessed"]["status"] == "not_assessed"
    monitor = run_cli("monitor", "--db", str(db))
    assert monitor.returncode == 2 and "Traceback" not in monitor.stderr
    assert "cannot monitor: no NVD or OSV feed imported" in monitor.stderr
    assert "0 changes" not in monitor.stdout + monitor.stderr
    assert db.read_bytes() == before  # looking changed nothing


def test_release_list_with_nvd_but_no_kev_says_kev_not_assessed(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ledger_with_a_release(db, (NVD,))
    listing = run_cli("release", "list", "--db", str(db))
    line = next(x for x in listing.stdout.splitlines() if x.startswith("router@1.0"))
    # glibc 2.36 is in the fixture NVD feed (CVE-2023-4911); KEV was never imported
    assert "KEV not assessed" in line and "0 KEV" not in line
    assert "kev not assessed: no CISA KEV feed imported" in listing.stderr
