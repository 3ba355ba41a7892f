"""The CRA Annex I checklist logic and the terminal summary."""

from __future__ import annotations

import dataclasses
import io

import pytest

from cra_fw.records import Finding, Location, Severity
from cra_fw.report import annex1, terminal
from tests.evidence.sample import sample_report


@pytest.mark.parametrize(
    "text, keys",
    [
        ("Annex I Part I (2)(a)", {"I.2.a"}),
        ("Annex I Part I (2)(b), (2)(d)", {"I.2.b", "I.2.d"}),
        ("Annex I Part I (2)(a); Part II 1-2", {"I.2.a", "II.1", "II.2"}),
        ("Annex I Part I (2)(c), (2)(f); Part II 7", {"I.2.c", "I.2.f", "II.7"}),
        ("Annex I Part II 1", {"II.1"}),
        ("Article 14(2)", {"Art.14(2)"}),
        ("Article 13(8)", {"Art.13(8)"}),
        ("Annex I Part II 9", set()),  # no such point
        ("something else", set()),
    ],
)
def test_parse_reference(text, keys):
    assert annex1.parse_reference(text) == keys


def statuses(report, **kw):
    return {r.point.key: r.status for r in annex1.assess(report, **kw).results}


def test_sample_checklist_exactly():
    got = statuses(sample_report())
    fail = {k for k, v in got.items() if v == annex1.FAIL}
    passed = {k for k, v in got.items() if v == annex1.PASS}
    # empty password (b, d), key (d, e), telnet (b, j), canary (k), open vulns and a KEV (a, II.2, Art.14)
    assert fail == {"I.2.a", "I.2.b", "I.2.d", "I.2.e", "I.2.j", "I.2.k", "II.2", "Art.14(2)"}
    # II.1: components identified; the vulnerability findings that cite it do not fail it; the info
    # high-entropy finding does not either
    assert passed == {"II.1"}
    assert got["I.2.c"] == got["I.2.f"] == got["II.7"] == annex1.NOT_ASSESSED  # no bundle in the image
    assert got["I.2.g"] == got["II.5"] == annex1.NOT_ASSESSED  # outside static analysis


def test_suppressed_and_info_findings_do_not_fail():
    report = sample_report()
    report.findings = [
        dataclasses.replace(f, suppressed=True) if f.category == "services" else f for f in report.findings
    ]
    got = statuses(report)
    assert got["I.2.j"] == annex1.PASS
    report.findings.append(
        Finding("hardening.note", "hardening", Severity.INFO, "note", ("Annex I Part I (2)(k)",))
    )
    report.findings = [f for f in report.findings if f.rule_id != "hardening.canary"]
    assert statuses(report)["I.2.k"] == annex1.PASS


def test_finding_without_reference_falls_back_to_category():
    f = Finding("hardening.nx", "hardening", Severity.HIGH, "exec stack", ())
    assert annex1.finding_points(f) == {"I.2.k"}
    f = Finding("services.x", "services", Severity.HIGH, "x", ())
    assert annex1.finding_points(f) == {"I.2.b", "I.2.j"}


def test_missing_stage_is_not_assessed():
    report = sample_report(with_checks=False)
    report.findings = [
        f for f in report.findings if f.category not in ("credentials", "secrets", "services", "hardening")
    ]
    got = statuses(report)
    for key in ("I.2.b", "I.2.d", "I.2.e", "I.2.j", "I.2.k"):
        assert got[key] == annex1.NOT_ASSESSED
    # a stage that failed on the image is not run either
    report = sample_report()
    report.findings = [f for f in report.findings if f.category != "hardening"]
    assert statuses(report)["I.2.k"] == annex1.PASS
    report.findings.append(Finding("checks.stage-failed", "checks", Severity.INFO, "broke", ()))
    assert statuses(report)["I.2.k"] == annex1.NOT_ASSESSED


def test_no_database_is_not_assessed_not_fail():
    report = sample_report(with_vulns=False)
    report.stats["seconds_vulns"] = 0.01
    report.findings.append(
        Finding(
            "vuln.no-database",
            "vulnerability",
            Severity.MEDIUM,
            "no db",
            ("Annex I Part I (2)(a)", "Annex I Part II 1"),
            Location(),
        )
    )
    got = statuses(report)
    assert got["I.2.a"] == got["II.2"] == got["Art.14(2)"] == annex1.NOT_ASSESSED
    # docs/evidence.md: a finding that only says a stage could not work makes the point
    # "not assessed", never "fail" (nor "pass")
    assert got["II.1"] == annex1.NOT_ASSESSED


