"""OUTDIR/report.html: one self-contained page a person can read and print.

The page is the Jinja2 template ``templates/report.html.j2`` with autoescape on; this
module only orders, bounds and lays out the typed records (chart geometry, sort
orders, the layer tree) for it.  No network: the stylesheet and script
(``assets/report.css``, ``assets/report.js``, package data) are inlined and allowed
only by their hashes in a Content-Security-Policy (``default-src 'none'``), charts
are inline SVG, there are no images, fonts or links to load.  Every string that
came from the image is hostile input: the environment's ``finalize`` cleans each
value (control characters and lone surrogates replaced, length bounded) before
autoescape escapes it, so even a bug in escaping cannot load or run anything the
CSP does not name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup, escape

from cra_fw.records import AssessmentStatus, Component, Layer, ScanReport, Severity
from cra_fw.report import annex1

if TYPE_CHECKING:
    from cra_fw.checks.interface import HardeningSummary
    from cra_fw.ledger.support import ProductSupport
    from cra_fw.vulns.records import VulnMatch

MAX_FINDING_ROWS = 2000  # per table; beyond this the page points to report.json
MAX_POINT_FINDINGS = 40
MAX_TEXT = 2000
MAX_LAYER_ROWS = 1000
MAX_RECORD_ROWS = 2000  # components, vulnerability matches, services

SEVERITIES = [s.value for s in Severity]
_SEV_COLOUR = {
    "critical": "#7a0019",
    "high": "#c0392b",
    "medium": "#d68910",
    "low": "#2e86c1",
    "info": "#7f8c8d",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(value: Any, limit: int = MAX_TEXT) -> str:
    """Any value as bounded, printable text (not yet escaped): control characters and lone
    surrogates become U+FFFD, and beyond ``limit`` characters the rest is counted, not shown."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + f"\u2026 [{len(text) - limit} more characters]"
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("\ufffd", text)


