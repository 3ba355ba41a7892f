"""`cra-fw db update` against a local HTTP server, and the db/triage commands end to end."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cra_fw.feeddb import feed_status, open_feed_db
from cra_fw.vulns.download import FeedSource, update

from .conftest import FEEDS


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(FEEDS))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_update_downloads_and_imports(tmp_path: Path, server: str) -> None:
    db = open_feed_db(tmp_path / "u.db")
    sources = [
        FeedSource("nvd-2024", f"{server}/nvd/nvdcve-2.0-fixture.json.gz"),
        FeedSource("kev", f"{server}/kev/known_exploited_vulnerabilities.json"),
        FeedSource("osv-debian", f"{server}/osv/Debian-all.zip"),
        FeedSource("missing", f"{server}/nvd/nope.json.gz"),
    ]
    results, errors = update(db, sources, timeout=10)
    assert [(r.feed, r.added) for r in results] == [("nvd", 24), ("kev", 3), ("osv", 5)]
    assert len(errors) == 1 and "missing" in errors[0] and "404" in errors[0]
    status = {s.name: s for s in feed_status(db)}
    assert status["kev"].source == f"{server}/kev/known_exploited_vulnerabilities.json"
    # second run: incremental, nothing rewritten
    results, errors = update(db, sources[:1], timeout=10)
    assert (results[0].added, results[0].unchanged, errors) == (0, 24, [])


def test_update_unreachable_host_is_an_error_not_a_crash(tmp_path: Path) -> None:
    db = open_feed_db(tmp_path / "u.db")
    results, errors = update(
        db,
        [FeedSource("kev", "http://127.0.0.1:9/kev.json"), FeedSource("ftp", "ftp://example.invalid/x")],
        timeout=2,
    )
    assert results == [] and len(errors) == 2
    assert "cannot download" in errors[0] and "unsupported URL scheme" in errors[1]


def cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRA_FW_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "cra_fw", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_db_update_import_status_and_triage(tmp_path: Path, server: str) -> None:
    db = tmp_path / "cli.db"
    res = cli("db", "update", "--source", f"kev={server}/kev/known_exploited_vulnerabilities.json", db=db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("kev: 3 added")
    res = cli("db", "import", str(FEEDS / "nvd/nvdcve-2.0-fixture.json.gz"), str(FEEDS / "osv/debian"), db=db)
    assert res.returncode == 0, res.stderr
    assert "nvd: 24 added" in res.stdout and "osv: 5 added" in res.stdout
    res = cli("db", "status", db=db)
    assert res.returncode == 0
    lines = {
        line.split()[0]: line for line in res.stdout.splitlines() if line[:4] in ("nvd ", "kev ", "osv ")
    }
    assert set(lines) == {"nvd", "kev", "osv"} and "24 records" in lines["nvd"] and "STALE" in lines["nvd"]
    res = cli(
        "triage",
        "CVE-2023-45853",
        "--component",
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1",
        "--state",
        "not_affected",
        "--justification",
        "code_not_present",
        "--detail",
        "no minizip",
        db=db,
    )
    assert res.returncode == 0, res.stderr
    res = cli("triage", "list", db=db)
    assert res.stdout.strip() == (
        "CVE-2023-45853\tpkg:deb/debian/zlib1g@1:1.2.13.dfsg-1\tnot_affected (code_not_present)\tcli"
    )
    vex = tmp_path / "v.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2023-4911"},
                        "products": [{"@id": "pkg:generic/glibc@2.36"}],
                        "status": "fixed",
                    }
                ],
            }
        )
    )
    res = cli("triage", "import", str(vex), db=db)
    assert res.returncode == 0 and "1 decision(s) imported" in res.stdout


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    bad = tmp_path / "bad.json"
    bad.write_text("{broken")
    for args in (
        ("db", "import", str(bad)),
        ("db", "import", str(tmp_path / "absent.json")),
        ("triage", "import", str(bad)),
        ("db", "update", "--source", "nonsense"),
        ("triage", "CVE-1", "--component", "pkg:generic/x@1", "--state", "not_affected"),
    ):
        res = cli(*args, db=db)
        assert res.returncode == 2, args
        assert "Traceback" not in res.stderr and res.stderr.startswith("cra-fw: error:"), (args, res.stderr)
    res = cli("db", "status", db=tmp_path / "none.db")
    assert res.returncode == 2 and "no database" in res.stderr
