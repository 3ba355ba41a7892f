"""A new user's path through the ledger, with real fixture images and real `cra-fw` processes.

Needs the scan pipeline's identify stage to report dropbear in the fixture images (ground truth:
sqfs-xz-mipsel and sqfs-gzip-arm64 carry dropbear 2022.83, sqfs-lzo-armhf does not) and the feeds
package; skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ledger.conftest import NVD, REPO

IMAGES = REPO / "fixtures" / "images"
GROUND_TRUTH = IMAGES / "ground-truth.json"
pytestmark = pytest.mark.slow  # real scans of fixture images

R1, R2, R3 = "sqfs-xz-mipsel.sqfs", "sqfs-gzip-arm64.sqfs", "sqfs-lzo-armhf.sqfs"

# A KEV catalog update in CISA's format.  HYPOTHETICAL: CISA has not listed CVE-2023-48795
# (Terrapin); the scenario needs a KEV listing of a component that one fixture release drops.
HYPOTHETICAL_KEV = {
    "title": "CISA Catalog of Known Exploited Vulnerabilities (scenario test, hypothetical entry)",
    "catalogVersion": "2026.11.20",
    "dateReleased": "2026-11-20T00:00:00.000Z",
    "count": 1,
    "vulnerabilities": [
        {
            "cveID": "CVE-2023-48795",
            "vendorProject": "OpenSSH",
            "product": "OpenSSH",
            "vulnerabilityName": "SSH Transport Protocol Prefix Truncation (Terrapin)",
            "dateAdded": "2026-11-20",
            "shortDescription": "The SSH transport protocol with certain OpenSSH extensions allows prefix truncation.",
            "requiredAction": "Apply updates per vendor instructions.",
            "dueDate": "2026-12-11",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "",
            "cwes": ["CWE-354"],
        }
    ],
}


def _ground_truth_components(image: str) -> set[str]:
    doc = json.loads(GROUND_TRUTH.read_text())
    [entry] = [i for i in doc["images"] if i["file"] == image]
    return {f"{c['name']}@{c['version']}" for c in entry["components"]}


@pytest.fixture
def cli(tmp_path: Path):
    for image in (R1, R2, R3):
        if not (IMAGES / image).exists():
            pytest.skip(f"fixture image {image} is not built (run fixtures/build.py)")
    try:
        import cra_fw.pipeline  # noqa: F401
        import cra_fw.vulns.importers  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"needs the scan pipeline and the feeds package: {exc}")
    env = dict(os.environ, CRA_FW_DB=str(tmp_path / "ledger.db"), TZ="UTC")

    def run(*args: str, now: str, code: int = 0) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "cra_fw", *args],
            env=env | {"CRA_FW_NOW": now},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        return proc.stdout

    run.db_path = tmp_path / "ledger.db"
    return run


def _components(run, label: str) -> set[str]:
    from cra_fw.ledger.store import open_ledger, release_components, resolve_release

    ledger = open_ledger(run.db_path)
    try:
        return {c.key for c in release_components(ledger, resolve_release(ledger, label).id)}
    finally:
        ledger.conn.close()


def test_new_user_scenario(cli, tmp_path: Path):
    run = cli
    run(
        "product",
        "add",
        "router",
        "--manufacturer",
        "Example GmbH",
        "--market",
        "DE",
        now="2026-11-01T08:00:00Z",
    )
    run("support", "set", "router", "--end", "2031-12", now="2026-11-01T08:00:00Z")
    out = run(
        "release",
        "add",
        "router",
        "1.0",
        str(IMAGES / R1),
        "-q",
        "--date",
        "2026-11-01T12:00:00Z",
        now="2026-11-01T12:05:00Z",
    )
    assert "release router@1.0 recorded" in out
    have = _components(run, "router@1.0")
    if "dropbear@2022.83" not in have:
        pytest.skip(
            f"the identify stage does not report dropbear@2022.83 in {R1} yet (found: {sorted(have)})"
        )
    assert "dropbear@2022.83" in _ground_truth_components(R1)
    run(
        "release",
        "add",
        "router",
        "1.1",
        str(IMAGES / R2),
        "-q",
        "--date",
        "2026-11-10T12:00:00Z",
        now="2026-11-10T12:05:00Z",
    )
    assert "dropbear@2022.83" in _components(run, "router@1.1")

    # feeds: first NVD (Terrapin matches dropbear 2022.83), nothing actively exploited yet
    run("db", "import", str(NVD), now="2026-11-15T09:00:00Z")
    out = run("monitor", now="2026-11-15T09:00:00Z")
    assert "new\tCVE-2023-48795\tmedium\tdropbear@2022.83\trouter@1.0, router@1.1" in out
    assert "opened" not in out
    assert run("cases", now="2026-11-15T09:00:00Z").strip() == "no cases"

    # a catalog update lists it as exploited: monitor opens the case for both releases on the market
    kev = tmp_path / "known_exploited_vulnerabilities.json"
    kev.write_text(json.dumps(HYPOTHETICAL_KEV))
    run("db", "import", str(kev), now="2026-11-20T10:00:00Z")
    out = run("monitor", now="2026-11-20T10:00:00Z")
    assert "now-exploited\tCVE-2023-48795 [KEV]" in out and "router@1.0, router@1.1" in out
    assert "case 1 opened" in out
    text = run("cases", now="2026-11-20T16:00:00Z")
    assert "case 1  router  CVE-2023-48795" in text and "stage: early-warning" in text
    assert "due 2026-11-21 10:00 UTC, 18h 00m left" in text
    assert "due 2026-11-23 10:00 UTC, 2d 18h 00m left" in text

    drafts = tmp_path / "drafts"
    run("case", "draft", "1", "--stage", "early-warning", "-o", str(drafts), now="2026-11-20T16:00:00Z")
    draft = json.loads((drafts / "case-1-early-warning.json").read_text())
    assert (draft["advisory_id"], draft["manufacturer"], draft["markets"], draft["due_at"]) == (
        "CVE-2023-48795",
        "Example GmbH",
        ["DE"],
        "2026-11-21T10:00:00Z",
    )
    assert [r["version"] for r in draft["affected_releases"]] == ["1.0", "1.1"]
    assert "CVE-2023-48795" in (drafts / "case-1-early-warning.md").read_text()
    run("case", "file", "1", "--stage", "early-warning", now="2026-11-20T17:00:00Z")
    run("case", "file", "1", "--stage", "notification", now="2026-11-22T09:00:00Z")
    [case] = json.loads(run("cases", "--json", now="2026-11-22T09:00:00Z"))
    assert case["stage"] == "awaiting-fix"

    # the fixing release: dropbear is gone
    assert "dropbear@2022.83" not in _ground_truth_components(R3)
    run(
        "release",
        "add",
        "router",
        "1.2",
        str(IMAGES / R3),
        "-q",
        "--date",
        "2026-11-25T12:00:00Z",
        now="2026-11-25T12:05:00Z",
    )
    [case] = json.loads(run("cases", "--json", now="2026-11-26T12:00:00Z"))
    assert case["stage"] == "final" and case["fix_available_at"] == "2026-11-25T12:00:00Z"
    assert case["clocks"][2] == {
        "stage": "final",
        "due": "2026-12-09T12:00:00Z",
        "filed_at": "",
        "state": "running",
        "seconds_left": 13 * 86400,
    }
    diff = json.loads(run("diff", "router@1.1", "router@1.2", "--json", now="2026-11-26T12:00:00Z"))
    assert "CVE-2023-48795 dropbear@2022.83" in diff["vulnerabilities_fixed"]


def test_two_release_add_processes_at_once(cli, tmp_path: Path):
    run = cli
    run("product", "add", "router", now="2026-11-01T08:00:00Z")
    env = dict(os.environ, CRA_FW_DB=str(tmp_path / "ledger.db"), CRA_FW_NOW="2026-11-02T00:00:00Z")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cra_fw", "release", "add", "router", version, str(IMAGES / image), "-q"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version, image in (("1.0", R1), ("2.0", R2))
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    releases = json.loads(run("release", "list", "--json", now="2026-11-02T00:00:00Z"))
    assert sorted((r["version"], r["image_name"]) for r in releases) == [("1.0", R1), ("2.0", R2)]
    assert all(len(r["scans"]) == 1 for r in releases)


def test_release_add_of_something_that_is_not_firmware_records_nothing(cli, tmp_path: Path):
    run = cli
    run("product", "add", "router", now="2026-11-01T08:00:00Z")
    junk = tmp_path / "empty.bin"
    junk.write_bytes(b"")
    run("release", "add", "router", "1.0", str(junk), "-q", now="2026-11-01T08:00:00Z", code=3)
    assert run("release", "list", now="2026-11-01T08:00:00Z").startswith("no releases yet")
