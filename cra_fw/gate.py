"""The CI gate: one exit status from ``--fail-on`` and ``--fail-on-vuln``, and a JUnit report.

Exit-status table (also in docs/exit-status.md; ``cra-fw scan`` uses it):

====== ==================================================================================
status meaning
====== ==================================================================================
0      scan complete; no gate given, or nothing reached a given gate
1      a gate failed: ``--fail-on SEV``: an unsuppressed finding of severity SEV or
       higher; ``--fail-on-vuln critical|high|medium|low``: an open (not triaged away)
       vulnerability match of that severity or higher, or listed in CISA KEV;
       ``--fail-on-vuln kev``: an open match listed in CISA KEV; any ``--fail-on-vuln`` when vulnerabilities could not
       be assessed (no feed database, stage failure): the gate fails closed
2      usage error, or the input cannot be read (no report written)
3      the image was read but nothing in it could be analysed; wins over 1, because no
       gate can vouch for an image that was not analysed
====== ==================================================================================

The gate options compose: each adds reasons to fail, and the status is 1 when any
of them has one.  :func:`evaluate` is pure: it reads the report and returns a
:class:`GateResult`; the CLI prints ``result.summary()`` and exits with
``result.exit_status``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cra_fw.errors import CraFwError
from cra_fw.exitcodes import EXIT_GATE, EXIT_NOT_ANALYSED, EXIT_OK
from cra_fw.records import AssessmentStatus, Finding, ScanReport, Severity
from cra_fw.report.annex1 import stages_run

if TYPE_CHECKING:  # the scan command imports the gate: keep the vulnerability stage (and SQLite) out
    from cra_fw.vulns.records import VulnMatch

VULN_GATES = ("critical", "high", "medium", "low", "kev")


class GateError(CraFwError):
    """A gate option has a value cra-fw does not know."""


@dataclass(frozen=True)
class GateHit:
    """One reason the gate failed."""

    gate: str  # "fail-on" | "fail-on-vuln"
    id: str  # finding id, advisory id, or a pseudo id such as "vulns.not-assessed"
    severity: str
    title: str
    location: str = ""


@dataclass(frozen=True)
class GateResult:
    exit_status: int
    hits: tuple[GateHit, ...]
    fail_on: Severity | None
    fail_on_vuln: tuple[str, ...]
    not_analysed: bool = False
    failed_stages: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the gate could only partly judge (partial coverage, feeds)

    @property
    def passed(self) -> bool:
        return self.exit_status == EXIT_OK

    def summary(self, limit: int = 10) -> str:
        """A few lines for the terminal."""
        if self.failed_stages:
            return f"gate: the {', '.join(self.failed_stages)} stage failed, so the analysis is incomplete (exit 3)"
        if self.not_analysed:
            return "gate: nothing in the image could be analysed (exit 3)"
        if not self.fail_on and not self.fail_on_vuln:
            return "gate: no --fail-on/--fail-on-vuln given (exit 0)"
        notes = [f"  note: {n}" for n in self.notes]
        if not self.hits:
            return "\n".join(["gate: passed (exit 0)", *notes])
        lines = [f"gate: FAILED with {len(self.hits)} reason(s) (exit {self.exit_status})"]
        for hit in self.hits[:limit]:
            where = f" at {hit.location}" if hit.location else ""
            lines.append(f"  --{hit.gate}: [{hit.severity}] {hit.id}: {hit.title}{where}")
        if len(self.hits) > limit:
            lines.append(f"  ... and {len(self.hits) - limit} more")
        return "\n".join([*lines, *notes])


def parse_fail_on(value: str | Severity | None) -> Severity | None:
    """'critical'|'high'|'medium'|'low' to a Severity; None, '', 'none' or 'never' to None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "never")):
        return None
    if isinstance(value, Severity):
        return value
    try:
        sev = Severity.parse(value)
    except ValueError:
        sev = None
    if sev is None or sev == Severity.INFO:
        raise GateError(f"--fail-on {value!r}: use one of critical, high, medium, low")
    return sev


