"""A one-screen summary for the terminal: counts by severity, top findings, KEV items.

Colour (ANSI) only when the stream is a TTY and ``NO_COLOR`` is unset.  Strings
from the image are stripped of control characters so a hostile file name
cannot drive the terminal.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from cra_fw.records import AssessmentStatus, ScanReport, Severity
from cra_fw.report import annex1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_COLOURS = {
    "critical": "1;37;41",
    "high": "1;31",
    "medium": "33",
    "low": "36",
    "info": "2",
    "fail": "1;31",
    "pass": "32",
    "kev": "1;33;40",
    "bold": "1",
}


# the colours this module paints with, and only those, survive the sanitiser
_OWN_SGR = re.compile(
    "\x1b\\[(?:" + "|".join(sorted({*_COLOURS.values(), "0"}, key=len, reverse=True)) + ")m"
)


# why something was not assessed says what to run: it is never cut to the summary's width
WHY_WIDTH = 400


def safe(text: str) -> str:
    """The terminal sanitiser: every line cra-fw prints passes here.

    Control characters (ESC of OSC title and hyperlink sequences, cursor moves, BEL,
    CR, C1 codes, bidirectional overrides) become ``?``; newlines and tabs stay, and so
    do the few colour codes this module paints with; bytes that are not valid text
    (lone surrogates from non-UTF-8 names) become U+FFFD.
    """
    parts = _OWN_SGR.split(text)
    codes = _OWN_SGR.findall(text)
    cleaned = [_CONTROL_BUT_LINES.sub("?", p) for p in parts]
    value = "".join(c + (codes[i] if i < len(codes) else "") for i, c in enumerate(cleaned))
    return value.encode("utf-8", "replace").decode("utf-8")


def clean(text: object, limit: int = 120) -> str:
    """One printable line, at most ``limit`` characters."""
    value = _CONTROL.sub("?", str(text))
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def use_colour(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _pct(share: float) -> str:
    return f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _coverage_lines(report: ScanReport) -> list[str]:
    """What was unpacked, and what was not: never a silent gap."""
    if not report.assessments:
        return []
    unpack = report.assessment("unpack")
    files = sum(1 for f in report.files if f.kind.value != "directory")
    head = f"Unpacked: {max(0, len(report.layers) - 1)} layers, {files} files"
    if unpack.status == AssessmentStatus.COMPLETE:
        return [head]
    if unpack.status == AssessmentStatus.NOT_ASSESSED:
        return [clean(f"Unpacked: NOTHING could be analysed: {unpack.reason}", WHY_WIDTH)]
    return [
        head + f"; {_pct(unpack.share)} of the image NOT analysed",
        clean(f"  {unpack.reason}", WHY_WIDTH),
    ]


def _topic_text(report: ScanReport, topic: str) -> str | None:
    """None when ``topic`` was assessed completely, else why not ("not assessed: ...")."""
    if not report.assessments:
        return None
    item = report.assessment(topic)
    if item.status == AssessmentStatus.COMPLETE:
        return None
    if item.status == AssessmentStatus.NOT_ASSESSED:
        return f"not assessed ({item.reason})"
    return f"only partly assessed ({item.reason})"


def summary(
    report: ScanReport, colour: bool = False, top: int = 8, width: int = 100, outdir: Path | None = None
) -> str:
    """About a screen: image, coverage, severity counts, vulnerabilities and KEV (or why they were
    not assessed), the CRA checklist, top findings, KEV items, errors."""

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOURS[style]}m{text}\x1b[0m" if colour else text

    img = report.image
    lines = [paint(f"{clean(img.name, 60)}", "bold") + f"  {img.size:,} bytes  sha256 {img.sha256}"]
    lines += _coverage_lines(report)
    sev = Counter(f.severity.value for f in report.findings if not f.suppressed)
    suppressed = sum(1 for f in report.findings if f.suppressed)
    counts = "  ".join(
        paint(f"{s} {sev.get(s, 0)}", s) if sev.get(s) else f"{s} 0" for s in (x.value for x in Severity)
    )
    lines.append(f"Findings: {counts}" + (f"  (suppressed {suppressed})" if suppressed else ""))
    # possible matches (a version known only as a bound) are listed apart, never as established
    possible = [m for m in report.vulnerabilities if m.open and m.possible]
    open_vulns = [m for m in report.vulnerabilities if m.open and not m.possible]
    kev = [m for m in open_vulns if m.exploited_here]
    vsev = Counter(m.severity.value if m.severity else "unscored" for m in open_vulns)
    ran = annex1.stages_run(report)
    components = f"Components: {len(report.components)}"
    gap = _topic_text(report, "components")
    if gap:
        components += f" ({gap})"
    vgap = _topic_text(report, "vulnerabilities")
    if report.assessments and report.assessment("vulnerabilities").status == AssessmentStatus.NOT_ASSESSED:
        lines.append(clean(components, width))
        lines.append(clean(f"Vulnerabilities: {vgap}", WHY_WIDTH))
    elif report.vulnerabilities or "vulns" in ran:
        vtext = ", ".join(
            f"{k} {vsev[k]}" for k in ("critical", "high", "medium", "low", "unscored") if vsev[k]
        )
        lines.append(
            clean(components, width)
            + f"  open vulnerabilities: {len(open_vulns)}"
            + (f" ({vtext})" if vtext else "")
            + (f"  {paint(f'KEV {len(kev)}', 'kev')}" if kev else "")
            + (f"  possible (version uncertain): {len(possible)}" if possible else "")
        )
        if vgap:
            lines.append(clean(f"  vulnerabilities {vgap}", WHY_WIDTH))
    else:
        lines.append(clean(components, width) + "  vulnerabilities: not assessed")
    kgap = _topic_text(report, "kev")
    if kgap and not (vgap and vgap.startswith("not assessed")):
        lines.append(clean(f"  KEV (actively exploited) {kgap}", WHY_WIDTH))
    checklist = annex1.assess(report, ran=ran)
    failed = [
        r.point.reference.replace("Annex I Part II ", "Part II ").replace("Annex I Part I ", "")
        for r in checklist.results
        if r.status == annex1.FAIL
    ]
    lines.append(
        f"CRA checklist: {paint(str(checklist.count(annex1.FAIL)) + ' fail', 'fail')}, "
        f"{paint(str(checklist.count(annex1.PASS)) + ' pass', 'pass')}, "
        f"{checklist.count(annex1.NOT_ASSESSED)} not assessed"
    )
    if failed:
        lines.append(clean("  failing: " + ", ".join(failed), width))
    if kev:
        lines.append(paint("Actively exploited (KEV): CRA Article 14 reporting applies", "kev"))
        for m in kev[:4]:
            lines.append(clean(f"  {m.advisory_id} in {m.component_key}  due {m.kev_due_date or '-'}", width))
        if len(kev) > 4:
            lines.append(f"  ... and {len(kev) - 4} more")
    shown = sorted(
        (f for f in report.findings if not f.suppressed and f.severity != Severity.INFO),
        key=lambda f: -f.severity.rank,
    )
    if shown:
        lines.append("Top findings:")
        for f in shown[:top]:
            where = f.location.path + (f":{f.location.line}" if f.location.line is not None else "")
            body = clean(f"{f.title}  {where}", width - 12)
            lines.append(f"  {paint(f'{f.severity.value:<8}', f.severity.value)} {body}")
        if len(shown) > top:
            lines.append(f"  ... and {len(shown) - top} more in report.html / report.json")
    if report.errors:
        lines.append(
            paint(f"Errors: {len(report.errors)}", "fail") + "  " + clean(report.errors[0], width - 12)
        )
    if outdir is not None:
        lines.append(clean(f"Report: {outdir / 'report.json'}", width + 100))
    return "\n".join(lines)


def print_summary(report: ScanReport, stream: TextIO | None = None, outdir: Path | None = None) -> None:
    """Print :func:`summary` with colour when ``stream`` is a TTY."""
    stream = stream or sys.stdout
    stream.write(safe(summary(report, colour=use_colour(stream), outdir=outdir)) + "\n")
