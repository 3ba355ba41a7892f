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
from typing import TextIO

from cra_fw.records import ScanReport, Severity
from cra_fw.report import annex1

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
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


def summary(report: ScanReport, colour: bool = False, top: int = 8, width: int = 100) -> str:
    """At most ~24 lines: image, severity counts, checklist, top findings, KEV items."""

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOURS[style]}m{text}\x1b[0m" if colour else text

    img = report.image
    lines = [paint(f"{clean(img.name, 60)}", "bold") + f"  {img.size:,} bytes  sha256 {img.sha256}"]
    sev = Counter(f.severity.value for f in report.findings if not f.suppressed)
    suppressed = sum(1 for f in report.findings if f.suppressed)
    counts = "  ".join(
        paint(f"{s} {sev.get(s, 0)}", s) if sev.get(s) else f"{s} 0" for s in (x.value for x in Severity)
    )
    lines.append(f"Findings: {counts}" + (f"  (suppressed {suppressed})" if suppressed else ""))
    open_vulns = [m for m in report.vulnerabilities if m.open]
    kev = [m for m in open_vulns if m.kev]
    vsev = Counter(m.severity.value if m.severity else "unscored" for m in open_vulns)
    ran = annex1.stages_run(report)
    if report.vulnerabilities or "vulns" in ran:
        vtext = ", ".join(
            f"{k} {vsev[k]}" for k in ("critical", "high", "medium", "low", "unscored") if vsev[k]
        )
        lines.append(
            f"Components: {len(report.components)}  open vulnerabilities: {len(open_vulns)}"
            + (f" ({vtext})" if vtext else "")
            + (f"  {paint(f'KEV {len(kev)}', 'kev')}" if kev else "")
        )
    else:
        lines.append(f"Components: {len(report.components)}  vulnerabilities: not assessed")
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
    return "\n".join(lines)


def print_summary(report: ScanReport, stream: TextIO | None = None) -> None:
    """Print :func:`summary` with colour when ``stream`` is a TTY."""
    stream = stream or sys.stdout
    stream.write(summary(report, colour=use_colour(stream)) + "\n")
