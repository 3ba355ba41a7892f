"""The pipeline: a stage that breaks is a finding, an error line and exit 3, never a silent absence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

IMAGE = Path(__file__).resolve().parent.parent / "fixtures" / "images" / "sqfs-xz-armhf-libs.sqfs"

# The real CLI in a fresh process, with one analysis stage replaced by one that raises (a
# stand-in for a bug: no real input is known to break a stage, or it would be fixed).
_BREAK_CHECKS = """
import sys
from cra_fw import pipeline
def broken(report, ctx):
    raise RuntimeError("simulated bug")
pipeline.ANALYSIS_STAGES = tuple(
    (name, broken if name == "checks" else run) for name, run in pipeline.ANALYSIS_STAGES
)
from cra_fw.cli import main
sys.argv[0] = "cra-fw"
main()
"""


def _scan(tmp_path: Path, *, break_checks: bool) -> tuple[int, dict]:
    out = tmp_path / "out"
    code = _BREAK_CHECKS if break_checks else "from cra_fw.cli import main; main()"
    env = dict(os.environ, CRA_FW_DB=str(tmp_path / "none.db"))
    proc = subprocess.run(
        [sys.executable, "-c", code, "scan", str(IMAGE), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    return proc.returncode, json.loads((out / "report.json").read_text())


def test_a_stage_that_breaks_is_reported_and_fails_the_scan(tmp_path):
    status, report = _scan(tmp_path, break_checks=True)
    assert status == 3
    failed = [f for f in report["findings"] if f["rule_id"] == "checks.stage-failed"]
    assert len(failed) == 1 and "RuntimeError: simulated bug" in failed[0]["evidence"]
    assert "checks stage failed: RuntimeError: simulated bug" in report["errors"]
    assert report["hardening"] == [] and "seconds_checks" not in report["stats"]
    # the other stages still ran and reported
    assert report["components"] and "seconds_identify" in report["stats"]


def test_without_a_broken_stage_the_same_scan_exits_0(tmp_path):
    status, report = _scan(tmp_path, break_checks=False)
    assert status == 0
    assert not [f for f in report["findings"] if f["rule_id"].endswith(".stage-failed")]
    assert report["hardening"] and "seconds_checks" in report["stats"]