def test_triaged_vulnerabilities_do_not_fail():
    report = sample_report()
    from cra_fw.vulns.records import Triage

    report.vulnerabilities = [
        dataclasses.replace(m, triage=Triage("not_affected", "code_not_present"))
        for m in report.vulnerabilities
    ]
    report.findings = [f for f in report.findings if f.category != "vulnerability"]
    got = statuses(report)
    assert got["I.2.a"] == got["II.2"] == got["Art.14(2)"] == annex1.PASS


def _support(start: str, end: str, months: int, justification: str = ""):
    from cra_fw.ledger.records import Product
    from cra_fw.ledger.support import ProductSupport, end_instant

    return ProductSupport(Product(1, "router"), start, end, months, justification, end_instant(end))


@pytest.mark.parametrize(
    "support, status",
    [
        (("2026-12", "2031-11", 60), annex1.PASS),
        (("2026-12", "2028-11", 24), annex1.FAIL),
        (("2026-12", "2028-11", 24, "expected use 2 years"), annex1.PASS),
        (("2020-02", "2025-01", 60), annex1.FAIL),
    ],
)
def test_support_period(support, status):
    assert statuses(sample_report(), support=_support(*support))["Art.13(8)"] == status


def test_terminal_summary_fits_a_screen_and_has_no_escapes():
    report = sample_report()
    report.findings = report.findings * 20
    text = terminal.summary(report, colour=False)
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 120
    assert "\x1b" not in text and "\x00" not in text
    assert "critical 40" in text and "KEV 1" in text
    assert "  failing: (2)(a), (2)(b), (2)(d), (2)(e), (2)(j), (2)(k), Part II 2, Article 14(2)" in lines
    assert "CVE-2021-3449 in openssl@1.1.1k  due 2022-05-03" in text
    assert "Actively exploited (KEV): CRA Article 14 reporting applies" in text
    assert "CRA checklist: 8 fail, 1 pass, 14 not assessed" in text
    assert "open vulnerabilities: 2 (critical 1, medium 1)" in text


def test_terminal_colour_only_on_a_tty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    report = sample_report()
    plain = io.StringIO()
    terminal.print_summary(report, plain)
    assert "\x1b[" not in plain.getvalue()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    terminal.print_summary(report, tty)
    assert "\x1b[1;37;41mcritical 2\x1b[0m" in tty.getvalue()
    # hostile escape sequences from the image never pass through, even in colour mode
    assert "\x1b]0;pwned" not in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    assert terminal.use_colour(Tty()) is False


def test_support_from_the_ledger_records():
    """The ledger's own ProductSupport / SupportIssue records decide Article 13(8)."""
    from datetime import UTC, datetime

    from cra_fw.ledger.records import Product
    from cra_fw.ledger.support import SHORT, ProductSupport, SupportIssue, end_instant

    product = Product(1, "router")
    ok = ProductSupport(product, "2026-01", "2031-12", 72, "", end_instant("2031-12"))
    short = ProductSupport(product, "2026-01", "2027-12", 24, "", end_instant("2027-12"))
    ended = ProductSupport(product, "2018-01", "2024-12", 84, "", end_instant("2024-12"))
    assert statuses(sample_report(), support=ok)["Art.13(8)"] == annex1.PASS
    assert statuses(sample_report(), support=short)["Art.13(8)"] == annex1.FAIL
    assert annex1.support_failures(ended, now=datetime(2026, 11, 27, tzinfo=UTC)) == [
        "support has ended (2024-12)"
    ]
    issues = [
        SupportIssue(SHORT, "router", "24 months, no justification"),
        SupportIssue("ending-soon", "router", "ends in 30 days"),
    ]
    assert annex1.support_failures(None, issues=issues) == [f"{SHORT}: 24 months, no justification"]
    assert statuses(sample_report(), issues=issues)["Art.13(8)"] == annex1.FAIL
