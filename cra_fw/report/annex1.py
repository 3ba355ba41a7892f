"""The CRA Annex I checklist: which findings and which stages decide each point.

Each point is data (:data:`POINTS`): its reference, the stages whose run makes it
assessable, and the finding categories / rule-id prefixes that decide it when a
finding carries no CRA reference.  :func:`assess` turns a
:class:`~cra_fw.records.ScanReport` into one :class:`PointResult` per point:

* ``fail``: at least one unsuppressed finding of severity low or above cites the
  point (or, without any citation, belongs to its categories / rule prefixes), or
  a record of a deciding stage proves it (an open vulnerability match, a KEV
  entry, a support period that ended);
* ``pass``: every deciding stage ran on this image, did not fail, and nothing
  above was found;
* ``not assessed``: a deciding stage did not run (not installed, no feed
  database, stage failure) or the point is outside what static analysis of an
  image can show (process obligations, data minimisation, logging...).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cra_fw.records import AssessmentStatus, Finding, ScanReport, Severity

if TYPE_CHECKING:
    from cra_fw.bundles.interface import BundleVerdict
    from cra_fw.ledger.support import ProductSupport, SupportIssue
    from cra_fw.vulns.records import VulnMatch

PASS = "pass"
FAIL = "fail"
NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class AnnexPoint:
    """One checklist point and what decides it."""

    key: str  # normalised reference, e.g. "I.2.a", "II.7", "Art.14(2)"
    reference: str  # as findings cite it
    title: str
    stages: tuple[str, ...] = ()  # all must have run for a pass; () = never assessable statically
    categories: tuple[str, ...] = ()  # fallback for findings without a CRA reference
    rule_prefixes: tuple[str, ...] = ()
    needs: str = ""  # a record list that must be non-empty for a pass (components, bundles, support)
    needs_reason: str = ""  # why the point is not assessed when ``needs`` is empty
    scope_note: str = ""  # why it is never assessed statically
    ignore_rules: tuple[str, ...] = ()  # rule ids that cite the point but do not decide it
    records_only: bool = False  # decided by stage records (vulnerability matches, support), not findings


def _update_point(key: str, reference: str, title: str) -> AnnexPoint:
    """A point the update-signature stage decides (bundle verdicts, update keys)."""
    return AnnexPoint(
        key,
        reference,
        title,
        stages=("bundles",),
        categories=("update",),
        rule_prefixes=("bundle.", "update."),
        needs="bundles",
        needs_reason="no update bundle or update verification key found in the image",
    )


POINTS: tuple[AnnexPoint, ...] = (
    AnnexPoint(
        "I.2.a",
        "Annex I Part I (2)(a)",
        "No known exploitable vulnerabilities",
        stages=("identify", "vulns"),
        categories=("vulnerability",),
        rule_prefixes=("vuln.",),
        needs="components",
        needs_reason="no components identified: nothing to match",
    ),
    AnnexPoint(
        "I.2.b",
        "Annex I Part I (2)(b)",
        "Secure by default configuration",
        stages=("checks",),
        categories=("credentials", "services"),
    ),
    _update_point("I.2.c", "Annex I Part I (2)(c)", "Vulnerabilities addressable by security updates"),
    AnnexPoint(
        "I.2.d",
        "Annex I Part I (2)(d)",
        "Protection from unauthorised access",
        stages=("checks",),
        categories=("credentials", "secrets"),
    ),
    AnnexPoint(
        "I.2.e",
        "Annex I Part I (2)(e)",
        "Confidentiality of data (encryption at rest and in transit)",
        stages=("checks",),
        categories=("secrets",),
    ),
    _update_point("I.2.f", "Annex I Part I (2)(f)", "Integrity of data, programs and configuration"),
    AnnexPoint(
        "I.2.g",
        "Annex I Part I (2)(g)",
        "Data minimisation",
        scope_note="a design property: not visible in a firmware image",
    ),
    AnnexPoint(
        "I.2.h",
        "Annex I Part I (2)(h)",
        "Availability of essential functions",
        scope_note="needs testing of the running device",
    ),
    AnnexPoint(
        "I.2.i",
        "Annex I Part I (2)(i)",
        "Limited impact on other devices and networks",
        scope_note="needs testing of the running device",
    ),
    AnnexPoint(
        "I.2.j",
        "Annex I Part I (2)(j)",
        "Limited attack surface",
        stages=("checks",),
        categories=("services",),
    ),
    AnnexPoint(
        "I.2.k",
        "Annex I Part I (2)(k)",
        "Exploit mitigation",
        stages=("checks",),
        categories=("hardening",),
        rule_prefixes=("hardening.",),
    ),
    AnnexPoint(
        "I.2.l",
        "Annex I Part I (2)(l)",
        "Security logging and monitoring",
        scope_note="not checked by cra-fw",
    ),
    AnnexPoint(
        "I.2.m",
        "Annex I Part I (2)(m)",
        "Secure removal of data and settings",
        scope_note="needs testing of the running device",
    ),
    AnnexPoint(
        "II.1",
        "Annex I Part II 1",
        "Components and vulnerabilities identified (SBOM)",
        stages=("identify",),
        categories=("sbom", "unpack"),
        rule_prefixes=("sbom.", "unpack."),
        ignore_rules=("vuln.known-vulnerability", "vuln.actively-exploited"),
        needs="components",
        needs_reason="no components identified in the image",
    ),
    AnnexPoint(
        "II.2",
        "Annex I Part II 2",
        "Vulnerabilities remediated without delay",
        stages=("identify", "vulns"),
        needs="components",
        records_only=True,
        needs_reason="no components identified: nothing to match",
    ),
    AnnexPoint(
        "II.3",
        "Annex I Part II 3",
        "Regular security testing and review",
        scope_note="a process obligation: evidenced by repeated scans in the ledger",
    ),
    AnnexPoint(
        "II.4",
        "Annex I Part II 4",
        "Public disclosure of fixed vulnerabilities",
        scope_note="a process obligation",
    ),
    AnnexPoint(
        "II.5",
        "Annex I Part II 5",
        "Coordinated vulnerability disclosure policy",
        scope_note="a process obligation",
    ),
    AnnexPoint(
        "II.6",
        "Annex I Part II 6",
        "Contact address for vulnerability reports",
        scope_note="a process obligation",
    ),
    _update_point("II.7", "Annex I Part II 7", "Secure distribution of updates (signed updates)"),
    AnnexPoint(
        "II.8",
        "Annex I Part II 8",
        "Security updates disseminated without delay",
        scope_note="a process obligation",
    ),
    AnnexPoint(
        "Art.14(2)",
        "Article 14(2)",
        "No actively exploited vulnerability (KEV) to report",
        stages=("identify", "vulns"),
        needs="components",
        needs_reason="no components identified: nothing to match",
    ),
    AnnexPoint(
        "Art.13(8)",
        "Article 13(8)",
        "Support period of at least 5 years, not ended",
        needs="support",
        needs_reason="no support period known for this release (see `cra-fw support`)",
    ),
)

_POINT_KEYS = {p.key for p in POINTS}

# the assessment topic (report.assessments) of each stage a point depends on
STAGE_TOPICS = {
    "identify": "components",
    "vulns": "vulnerabilities",
    "checks": "checks",
    "bundles": "bundles",
}

# Findings that say a stage could not assess the image (not that the image is at fault): for the
# points that stage decides they mean "not assessed", not "fail".
ASSESSMENT_GAPS = {"vuln.no-database": "vulns", "vuln.database-error": "vulns"}


@dataclass(frozen=True)
class PointResult:
    """The verdict on one point, with what decided it."""

    point: AnnexPoint
    status: str  # PASS, FAIL, NOT_ASSESSED
    reason: str
    findings: tuple[Finding, ...] = ()  # failing findings first, then info/suppressed ones
    records: tuple[str, ...] = ()  # one line per record that decided it (vulnerability, support)


@dataclass(frozen=True)
class Checklist:
    results: tuple[PointResult, ...]
    stages_run: frozenset[str] = field(default_factory=frozenset)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


_PART_I = re.compile(r"Part\s+I\b(?!I)(.*?)(?=Part\s+II|Article|$)", re.S)
_PART_II = re.compile(r"Part\s+II\b(.*?)(?=Part\s+I\b(?!I)|Article|$)", re.S)
_LETTER = re.compile(r"\(2\)\s*\(([a-m])\)|\(([a-m])\)")
_NUMBER = re.compile(r"(\d+)\s*(?:[-\u2013]\s*(\d+))?")
_ARTICLE = re.compile(r"Article\s+(\d+)\s*\((\d+)\)")


def parse_reference(text: str) -> set[str]:
    """Point keys cited by one reference string.

    Handles the forms findings use: ``"Annex I Part I (2)(b), (2)(d)"``,
    ``"Annex I Part I (2)(a); Part II 1-2"``, ``"Annex I Part II 7"``,
    ``"Article 14(2)"``.
    """
    keys: set[str] = set()
    for match in _ARTICLE.finditer(text):
        keys.add(f"Art.{match.group(1)}({match.group(2)})")
    for match in _PART_I.finditer(text):
        for letter in _LETTER.finditer(match.group(1)):
            keys.add(f"I.2.{letter.group(1) or letter.group(2)}")
    for match in _PART_II.finditer(text):
        body = _ARTICLE.sub("", match.group(1))
        for num in _NUMBER.finditer(body):
            lo = int(num.group(1))
            hi = int(num.group(2)) if num.group(2) else lo
            for n in range(lo, min(hi, 8) + 1):
                keys.add(f"II.{n}")
    return {k for k in keys if k in _POINT_KEYS}


def finding_points(finding: Finding) -> set[str]:
    """Point keys a finding decides: its CRA references, else its category / rule prefix."""
    keys: set[str] = set()
    for ref in finding.cra_reference:
        keys |= parse_reference(str(ref))
    if keys:
        return keys
    for point in POINTS:
        if finding.category in point.categories or any(
            finding.rule_id.startswith(p) for p in point.rule_prefixes
        ):
            keys.add(point.key)
    return keys


def stages_run(report: ScanReport) -> frozenset[str]:
    """Stages that ran to the end on this image.

    The pipeline records ``seconds_<stage>`` in ``stats`` for each stage it ran
    and a ``<stage>.stage-failed`` finding for each that broke; a stage whose
    records are present counts as run even without a timing.
    """
    if report.assessments:
        # the typed record of what ran (pipeline): a stage whose topic was not assessed did not run
        return frozenset(
            stage
            for stage, topic in STAGE_TOPICS.items()
            if report.assessment(topic).status != AssessmentStatus.NOT_ASSESSED
        )
    ran = {key[len("seconds_") :] for key in report.stats if key.startswith("seconds_")}
    if report.components:
        ran.add("identify")
    if report.vulnerabilities:
        ran.add("vulns")
    if report.hardening or report.services:
        ran.add("checks")
    if report.bundles:
        ran.add("bundles")
    failed = {f.rule_id.split(".", 1)[0] for f in report.findings if f.rule_id.endswith(".stage-failed")}
    failed |= {ASSESSMENT_GAPS[f.rule_id] for f in report.findings if f.rule_id in ASSESSMENT_GAPS}
    return frozenset(ran - failed)


def _vuln_line(match: VulnMatch) -> str:
    sev = match.severity.value if match.severity else "unscored"
    kev = " KEV" if match.kev else ""
    fixed = f", fixed in {match.fixed_version}" if match.fixed_version else ""
    return f"{match.advisory_id} in {match.component_key} ({sev}{kev}){fixed}"


def bundle_failures(bundles: Iterable[BundleVerdict]) -> list[str]:
    """Update bundles whose verdict shows a problem (unsigned, partially signed, bad or weak signature).

    ``untrusted_signer`` without any trust anchor given (``trusted`` false) only
    means the scan could not check the signer: not a failure of the image.
    """
    out = []
    for b in bundles:
        verdict = b.verdict.value
        if verdict == "valid":
            continue
        if verdict == "untrusted_signer" and not b.trusted:
            continue
        out.append(f"{b.path} ({b.format}): {verdict}" + (f": {b.reason}" if b.reason else ""))
    return out


def support_failures(
    support: ProductSupport | None, now: dt.datetime | None = None, issues: Iterable[SupportIssue] = ()
) -> list[str]:
    """Problems of the release's support period: ended, or under 5 years without justification.

    ``support`` is the ledger's record; ``issues`` what the ledger's support review found
    ("ending soon" is a warning, not a failure).
    """
    problems: list[str] = []
    if support is not None:
        when = now or dt.datetime.now(dt.UTC)
        if support.ends_at is not None and support.ends_at <= when:
            problems.append(f"support has ended ({support.end_month})")
        if support.months < 60 and not support.justification:
            problems.append(f"support period of {support.months} months (< 5 years) without justification")
    for issue in issues:
        if issue.kind == "ending-soon":
            continue
        text = f"{issue.kind}: {issue.detail}"
        if text not in problems:
            problems.append(text)
    return problems


def _topics(point: AnnexPoint) -> tuple[str, ...]:
    """The assessment topics a point's verdict rests on (KEV for Article 14(2))."""
    topics = tuple(STAGE_TOPICS.get(s, s) for s in point.stages)
    return (*topics, "kev") if point.key == "Art.14(2)" else topics


