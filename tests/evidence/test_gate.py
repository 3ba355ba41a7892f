"""The exit-status table: each gate option alone, composed, and the JUnit report that mirrors it."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cra_fw import exitcodes, gate
from cra_fw.records import FileEntry, FileKind, Severity
from tests.evidence.sample import sample_report

ROOT = Path(__file__).resolve().parents[2]


def analysed(report):
    report.files = [FileEntry("L1", "/bin/busybox", FileKind.ELF, 1000, 0o755)]
    return report


@pytest.fixture
def report():
    return analysed(sample_report())


def test_one_table_of_statuses():
    assert (exitcodes.EXIT_OK, exitcodes.EXIT_GATE, exitcodes.EXIT_USAGE, exitcodes.EXIT_NOT_ANALYSED) == (
        0,
        1,
        2,
        3,
    )
    assert gate.EXIT_GATE is exitcodes.EXIT_GATE and gate.EXIT_NOT_ANALYSED is exitcodes.EXIT_NOT_ANALYSED


def test_documented_table_lists_every_status():
    doc = (ROOT / "docs" / "exit-status.md").read_text()
    rows = dict(re.findall(r"^\|\s*(\d)\s*\|(.+)\|\s*$", doc, re.M))
    assert sorted(int(k) for k in rows) == [s for s, _ in exitcodes.EXIT_STATUS_TABLE]
    for option in ("--fail-on", "--fail-on-vuln", "kev"):
        assert option in doc


def test_no_gate_is_exit_0_even_with_critical_findings(report):
    result = gate.evaluate(report)
    assert result.exit_status == 0 and result.hits == ()


# Sample report: unsuppressed critical (empty password, KEV finding), high (key, telnet), low (canary),
# info (high entropy); the medium one is suppressed.
@pytest.mark.parametrize(
    "level, status, rules",
    [
        ("critical", 1, ["credentials.empty-password", "vuln.actively-exploited"]),
        (
            "high",
            1,
            [
                "credentials.empty-password",
                "vuln.actively-exploited",
                "secrets.private-key",
                "services.telnet",
            ],
        ),
        (
            "medium",
            1,
            [
                "credentials.empty-password",
                "vuln.actively-exploited",
                "secrets.private-key",
                "services.telnet",
            ],
        ),
        (
            "low",
            1,
            [
                "credentials.empty-password",
                "vuln.actively-exploited",
                "secrets.private-key",
                "services.telnet",
                "hardening.canary",
            ],
        ),
    ],
)
def test_fail_on_each_level(report, level, status, rules):
    result = gate.evaluate(report, fail_on=level)
    assert result.exit_status == status
    assert sorted(h.id.split(":")[0] for h in result.hits) == sorted(rules)
    assert all(h.gate == "fail-on" for h in result.hits)
    assert "services.ssh-root-password" not in {h.id.split(":")[0] for h in result.hits}  # suppressed


def test_fail_on_passes_when_nothing_reaches_it(report):
    report.findings = [f for f in report.findings if f.severity.rank <= Severity.LOW.rank]
    assert gate.evaluate(report, fail_on="medium").exit_status == 0
    assert gate.evaluate(report, fail_on="low").exit_status == 1


@pytest.mark.parametrize(
    "level, advisories",
    [
        ("critical", {"CVE-2021-3711", "CVE-2021-3449"}),  # critical score, and KEV (medium score) trips too
        ("high", {"CVE-2021-3711", "CVE-2021-3449"}),  # CVE-2021-23840 (high) is triaged not_affected
        ("kev", {"CVE-2021-3449"}),
    ],
)
def test_fail_on_vuln_each_level(report, level, advisories):
    result = gate.evaluate(report, fail_on_vuln=level)
    assert result.exit_status == 1
    assert {h.id for h in result.hits} == advisories
    assert all(h.gate == "fail-on-vuln" for h in result.hits)


def test_fail_on_vuln_passes_without_open_matches(report):
    report.vulnerabilities = [
        dataclasses.replace(m, kev=False) for m in report.vulnerabilities if m.advisory_id != "CVE-2021-3711"
    ]
    assert gate.evaluate(report, fail_on_vuln="kev").exit_status == 0
    assert gate.evaluate(report, fail_on_vuln="critical").exit_status == 0
    # CVE-2021-3449 is medium: passes high, fails medium
    assert gate.evaluate(report, fail_on_vuln="high").exit_status == 0
    assert gate.evaluate(report, fail_on_vuln="medium").exit_status == 1


def test_fail_on_vuln_fails_closed_when_vulns_not_assessed():
    report = analysed(sample_report(with_vulns=False))
    result = gate.evaluate(report, fail_on_vuln="kev")
    assert result.exit_status == 1 and [h.id for h in result.hits] == ["vulns.not-assessed"]
    # without the vuln gate, the same report passes
    assert gate.evaluate(report).exit_status == 0


def test_no_components_means_nothing_to_match():
    report = analysed(sample_report(with_vulns=False))
    report.components = []
    assert gate.evaluate(report, fail_on_vuln="critical").exit_status == 0


def test_gates_compose(report):
    both = gate.evaluate(report, fail_on="high", fail_on_vuln="kev")
    assert both.exit_status == 1
    assert {h.gate for h in both.hits} == {"fail-on", "fail-on-vuln"}
    report.findings = [f for f in report.findings if f.severity.rank < Severity.HIGH.rank]
    only_vuln = gate.evaluate(report, fail_on="high", fail_on_vuln="kev,critical")
    assert only_vuln.exit_status == 1 and {h.gate for h in only_vuln.hits} == {"fail-on-vuln"}
    assert only_vuln.fail_on_vuln == ("kev", "critical")


def test_not_analysed_wins_over_the_gate():
    report = sample_report()
    report.files = []
    report.errors = ["no known format found in x.bin"]
    result = gate.evaluate(report, fail_on="low", fail_on_vuln="kev")
    assert result.exit_status == 3 and result.not_analysed
    assert gate.evaluate(report).exit_status == 3


@pytest.mark.parametrize(
    "kwargs",
    [{"fail_on": "info"}, {"fail_on": "severe"}, {"fail_on_vuln": "epss"}, {"fail_on_vuln": "high,bogus"}],
)
def test_bad_gate_values_are_clear_errors(report, kwargs):
    with pytest.raises(gate.GateError, match="use one of"):
        gate.evaluate(report, **kwargs)


def test_summary_names_the_reasons(report):
    text = gate.evaluate(report, fail_on="critical").summary()
    assert "FAILED" in text and "credentials.empty-password" in text and "exit 1" in text
    assert gate.evaluate(report, fail_on="critical", fail_on_vuln=None).passed is False
    report.findings = []
    assert gate.evaluate(report, fail_on="critical").summary() == "gate: passed (exit 0)"


def _junit(report, tmp_path, **kw):
    result = gate.evaluate(report, **kw)
    path = gate.write_junit(report, result, tmp_path / "junit.xml")
    return result, ET.parse(path).getroot()


def test_junit_failures_mirror_the_gate(report, tmp_path):
    result, root = _junit(report, tmp_path, fail_on="high", fail_on_vuln="kev")
    assert result.exit_status == 1
    failures = [tc for tc in root.iter("testcase") if tc.find("failure") is not None]
    names = sorted(tc.get("name").split(" ")[0] for tc in failures)
    assert names == [
        "CVE-2021-3449",
        "credentials.empty-password",
        "secrets.private-key",
        "services.telnet",
        "vuln.actively-exploited",
    ]
    assert int(root.get("failures")) == 5
    assert int(root.get("tests")) == 1 + len(report.findings) + len(report.vulnerabilities)
    skipped = sorted(
        tc.get("name").split(" ")[0] for tc in root.iter("testcase") if tc.find("skipped") is not None
    )
    assert skipped == ["CVE-2021-23840", "services.ssh-root-password"]  # triaged and suppressed


def test_junit_passing_gate_has_no_failures(report, tmp_path):
    result, root = _junit(report, tmp_path)
    assert result.exit_status == 0 and root.get("failures") == "0" and root.get("errors") == "0"


def test_junit_not_analysed_is_an_error(tmp_path):
    report = sample_report()
    report.files, report.errors = [], ["nothing found"]
    result, root = _junit(report, tmp_path, fail_on="low")
    assert result.exit_status == 3 and root.get("errors") == "1"


def test_junit_survives_hostile_strings(report, tmp_path):
    _result, root = _junit(report, tmp_path, fail_on="low")
    text = ET.tostring(root, encoding="unicode")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "\x1b" not in text and "\x00" not in text


def test_finish_scan_writes_junit_and_pack_and_returns_the_status(report, tmp_path):
    import zipfile

    from cra_fw import jsonout
    from cra_fw.cli.evidence import finish_scan

    (tmp_path / "report.json").write_text(jsonout.dumps(report))
    junit = tmp_path / "junit.xml"
    status = finish_scan(
        report,
        tmp_path,
        fail_on="high",
        fail_on_vuln=("kev",),
        junit=junit,
        pack=True,
        db_path=tmp_path / "no-such.db",
    )
    assert status == 1
    assert ET.parse(junit).getroot().get("failures") == "5"
    with zipfile.ZipFile(tmp_path / "evidence.zip") as zf:
        assert zf.namelist() == ["manifest.json", "report.json", "junit.xml"]
    assert finish_scan(report, tmp_path) == 0


def test_gate_options_on_a_command():
    import click
    from click.testing import CliRunner

    from cra_fw.cli.evidence import check_gate_values, gate_options

    @click.command()
    @gate_options
    def cmd(fail_on, fail_on_vuln, junit, pack):
        click.echo(f"{fail_on} {check_gate_values(fail_on_vuln)} {junit} {pack}")

    runner = CliRunner()
    out = runner.invoke(cmd, ["--fail-on", "HIGH", "--fail-on-vuln", "critical,kev", "--pack"])
    assert out.exit_code == 0 and out.output.strip() == "high ('critical', 'kev') None True"
    bad = runner.invoke(cmd, ["--fail-on-vuln", "epss"])
    assert bad.exit_code == 2 and "use one of" in bad.output
    bad = runner.invoke(cmd, ["--fail-on", "info"])
    assert bad.exit_code == 2
