"""Policy files (YAML and TOML), suppressions with expiry, and --fail-on."""

from __future__ import annotations

import datetime as dt

import pytest

from cra_fw.checks.policy import Policy, Suppression, apply_policy, load_policy
from cra_fw.errors import PolicyError
from cra_fw.exitcodes import EXIT_GATE
from cra_fw.gate import GateError, evaluate, parse_fail_on
from cra_fw.records import (
    Assessment,
    AssessmentStatus,
    FileEntry,
    FileKind,
    Finding,
    ImageInfo,
    Location,
    ScanReport,
    Severity,
    ToolInfo,
)


def f(rule: str, sev: Severity, path: str) -> Finding:
    return Finding(
        rule_id=rule,
        category=rule.split(".", maxsplit=1)[0],
        severity=sev,
        title=rule,
        cra_reference=(),
        location=Location(layer_chain=("L0:raw", "L1:squashfs"), path=path),
    )


FINDINGS = [
    f("credentials.default-password", Severity.CRITICAL, "/etc/shadow"),
    f("services.telnet", Severity.HIGH, "/etc/inittab"),
    f("hardening.pie", Severity.LOW, "/bin/busybox"),
    f("hardening.pie", Severity.LOW, "/usr/sbin/dropbear"),
]
TODAY = dt.date(2027, 3, 1)


def test_yaml_policy_suppresses_by_id_and_path(tmp_path):
    p = tmp_path / "policy.yaml"
    p.write_text(
        "fail_on: high\n"
        "suppress:\n"
        "  - id: hardening.pie\n    path: /bin/*\n    reason: busybox is rebuilt as PIE in 2.1\n"
        "    expires: 2027-06-30\n"
        "  - id: services.telnet\n    reason: factory test image only\n    expires: 2027-01-31\n"
    )
    policy = load_policy(p)
    assert policy.fail_on == Severity.HIGH
    out, expired = apply_policy(FINDINGS, policy, today=TODAY)
    assert [x.suppressed for x in out] == [False, False, True, False]  # telnet's suppression expired
    assert out[2].suppression_reason == "busybox is rebuilt as PIE in 2.1 (until 2027-06-30)"
    assert [s.id for s in expired] == ["services.telnet"]
    assert len(out) == len(FINDINGS)  # suppressed findings are kept


def test_toml_policy_and_finding_id(tmp_path):
    target = FINDINGS[0]
    p = tmp_path / "policy.toml"
    p.write_text(f'[[suppress]]\nid = "{target.id}"\nreason = "lab unit"\nexpires = 2027-12-31\n')
    out, _ = apply_policy(FINDINGS, load_policy(p), today=TODAY)
    assert [x.suppressed for x in out] == [True, False, False, False]


def _status(findings, fail_on):
    report = ScanReport(image=ImageInfo("x", 1, "", "", ""), tool=ToolInfo("cra-fw", "0"), started="")
    report.files.append(FileEntry("L1", "/x", FileKind.DATA, 1, 0o644))
    report.assessments.append(Assessment("unpack", AssessmentStatus.COMPLETE))
    report.findings.extend(findings)
    return evaluate(report, fail_on=fail_on).exit_status


def test_fail_on_counts_only_unsuppressed_at_or_above():
    assert _status(FINDINGS, Severity.CRITICAL) == EXIT_GATE == 1
    assert _status(FINDINGS, None) == 0
    sup = Policy(
        (
            Suppression("credentials.default-password", "x", dt.date(2030, 1, 1)),
            Suppression("services.telnet", "x", dt.date(2030, 1, 1)),
        )
    )
    out, _ = apply_policy(FINDINGS, sup, today=TODAY)
    assert _status(out, Severity.HIGH) == 0
    assert _status(out, Severity.LOW) == 1
    assert parse_fail_on("Medium") == Severity.MEDIUM
    assert parse_fail_on("none") is None
    with pytest.raises(GateError, match="critical, high, medium, low"):
        parse_fail_on("info")


@pytest.mark.parametrize(
    "text,message",
    [
        ("suppress:\n  - id: x\n    reason: r\n", "missing expires"),
        ("suppress:\n  - id: x\n    reason: r\n    expires: soon\n", "not a date"),
        ("suppress: 3\n", "must be a list"),
        ("- just a list\n", "expected a mapping"),
        ("suppress: [\n", "not valid"),
    ],
)
def test_malformed_policy_says_what_is_wrong(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policy(p)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_apply_to_report_in_place(tmp_path):
    from cra_fw.checks.policy import apply_to_report
    from cra_fw.records import ImageInfo, ScanReport, ToolInfo

    report = ScanReport(image=ImageInfo("x.bin", 0, "", "", ""), tool=ToolInfo("cra-fw", "0"), started="")
    report.findings = list(FINDINGS)
    p = tmp_path / "p.toml"
    p.write_text(
        'fail_on = "low"\n[[suppress]]\nid = "services.telnet"\nreason = "r"\nexpires = 2099-01-01\n'
    )
    policy, expired = apply_to_report(report, p)
    assert policy.fail_on == Severity.LOW and expired == []
    assert [x.suppressed for x in report.findings] == [False, True, False, False]
    assert apply_to_report(report, None)[0] == Policy()