def esc(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` cleaned and HTML-escaped, for text or a quoted attribute: what the page shows."""
    return str(escape(clean(value, limit)))


def _asset(name: str) -> str:
    return resources.files("cra_fw.report").joinpath("assets", name).read_text(encoding="utf-8")


CSS = _asset("report.css")
SCRIPT = _asset("report.js")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (
    "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; "
    f"style-src {_csp_hash(CSS)}; script-src {_csp_hash(SCRIPT)}"
)


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` value: markup the template made stays, anything else is cleaned text."""
    return value if isinstance(value, Markup) else clean(value)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cra_fw.report", "templates"),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["cut"] = clean
    env.globals.update(
        severities=SEVERITIES,
        FAIL=annex1.FAIL,
        status_order={annex1.FAIL: 0, annex1.PASS: 1, annex1.NOT_ASSESSED: 2},
        max_point=MAX_POINT_FINDINGS,
        max_layers=MAX_LAYER_ROWS,
        more=_more,
    )
    return env


def _more(total: int, what: str) -> str:
    return f"{total - MAX_RECORD_ROWS} more {what} are in report.json." if total > MAX_RECORD_ROWS else ""


# ---- charts: geometry here, drawing in the template -------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    shown: str
    y: int
    width: int
    colour: str


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    bars: tuple[Bar, ...]
    width: int = 520
    left: int = 150
    bar_height: int = 20

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * (self.bar_height + 6) + 24


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float, str]], unit: str = "") -> BarChart:
    """Horizontal bars: (label, value, colour); values scaled to the largest."""
    width, left, bar_h, gap = 520, 150, 20, 6
    top = max((v for _, v, _ in items), default=0) or 1
    bars = tuple(
        Bar(
            label,
            f"{value:g}{unit}",
            4 + i * (bar_h + gap),
            max(int((width - left - 70) * (value / top)), 1),
            colour,
        )
        for i, (label, value, colour) in enumerate(items)
    )
    return BarChart(chart_id, title, bars, width, left, bar_h)


_HARDENING_METRICS = (
    ("NX", "nx", None, "#1e8449"),
    ("PIE", "pie", "executables", "#2874a6"),
    ("Full RELRO", "relro_full", None, "#7d3c98"),
    ("Canary", "canary", None, "#b9770e"),
    ("FORTIFY", "fortify", None, "#117a65"),
)


@dataclass(frozen=True)
class HardeningBar:
    metric: str
    x: int
    share: float  # percent
    colour: str

    @property
    def height(self) -> float:
        return self.share * 1.8


@dataclass(frozen=True)
class HardeningGroup:
    label: str
    centre: float
    bars: tuple[HardeningBar, ...]


@dataclass(frozen=True)
class HardeningRow:
    label: str
    summary: HardeningSummary


@dataclass(frozen=True)
class Legend:
    metric: str
    x: int
    colour: str


@dataclass(frozen=True)
class HardeningView:
    """The checks stage's per-architecture summary, as chart geometry and table rows."""

    rows: tuple[HardeningRow, ...]
    groups: tuple[HardeningGroup, ...]
    legend: tuple[Legend, ...]
    width: int
    height: int = 250
    base: int = 200
    bar_width: int = 22


def hardening_view(summaries: Sequence[HardeningSummary]) -> HardeningView:
    bar_w = 22
    group_w = len(_HARDENING_METRICS) * bar_w + 30
    rows = tuple(HardeningRow(f"{h.arch}/{h.bits}{h.endian[:1]}", h) for h in summaries)
    groups = []
    for g, row in enumerate(rows):
        x0 = 50 + g * group_w
        bars = []
        for m, (metric, key, of, colour) in enumerate(_HARDENING_METRICS):
            denom = getattr(row.summary, of) if of else row.summary.total
            share = (getattr(row.summary, key) / denom * 100) if denom else 0.0
            bars.append(HardeningBar(metric, x0 + m * bar_w, share, colour))
        groups.append(HardeningGroup(row.label, x0 + 2.5 * bar_w, tuple(bars)))
    legend = tuple(
        Legend(metric, 50 + m * 90, colour) for m, (metric, _k, _o, colour) in enumerate(_HARDENING_METRICS)
    )
    return HardeningView(rows, tuple(groups), legend, max(520, 60 + len(rows) * group_w))


# ---- records in the order the page shows them -------------------------------------------------


def _score(m: VulnMatch) -> float | None:
    return m.cvss_v31_score if m.cvss_v31_score is not None else m.cvss_v4_score


def _vuln_order(m: VulnMatch) -> tuple[bool, bool, int, float]:
    """KEV first, then open before dismissed, then by severity and score."""
    return (not m.kev, not m.open, -(m.severity.rank if m.severity else -1), -float(_score(m) or 0))


@dataclass(frozen=True)
class ComponentRow:
    component: Component
    vulns: tuple[VulnMatch, ...]  # open matches
    kev: int
    ids: str
    identified_by: str
    confidence: float


def component_rows(report: ScanReport) -> list[ComponentRow]:
    """Components with KEV matches first, then by open matches, then by name."""
    per: dict[str, list[VulnMatch]] = defaultdict(list)
    for m in report.vulnerabilities:
        if m.open:
            per[m.component_key].append(m)
    comps = sorted(
        report.components,
        key=lambda c: (not any(m.kev for m in per.get(c.key, [])), -len(per.get(c.key, [])), c.name.lower()),
    )
    rows = []
    for c in comps[:MAX_RECORD_ROWS]:
        vulns = per.get(c.key, [])
        ids = ", ".join(m.advisory_id for m in vulns[:12])
        if len(vulns) > 12:
            ids += f", \u2026 (+{len(vulns) - 12})"
        methods = sorted({e.method for e in c.evidence})
        conf = max((e.confidence for e in c.evidence), default=0.0)
        rows.append(
            ComponentRow(
                c,
                tuple(vulns),
                sum(1 for m in vulns if m.kev),
                ids,
                f"{', '.join(methods)} ({conf:.2f})" if methods else "-",
                conf,
            )
        )
    return rows


def layer_tree(layers: Sequence[Layer]) -> tuple[list[tuple[str, Layer | None]], int]:
    """The layer tree as ``li``/``ul``/``/ul``/``/li`` steps for the template, and how many layers.

    Broken parent links neither loop nor recurse away: a layer is shown once, chains are cut
    at depth 100 and listed from there, at most :data:`MAX_LAYER_ROWS` layers are shown.
    """
    children: dict[str | None, list[Layer]] = defaultdict(list)
    for layer in layers:
        children[layer.parent_id].append(layer)
    ids = {layer.id for layer in layers}
    roots = [la for la in layers if la.parent_id is None or la.parent_id not in ids]
    steps: list[tuple[str, Layer | None]] = []
    seen: set[str] = set()
    count = 0

    def walk(start: Layer) -> None:
        nonlocal count
        # depth first without recursion: ("visit", layer, depth) or a closing/opening tag to emit
        todo: list[tuple[str, Layer | None, int]] = [("visit", start, 0)]
        while todo:
            tag, layer, depth = todo.pop()
            if tag != "visit" or layer is None:
                steps.append((tag, None))
                continue
            if layer.id in seen or depth > 100:
                continue
            seen.add(layer.id)
            count += 1
            if count > MAX_LAYER_ROWS:
                continue
            steps.append(("li", layer))
            kids = children.get(layer.id, [])
            todo.append(("/li", None, 0))
            if kids:
                todo.append(("/ul", None, 0))
                todo.extend(("visit", kid, depth + 1) for kid in reversed(kids))
                todo.append(("ul", None, 0))

    for root in roots:
        walk(root)
    for layer in layers:  # left out by a parent loop or a chain deeper than shown: list them too
        if layer.id not in seen:
            walk(layer)
    return steps, count


def _count_or_why(report: ScanReport, topic: str, count: int) -> tuple[int | str, str]:
    """(count, "") or ("not assessed", why) when nothing behind the count was checked: never a false 0."""
    if not report.assessments:  # a report built without the pipeline's typed assessments
        return count, ""
    assessed = report.assessment(topic)
    if assessed.status == AssessmentStatus.NOT_ASSESSED:
        return "not assessed", assessed.reason or "the stage did not run"
    return count, ""


def render(report: ScanReport, support: ProductSupport | None = None) -> str:
    """The whole page as a string."""
    ran = annex1.stages_run(report)
    checklist = annex1.assess(report, support=support, ran=ran)
    open_vulns = [m for m in report.vulnerabilities if m.open]
    kev = [m for m in open_vulns if m.exploited_here]  # a possible match is never actively exploited here
    sev = Counter(f.severity.value for f in report.findings if not f.suppressed)
    findings = sorted(report.findings, key=lambda f: (f.suppressed, -f.severity.rank, f.category, f.rule_id))
    credentials = sorted(
        (f for f in report.findings if f.category in ("credentials", "secrets")),
        key=lambda f: (f.suppressed, -f.severity.rank),
    )
    tree, layer_count = layer_tree(report.layers)
    title = f"cra-fw report: {report.image.name}"
    counts = (
        checklist.count(annex1.FAIL),
        checklist.count(annex1.PASS),
        checklist.count(annex1.NOT_ASSESSED),
    )
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            title=title,
            csp=Markup(CSP),  # noqa: S704 - the package's own constant
            css=Markup(CSS),  # noqa: S704 - package data
            script=Markup(SCRIPT),  # noqa: S704 - package data
            nav=(
                ("checklist-section", "Checklist"),
                ("findings-section", "Findings"),
                ("vulnerabilities-section", "Vulnerabilities"),
                ("components-section", "Components"),
                ("attack-surface", "Attack surface"),
                ("hardening-section", "Hardening"),
                ("bundles-section", "Updates"),
                ("support-section", "Support"),
                ("layers-section", "Layers"),
            ),
            ran=ran,
            checklist=checklist,
            cards=(
                ("Checklist fail", counts[0], ""),
                ("Checklist pass", counts[1], ""),
                ("Not assessed", counts[2], ""),
                ("Findings", sum(sev.values()), ""),
                ("Components", *_count_or_why(report, "components", len(report.components))),
                ("Open vulnerabilities", *_count_or_why(report, "vulnerabilities", len(open_vulns))),
                ("KEV (Article 14)", *_count_or_why(report, "kev", len(kev))),
            ),
            severity_chart=bar_chart(
                "chart-severity",
                "Findings by severity",
                [(s, sev.get(s, 0), _SEV_COLOUR[s]) for s in SEVERITIES],
            ),
            checklist_chart=bar_chart(
                "chart-checklist",
                "CRA checklist",
                [
                    ("pass", counts[1], "#1e8449"),
                    ("fail", counts[0], "#c0392b"),
                    ("not assessed", counts[2], "#7f8c8d"),
                ],
            ),
            vulns=sorted(report.vulnerabilities, key=_vuln_order)[:MAX_RECORD_ROWS],
            components=component_rows(report),
            services=report.services[:MAX_RECORD_ROWS],
            credentials=credentials[:MAX_FINDING_ROWS],
            hardening=hardening_view(report.hardening_summary),
            bundles=report.bundles[:MAX_RECORD_ROWS],
            support=support,
            support_problems=annex1.support_failures(support) if support is not None else [],
            findings=findings[:MAX_FINDING_ROWS],
            findings_note=(
                f"{len(findings) - MAX_FINDING_ROWS} more findings are in report.json and findings.sarif."
                if len(findings) > MAX_FINDING_ROWS
                else ""
            ),
            layer_tree=tree,
            layer_count=layer_count,
        )
    )
    return page


def write(report: ScanReport, outdir: Path, support: ProductSupport | None = None) -> Path:
    """Write ``outdir/report.html`` (atomically) and return its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(render(report, support), encoding="utf-8")
    os.replace(tmp, path)
    return path
