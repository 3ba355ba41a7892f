"""The ledger commands as a user runs them: exit codes, messages, JSON, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.cli import main
from cra_fw.ledger.store import open_ledger, record_release
from tests.ledger.conftest import GLIBC_236, GLIBC_239, KEV, NVD, T0, ZLIB_1211, make_report


@pytest.fixture
def run(tmp_path: Path):
    db = tmp_path / "ledger.db"
    runner = CliRunner()

    def invoke(*args: str, now: str = "2026-11-02T09:30:00Z", code: int = 0):
        result = runner.invoke(
            main, [*args], env={"CRA_FW_DB": str(db), "CRA_FW_NOW": now}, catch_exceptions=False
        )
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result

    invoke.db = db
    return invoke


def test_product_and_support_commands(run):
    run("product", "add", "router", "--manufacturer", "Example GmbH", "--market", "de", "--market", "fr")
    out = run("product", "add", "router", code=2).output
    assert "already exists" in out
    assert json.loads(run("product", "list", "--json").output)[0]["markets"] == ["DE", "FR"]
    out = run("support", "set", "router", "--end", "2029-12", "--start", "2026-11").output
    assert "38 months" in out and "Article 13(8)" in out
    status = json.loads(run("support", "status", "--json").output)
    assert [i["kind"] for i in status["issues"]] == ["short-without-justification"]
    run("support", "status", "--fail", code=1)
    run(
        "support",
        "set",
        "router",
        "--end",
        "2029-12",
        "--start",
        "2026-11",
        "--justification",
        "2-year event",
    )
    assert json.loads(run("support", "status", "--json").output)["issues"] == []
    run("support", "status", "--fail")
    assert "no product named 'nas'" in run("support", "set", "nas", "--end", "2031-01", code=2).output
    assert "YYYY-MM" in run("support", "set", "router", "--end", "soon", code=2).output
    show = run("product", "show", "router").output
    assert "Example GmbH" in show and "2026-11 to 2029-12, 38 months" in show


def test_cases_file_draft_diff_export_import(run, tmp_path: Path):
    run("product", "add", "router", "--manufacturer", "Example GmbH")
    db = open_ledger(run.db)
    from cra_fw.vulns.importers import import_path

    import_path(db, NVD)
    import_path(db, KEV)
    record_release(db, "router", "1.0", make_report("r1.bin", [GLIBC_236, ZLIB_1211]), now=T0)
    assert "no cases" not in run("cases").output
    cases = json.loads(run("cases", "--json", now="2026-11-03T10:30:00Z").output)
    assert [(c["id"], c["advisory_id"], c["stage"]) for c in cases] == [(1, "CVE-2023-4911", "early-warning")]
    early = cases[0]["clocks"][0]
    assert (early["due"], early["state"], early["seconds_left"]) == ("2026-11-03T09:30:00Z", "overdue", -3600)
    assert len(json.loads(run("cases", "--overdue", "--json", now="2026-11-03T10:30:00Z").output)) == 1
    assert json.loads(run("cases", "--overdue", "--json", now="2026-11-03T08:30:00Z").output) == []
    text = run("cases", now="2026-11-03T10:30:00Z").output
    assert "OVERDUE by 1h 00m" in text and "starts when a fix is available" in text

    drafts = tmp_path / "drafts"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert (
        "choose another path"
        in run("case", "draft", "1", "--stage", "early-warning", "-o", str(blocker / "sub"), code=2).output
    )
    out = run("case", "draft", "1", "--stage", "early-warning", "-o", str(drafts)).output
    assert "case-1-early-warning.md" in out
    assert json.loads((drafts / "case-1-early-warning.json").read_text())["manufacturer"] == "Example GmbH"
    assert "no fix yet" in run("case", "draft", "1", "--stage", "final", code=2).output
    assert "no case 9" in run("case", "file", "9", "--stage", "final", code=2).output
    out = run("case", "file", "1", "--stage", "early-warning", "--at", "2026-11-03T09:00:00Z").output
    assert "now at stage notification" in out
    assert "already recorded" in run("case", "file", "1", "--stage", "early-warning", code=2).output

    record_release(db, "router", "1.1", make_report("r2.bin", [GLIBC_239]), now=T0)
    listed = json.loads(run("release", "list", "--json").output)
    assert [(r["version"], r["vulnerabilities"], r["kev"], len(r["scans"])) for r in listed] == [
        ("1.0", 3, 1, 1),
        ("1.1", 0, 0, 1),
    ]
    diff = json.loads(run("diff", "router@1.0", "router@1.1", "--json").output)
    assert diff["vulnerabilities_fixed"] == [
        "CVE-2022-37434 zlib@1.2.11",
        "CVE-2023-45853 zlib@1.2.11",
        "CVE-2023-4911 glibc@2.36",
    ]
    assert diff["components_changed"][0]["new_version"] == "2.39"
    assert "PRODUCT@VERSION" in run("diff", "router", "router@1.1", code=2).output
    assert "has no release '9'" in run("diff", "router@9", "router@1.1", code=2).output
    shown = json.loads(run("case", "show", "1").output)
    # the fix is recorded (final clock started) but the notification is still the next report due
    assert (shown["stage"], shown["fixing_release_id"], shown["fix_available_at"]) == (
        "notification",
        2,
        "2026-11-02T09:30:00Z",
    )
    assert shown["clocks"][2]["due"] == "2026-11-16T09:30:00Z"

    export = tmp_path / "ledger.json"
    run("export", "-o", str(export))
    other = tmp_path / "other.db"
    r = CliRunner().invoke(main, ["import", str(export), "--db", str(other)])
    assert r.exit_code == 0 and "2 releases" in r.output
    r2 = CliRunner().invoke(main, ["export", "--db", str(other)])
    assert r2.output == export.read_text()
    r3 = CliRunner().invoke(main, ["import", str(export), "--db", str(other)])
    assert r3.exit_code == 2 and "--replace" in r3.output


def test_release_add_with_missing_image_or_product(run, tmp_path: Path):
    assert "no product named" in run("release", "add", "nope", "1.0", str(tmp_path / "x.bin"), code=2).output
    run("product", "add", "router")
    assert (
        "no such file" in run("release", "add", "router", "1.0", str(tmp_path / "x.bin"), "-q", code=2).output
    )
    assert "no releases yet" in run("release", "list").output
    # no feed imported: nothing can be monitored, and "0 changes" would be a lie
    assert "cannot monitor: no NVD or OSV feed imported" in run("monitor", code=2).output


def test_times_are_shown_in_the_local_zone(tmp_path: Path):
    db = tmp_path / "ledger.db"
    ledger = open_ledger(db)
    from cra_fw.ledger.store import add_product
    from cra_fw.vulns.importers import import_path

    add_product(ledger, "router", now=T0)
    import_path(ledger, NVD)
    import_path(ledger, KEV)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    env = dict(os.environ, CRA_FW_DB=str(db), CRA_FW_NOW="2026-11-02T10:00:00Z", TZ="Europe/Berlin")
    out = subprocess.run(
        [sys.executable, "-m", "cra_fw", "cases"], env=env, capture_output=True, text=True, check=True
    ).stdout
    # aware 09:30 UTC = 10:30 CET; early warning due 24 h later
    assert "aware: 2026-11-02 10:30 CET" in out
    assert "due 2026-11-03 10:30 CET, 23h 30m left" in out
