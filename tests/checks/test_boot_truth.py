"""Boot daemons and default credentials of the vendor images in ../shared/firmware*, against ground
truth written by hand (tests/checks/boot_truth/<image>.toml: the boot path read script by script,
account files and config databases read with zcat/grep; never cra-fw's output).

Each image goes through the real `cra-fw scan`.  A truth daemon is found when a service runs that
program (basename) from that script (or binary); its port must agree when the truth gives one.  A
truth credential is found when a credential finding (or ``services.snmp-community``) points at that
file and line.  Recall per image must be >= 0.9 for both; ``pytest -s`` prints the table.
Skipped where the shared folder is absent (CI).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import scan_cli

TRUTH_DIR = Path(__file__).with_name("boot_truth")
SHARED = Path(__file__).resolve().parents[3] / "shared"
TRUTHS = {
    p.name.removesuffix(".toml"): tomllib.loads(p.read_text()) for p in sorted(TRUTH_DIR.glob("*.toml"))
}
MIN_RECALL = 0.9


def started_from(started_by: str) -> str:
    """The script or binary path of a ``started_by`` (``script:/etc/rc.local:3``, ``binary:/bin/cfm@0x..``)."""
    where = started_by.split(":", 1)[1] if ":" in started_by else started_by
    return re.sub(r"(?::\d+|@0x[0-9a-f]+)$", "", where)


def score(truth: dict, report: dict) -> dict[str, object]:
    """Found/total for daemons and credentials, what is missing, and port disagreements."""
    services = [
        (os.path.basename(s["binary"]), started_from(s["started_by"]), s["port"]) for s in report["services"]
    ]
    missing_d, wrong_port = [], []
    for d in truth.get("daemons", []):
        hits = [s for s in services if s[0] == d["name"] and s[1] == d["script"]]
        if not hits:
            missing_d.append(f"{d['name']} <- {d['script']}:{d['line']}")
        elif d.get("port") and not any(h[2] == d["port"] for h in hits):
            wrong_port.append(f"{d['name']}: {[h[2] for h in hits]} != {d['port']}")
    creds = {
        (f["location"]["path"], f["location"]["line"])
        for f in report["findings"]
        if f["category"] == "credentials" or f["rule_id"] == "services.snmp-community"
    }
    missing_c = [
        f"{c['kind']} {c['account']} {c['file']}:{c['line']}"
        for c in truth.get("credentials", [])
        if (c["file"], c["line"]) not in creds
    ]
    nd, nc = len(truth.get("daemons", [])), len(truth.get("credentials", []))
    return {
        "daemons": (nd - len(missing_d), nd),
        "credentials": (nc - len(missing_c), nc),
        "missing_daemons": missing_d,
        "missing_credentials": missing_c,
        "wrong_port": wrong_port,
    }


def _recall(found_total: tuple[int, int]) -> float:
    found, total = found_total
    return found / total if total else 1.0


def test_truth_files_are_complete():
    assert len(TRUTHS) >= 11
    for name, truth in TRUTHS.items():
        assert truth["image"].endswith(name) and len(truth["sha256"]) == 64, name
        assert truth["daemons"], name
        for d in truth["daemons"]:
            assert {"name", "script", "line"} <= set(d), (name, d)
        for c in truth.get("credentials", []):
            assert {"kind", "account", "file", "line", "secret"} <= set(c), (name, c)
            assert c["secret"] == "" or c["secret"].startswith("sha256:")  # fingerprints only


def test_score_counts_what_the_truth_lists():
    truth = {
        "daemons": [{"name": "telnetd", "script": "/etc/init.d/S80telnetd.sh", "line": 7, "port": 23}],
        "credentials": [{"kind": "k", "account": "a", "file": "/etc/shadow", "line": 1, "secret": ""}],
    }
    report = {
        "services": [{"binary": "telnetd", "started_by": "script:/etc/init.d/S80telnetd.sh:7", "port": 2323}],
        "findings": [
            {"category": "credentials", "rule_id": "x", "location": {"path": "/etc/shadow", "line": 2}}
        ],
    }
    got = score(truth, report)
    assert got["daemons"] == (1, 1) and got["wrong_port"] == ["telnetd: [2323] != 23"]
    assert got["credentials"] == (0, 1)
    assert started_from("binary:/bin/cfm@0x1f00") == "/bin/cfm"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRUTHS), ids=lambda n: n[:48])
def test_scan_finds_boot_daemons_and_credentials(name, tmp_path):
    truth = TRUTHS[name]
    image = SHARED / truth["image"]
    if not image.exists():
        pytest.skip(f"{image} not present")
    run = scan_cli(image, tmp_path / "out", timeout=900)
    assert run.returncode in (0, 1), run.stderr
    got = score(truth, run.report)
    d, c = got["daemons"], got["credentials"]
    print(f"\n{name}: daemons {d[0]}/{d[1]} = {_recall(d):.2f}, credentials {c[0]}/{c[1]} = {_recall(c):.2f}")
    assert _recall(d) >= MIN_RECALL, got["missing_daemons"]
    assert _recall(c) >= MIN_RECALL, got["missing_credentials"]
    assert got["wrong_port"] == []