def _topic_reason(report: ScanReport, stage: str) -> str:
    topic = STAGE_TOPICS.get(stage, stage)
    if report.assessments:
        return f"{topic} not assessed: {report.assessment(topic).reason}"
    return f"stage not run: {stage}"


def assess(
    report: ScanReport,
    support: ProductSupport | None = None,
    ran: Iterable[str] | None = None,
    issues: Iterable[SupportIssue] = (),
) -> Checklist:
    """The checklist for ``report``; ``support`` is the release's support record when known,
    ``issues`` what the ledger's support review found for it."""
    done = frozenset(ran) if ran is not None else stages_run(report)
    by_point: dict[str, list[Finding]] = {p.key: [] for p in POINTS}
    for f in report.findings:
        if f.rule_id.endswith(".stage-failed"):
            continue
        for key in finding_points(f):
            by_point[key].append(f)
    issues = tuple(issues)
    open_vulns = [m for m in report.vulnerabilities if m.open]
    kev = [m for m in open_vulns if m.exploited_here]  # a possible match is never actively exploited here
    fixable = [m for m in open_vulns if m.fixed_version]
    needs_present = {
        "components": bool(report.components),
        "bundles": bool(report.bundles),
        "support": support is not None or bool(issues),
    }

    results = []
    for point in POINTS:
        found = [f for f in by_point[point.key] if f.rule_id not in point.ignore_rules]
        # a finding that only says a stage could not work never makes a point fail
        gaps = [f for f in found if f.rule_id in ASSESSMENT_GAPS]
        if gaps:
            gap_ids = {id(f) for f in gaps}
            found = [f for f in found if id(f) not in gap_ids]
        failing = [f for f in found if not f.suppressed and f.severity.rank >= Severity.LOW.rank]
        failing.sort(key=lambda f: -f.severity.rank)
        failing_ids = {id(f) for f in failing}  # identity: equal findings at two places stay two
        rest = [f for f in found if id(f) not in failing_ids] + gaps
        records: list[str] = []
        if point.key == "I.2.a":
            records = [_vuln_line(m) for m in open_vulns]
        elif point.key == "II.2":
            records = [_vuln_line(m) for m in fixable]
        elif point.key == "Art.14(2)":
            records = [_vuln_line(m) for m in kev]
        elif point.key == "Art.13(8)":
            records = support_failures(support, issues=issues)
        elif point.key in ("I.2.c", "I.2.f", "II.7"):
            records = bundle_failures(report.bundles)
        if point.records_only:
            failing, rest = [], found + gaps
        if failing or records:
            reason = "; ".join(
                filter(
                    None,
                    [
                        f"{len(failing)} finding(s)" if failing else "",
                        f"{len(records)} record(s)" if records else "",
                    ],
                )
            )
            results.append(PointResult(point, FAIL, reason, tuple(failing + rest), tuple(records)))
            continue
        if point.scope_note:
            results.append(PointResult(point, NOT_ASSESSED, point.scope_note, tuple(rest)))
            continue
        if gaps:  # a stage said it could not judge this point: never a pass
            results.append(PointResult(point, NOT_ASSESSED, "; ".join(f.title for f in gaps), tuple(rest)))
            continue
        missing = [s for s in point.stages if s not in done]
        if report.assessments:
            missing += [
                t
                for t in _topics(point)
                if t not in STAGE_TOPICS.values()
                and report.assessment(t).status == AssessmentStatus.NOT_ASSESSED
            ]
        if missing:
            why = [_topic_reason(report, s) for s in missing]
            results.append(PointResult(point, NOT_ASSESSED, "; ".join(why), tuple(rest)))
            continue
        partly = [
            f"{topic} only partly assessed: {report.assessment(topic).reason}"
            for topic in _topics(point)
            if report.assessments and report.assessment(topic).status == AssessmentStatus.PARTIAL
        ]
        if partly:
            results.append(PointResult(point, NOT_ASSESSED, "; ".join(partly), tuple(rest)))
            continue
        if point.needs and not needs_present.get(point.needs, False):
            results.append(PointResult(point, NOT_ASSESSED, point.needs_reason, tuple(rest)))
            continue
        results.append(PointResult(point, PASS, "assessed, nothing found", tuple(rest)))
    return Checklist(tuple(results), done)
