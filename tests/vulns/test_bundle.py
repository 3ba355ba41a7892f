"""`cra-fw db export FILE` / `db import FILE`: the whole database as one file, same matches after."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from cra_fw.feeddb import open_feed_db
from cra_fw.records import Component
from cra_fw.vulns import match_components
from cra_fw.vulns.triage import TriageDecision, record

from .conftest import load_all

COMPONENTS = [
    Component("busybox", "1.35.0"),
    Component("glibc", "2.36"),
    Component(
        "expat",
        "2.5.0",
        purl="pkg:deb/debian/libexpat1@2.5.0-1%2Bdeb12u2?arch=armhf&distro=debian-12&upstream=expat",
    ),
]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cra_fw", *args], capture_output=True, text=True, timeout=300
    )


def _matches(db) -> set[tuple]:
    return {
        (m.component_key, m.advisory_id, m.open, m.kev, m.fixed_version)
        for m in match_components(COMPONENTS, db)
    }


def test_export_then_import_gives_the_same_results(tmp_path: Path) -> None:
    src = load_all(tmp_path / "online.db")
    record(src, [TriageDecision("CVE-2022-30065", "busybox@1.35.0", "not_affected", "code_not_present")])
    # the ledger shares the file: its tables must not travel
    src["products"].create({"id": int, "name": str}, pk="id")
    want = _matches(src)
    src.conn.close()
    res = _cli("db", "export", str(tmp_path / "feeds.crafw"), "--db", str(tmp_path / "online.db"))
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(tmp_path / "feeds.crafw") as zf:
        assert sorted(zf.namelist()) == ["feeds.sqlite", "manifest.json"]
    res = _cli("db", "import", str(tmp_path / "feeds.crafw"), "--db", str(tmp_path / "airgap.db"))
    assert res.returncode == 0, res.stderr
    assert "verified" in res.stdout and "nvd: 27 records" in res.stdout
    dst = open_feed_db(tmp_path / "airgap.db")
    assert _matches(dst) == want
    assert "products" not in dst.table_names()
    status = _cli("db", "status", "--db", str(tmp_path / "airgap.db"))
    assert "from feeds.crafw (exported " in status.stdout
    nvd_lines = status.stdout.split("\nnvd", 1)[1].split("\n")[:2]
    assert "originally " + str(Path(__file__).resolve().parents[2] / "fixtures/feeds/nvd") in nvd_lines[1]


def test_damaged_export_is_refused(tmp_path: Path) -> None:
    load_all(tmp_path / "online.db").conn.close()
    assert (
        _cli("db", "export", str(tmp_path / "f.crafw"), "--db", str(tmp_path / "online.db")).returncode == 0
    )
    with zipfile.ZipFile(tmp_path / "f.crafw") as zf:
        manifest, data = zf.read("manifest.json"), bytearray(zf.read("feeds.sqlite"))
    data[5000] ^= 0xFF
    with zipfile.ZipFile(tmp_path / "bad.crafw", "w") as zf:
        zf.writestr("manifest.json", manifest)
        zf.writestr("feeds.sqlite", bytes(data))
    res = _cli("db", "import", str(tmp_path / "bad.crafw"), "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2 and "damaged" in res.stderr