def parse_fail_on_vuln(values: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"high"``, ``"high,kev"`` or a sequence of those, validated and de-duplicated."""
    if not values:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in VULN_GATES:
                raise GateError(f"--fail-on-vuln {part!r}: use one of {', '.join(VULN_GATES)}")
            if part not in out:
                out.append(part)
    return tuple(out)


def failed_stages(report: ScanReport) -> tuple[str, ...]:
    """Stages that broke on this image (each left a ``<stage>.stage-failed`` finding)."""
    return tuple(f.category for f in report.findings if f.rule_id.endswith(".stage-failed"))


def not_analysed(report: ScanReport) -> bool:
    """The image was read but nothing could be analysed, or a stage failed (the scan CLI's exit 3)."""
    if failed_stages(report):
        return True
    if not report.assessments:  # a report built without the pipeline's typed assessments
        return bool(report.errors) and not report.files
    return report.assessment("unpack").status == AssessmentStatus.NOT_ASSESSED


def vulns_assessed(report: ScanReport, topic: str = "vulnerabilities") -> bool:
    """The topic (``vulnerabilities`` or ``kev``) was assessed, at least partly."""
    if not report.assessments:  # a report built without the pipeline's typed assessments
        ran = stages_run(report)
        return "vulns" in ran or ("identify" in ran and not report.components)
    return report.assessment(topic).status != AssessmentStatus.NOT_ASSESSED


def _where(f: Finding) -> str:
    loc = f.location.path
    if loc and f.location.line is not None:
        loc += f":{f.location.line}"
    return loc


def finding_id(f: Finding) -> str:
    """``Finding.id``, also for paths holding lone surrogates (non-UTF-8 names from the image)."""
    try:
        return f.id
    except UnicodeError:
        import hashlib

        loc = f.location
        key = "|".join(
            (
                f.rule_id,
                "/".join(loc.layer_chain),
                loc.path,
                str(loc.line or ""),
                str(loc.offset or ""),
                f.fingerprint,
            )
        )
        return f"{f.rule_id}:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def finding_trips(f: Finding, fail_on: Severity | None) -> bool:
    return fail_on is not None and not f.suppressed and f.severity.rank >= fail_on.rank


def level_trips(severity: Severity | None, kev: bool, gates: tuple[str, ...]) -> bool:
    """The ``--fail-on-vuln`` rule for one open advisory of ``severity`` (None: unscored)."""
    if not gates:
        return False
    if kev:  # actively exploited outranks any CVSS score: every level trips
        return True
    if severity is None:
        return False
    thresholds = [Severity.parse(g) for g in gates if g != "kev"]
    return any(severity.rank >= t.rank for t in thresholds)


def vuln_trips(match: VulnMatch, gates: tuple[str, ...]) -> bool:
    """An open (not triaged away) match that reaches a ``--fail-on-vuln`` gate.

    A possible match (a version known only as a bound) is listed apart and never gates on its own.
    """
    return match.open and not match.possible and level_trips(match.severity, match.kev, gates)


def evaluate(
    report: ScanReport, fail_on: str | Severity | None = None, fail_on_vuln: str | Iterable[str] | None = None
) -> GateResult:
    """Apply the gates to a finished report and return the exit status with its reasons."""
    threshold = parse_fail_on(fail_on)
    vgates = parse_fail_on_vuln(fail_on_vuln)
    hits: list[GateHit] = []
    for f in sorted(report.findings, key=lambda f: -f.severity.rank):
        if finding_trips(f, threshold):
            hits.append(GateHit("fail-on", finding_id(f), f.severity.value, f.title, _where(f)))
    if vgates:
        if not vulns_assessed(report):
            hits.append(
                GateHit(
                    "fail-on-vuln",
                    "vulns.not-assessed",
                    "high",
                    f"vulnerabilities were not assessed: {report.assessment('vulnerabilities').reason}",
                )
            )
        elif not vulns_assessed(report, "kev"):
            hits.append(
                GateHit(
                    "fail-on-vuln",
                    "kev.not-assessed",
                    "high",
                    f"actively exploited vulnerabilities (KEV) were not assessed: {report.assessment('kev').reason}",
                )
            )
        for m in report.vulnerabilities:
            if vuln_trips(m, vgates):
                kev = " (KEV: actively exploited)" if m.kev else ""
                hits.append(
                    GateHit(
                        "fail-on-vuln",
                        m.advisory_id,
                        m.severity.value if m.severity else "unscored",
                        f"{m.component_key}{kev}",
                    )
                )
    if not_analysed(report):
        status = EXIT_NOT_ANALYSED
    elif hits:
        status = EXIT_GATE
    else:
        status = EXIT_OK
    topics = ("unpack", "components") + (("vulnerabilities", "kev") if vgates else ())
    notes = tuple(
        f"{topic} only partly assessed: {report.assessment(topic).reason}"
        for topic in topics
        if report.assessment(topic).status == AssessmentStatus.PARTIAL
    )
    return GateResult(
        status, tuple(hits), threshold, vgates, not_analysed(report), failed_stages(report), notes
    )


# ---- JUnit ----------------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: object, limit: int = 4000) -> str:
    value = "" if text is None else str(text)
    return _XML_BAD.sub("\ufffd", value[:limit])


def junit_xml(report: ScanReport, result: GateResult) -> str:
    """JUnit XML: one test case per finding and per vulnerability match.

    A case fails exactly when it trips a gate, so the failure count is non-zero
    exactly when the exit status is 1; suppressed findings and triaged-away
    matches are skipped; a scan that analysed nothing is one error case.
    """
    root = ET.Element("testsuites", name="cra-fw", tests="0", failures="0", errors="0", skipped="0")
    hit_ids = {(h.gate, h.id) for h in result.hits}

    def suite(name: str) -> ET.Element:
        return ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests="0",
            failures="0",
            errors="0",
            skipped="0",
            timestamp=_x(report.finished or report.started),
        )

    def count(s: ET.Element, key: str) -> None:
        s.set(key, str(int(s.get(key, "0")) + 1))

    scan = suite("cra-fw.scan")
    case = ET.SubElement(scan, "testcase", classname="cra-fw.scan", name=_x(f"analyse {report.image.name}"))
    count(scan, "tests")
    props = ET.SubElement(case, "properties")
    for key, value in (("sha256", report.image.sha256), ("size", report.image.size)):
        ET.SubElement(props, "property", name=key, value=_x(value))
    if result.not_analysed:
        err = ET.SubElement(
            case, "error", message=_x("nothing in the image could be analysed"), type="not-analysed"
        )
        err.text = _x("\n".join(report.errors))
        count(scan, "errors")
    for hit in result.hits:
        if hit.id in ("vulns.not-assessed", "kev.not-assessed"):
            c = ET.SubElement(scan, "testcase", classname="cra-fw.scan", name="vulnerabilities assessed")
            count(scan, "tests")
            ET.SubElement(c, "failure", message=_x(hit.title), type="fail-on-vuln")
            count(scan, "failures")

    fs = suite("cra-fw.findings")
    for f in report.findings:
        c = ET.SubElement(
            fs,
            "testcase",
            classname=_x(f"cra-fw.{f.category}"),
            name=_x(f"{f.rule_id} {_where(f)}".strip(), 500),
        )
        count(fs, "tests")
        text = f"[{f.severity.value}] {f.title}\nCRA: {'; '.join(f.cra_reference)}\n{f.remediation}"
        if f.suppressed:
            ET.SubElement(c, "skipped", message=_x(f"suppressed: {f.suppression_reason}", 500))
            count(fs, "skipped")
        elif ("fail-on", finding_id(f)) in hit_ids:
            node = ET.SubElement(
                c,
                "failure",
                message=_x(f"[{f.severity.value}] {f.title}", 500),
                type=f"fail-on-{result.fail_on.value if result.fail_on else ''}",
            )
            node.text = _x(text)
            count(fs, "failures")
        else:
            ET.SubElement(c, "system-out").text = _x(text)

    vs = suite("cra-fw.vulnerabilities")
    for m in report.vulnerabilities:
        adv, comp = m.advisory_id, m.component_key
        c = ET.SubElement(vs, "testcase", classname=_x(f"cra-fw.vuln.{comp}"), name=_x(f"{adv} in {comp}"))
        count(vs, "tests")
        sev = m.severity
        msg = f"[{sev.value if sev else 'unscored'}{' KEV' if m.kev else ''}] {adv} in {comp}"
        if not m.open:
            ET.SubElement(c, "skipped", message=_x(f"triaged: {m.triage_state}"))
            count(vs, "skipped")
        elif ("fail-on-vuln", adv) in hit_ids and vuln_trips(m, result.fail_on_vuln):
            node = ET.SubElement(c, "failure", message=_x(msg), type="fail-on-vuln")
            node.text = _x(m.summary)
            count(vs, "failures")
        else:
            ET.SubElement(c, "system-out").text = _x(msg)

    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: ScanReport, result: GateResult, path: Path) -> Path:
    """Write the JUnit XML for ``result`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report, result), encoding="utf-8")
    return path
