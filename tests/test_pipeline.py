"""The pipeline: a stage that breaks is a finding, an error line and exit 3, never a silent absence."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cra_fw import pipeline
from cra_fw.cli import main
from cra_fw.context import ScanContext
from cra_fw.records import ScanReport

IMAGE = Path(__file__).resolve().parent.parent / "fixtures" / "images" / "sqfs-xz-armhf-libs.sqfs"


def test_a_stage_that_breaks_is_reported_and_fails_the_scan(tmp_path, monkeypatch):
    def broken(report: ScanReport, ctx: ScanContext) -> None:
        raise RuntimeError("simulated bug")

    stages = tuple((name, broken if name == "checks" else run) for name, run in pipeline.ANALYSIS_STAGES)
    monkeypatch.setattr(pipeline, "ANALYSIS_STAGES", stages)
    monkeypatch.setenv("CRA_FW_DB", str(tmp_path / "none.db"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(IMAGE), "-o", str(out), "-q"])
    assert result.exit_code == 3, result.output
    report = json.loads((out / "report.json").read_text())
    failed = [f for f in report["findings"] if f["rule_id"] == "checks.stage-failed"]
    assert len(failed) == 1 and "RuntimeError: simulated bug" in failed[0]["evidence"]
    assert "checks stage failed: RuntimeError: simulated bug" in report["errors"]
    assert report["hardening"] == [] and "seconds_checks" not in report["stats"]
    # the other stages still ran and reported
    assert report["components"] and "seconds_identify" in report["stats"]


def test_without_a_broken_stage_the_same_scan_exits_0(tmp_path, monkeypatch):
    monkeypatch.setenv("CRA_FW_DB", str(tmp_path / "none.db"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(IMAGE), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert not [f for f in report["findings"] if f["rule_id"].endswith(".stage-failed")]
    assert report["hardening"]
