"""OUTDIR/report.html: one self-contained page a person can read and print.

No network: CSS and the script are inline and allowed only by their hashes in a
Content-Security-Policy (``default-src 'none'``), charts are inline SVG, there
are no images, fonts or links to load.  Every string that came from the image is
hostile input: it is passed through :func:`esc` (HTML-escaped, control
characters and lone surrogates replaced, length bounded) before it reaches the
page, so even a bug in escaping cannot load or run anything the CSP does not
name.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cra_fw.records import Finding, Layer, ScanReport, Severity
from cra_fw.report import annex1

if TYPE_CHECKING:
    from cra_fw.bundles.interface import BundleVerdict
    from cra_fw.checks.interface import HardeningSummary, Service
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


def esc(value: Any, limit: int = MAX_TEXT) -> str:
    """Escape any value for HTML text or a quoted attribute; bound its length."""
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + f"\u2026 [{len(text) - limit} more characters]"
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub("\ufffd", text)
    return html.escape(text, quote=True)


CSS = """
:root{--fg:#1b1f23;--muted:#5f6b76;--line:#d6dbe0;--bg:#fff;--alt:#f6f8fa;--pass:#1e8449;--fail:#c0392b;--na:#7f8c8d}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1400px;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
.muted{color:var(--muted)}
nav{margin:8px 0 12px}nav a{margin-right:12px;color:#1f5f99;text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:150px;background:var(--alt)}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--alt);position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
tr:nth-child(even) td{background:#fbfcfd}
.sev,.st{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-size:12px;font-weight:600;white-space:nowrap}
.sev-critical{background:#7a0019}.sev-high{background:#c0392b}.sev-medium{background:#d68910}.sev-low{background:#2e86c1}.sev-info{background:#7f8c8d}
.st-pass{background:var(--pass)}.st-fail{background:var(--fail)}.st-not-assessed{background:var(--na)}
.kev{background:#000;color:#ff0;border-radius:3px;padding:0 5px;font-weight:700;font-size:12px}
.supp{color:var(--muted);text-decoration:line-through}
.tools{display:flex;gap:8px;align-items:center;margin:4px 0}
.tools input,.tools select{font:inherit;padding:2px 6px}
details>summary{cursor:pointer}
ul.tree{list-style:none;padding-left:18px;margin:2px 0}ul.tree li{margin:1px 0}
.chart{margin:6px 0 10px;max-width:100%}
.warn{border-left:4px solid var(--fail);background:#fdf2f2;padding:6px 10px}
footer{margin-top:30px;color:var(--muted);font-size:12px}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 nav,.tools{display:none}
 th{position:static}
 h2{break-after:avoid}
 tr,.card,svg{break-inside:avoid}
 details:not([open])>*:not(summary){display:block}
 a{color:inherit;text-decoration:none}
 tr.hidden{display:table-row!important}
}
tr.hidden{display:none}
@media screen{section{content-visibility:auto;contain-intrinsic-size:auto 900px}}
"""

SCRIPT = """
(function(){
function val(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim():v;}
function cmp(a,b){var x=parseFloat(a),y=parseFloat(b);
 if(!isNaN(x)&&!isNaN(y)&&String(x)===a.trim()&&String(y)===b.trim())return x-y;
 return a.localeCompare(b,undefined,{numeric:true});}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=!th.classList.contains('asc');
  t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
  th.classList.add(asc?'asc':'desc');
  var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(r1,r2){var c=cmp(val(r1.cells[i]),val(r2.cells[i]));return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});
 });});
});
function apply(t){
 var box=document.querySelector('input.filter[data-for="'+t.id+'"]');
 var sel=document.querySelector('select.sevfilter[data-for="'+t.id+'"]');
 var q=box?box.value.toLowerCase():'',s=sel?sel.value:'';
 var shown=0;
 Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
  var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!s||r.getAttribute('data-sev')===s);
  r.classList.toggle('hidden',!ok);if(ok)shown++;});
 var c=document.querySelector('.count[data-for="'+t.id+'"]');if(c)c.textContent=shown+' shown';
}
document.querySelectorAll('input.filter,select.sevfilter').forEach(function(el){
 var t=document.getElementById(el.getAttribute('data-for'));
 if(t)el.addEventListener('input',function(){apply(t);});
});
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (
    "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; "
    f"style-src {_csp_hash(CSS)}; script-src {_csp_hash(SCRIPT)}"
)


# ---- small builders -----------------------------------------------------------------------


def _sev_badge(sev: str) -> str:
    sev = sev if sev in SEVERITIES else "info"
    return f'<span class="sev sev-{sev}">{sev}</span>'


def _status_badge(status: str) -> str:
    cls = status.replace(" ", "-")
    return f'<span class="st st-{esc(cls)}">{esc(status)}</span>'


def _cell(text: Any, sort: Any = None, raw: bool = False, cls: str = "") -> str:
    attr = f' data-v="{esc(sort, 200)}"' if sort is not None else ""
    attr += f' class="{cls}"' if cls else ""
    return f"<td{attr}>{text if raw else esc(text)}</td>"


def _table(
    table_id: str,
    headers: Sequence[str],
    rows: Iterable[str],
    *,
    filter_box: bool = True,
    sev_filter: bool = False,
    note: str = "",
) -> str:
    rows = list(rows)
    tools = ""
    if filter_box and rows:
        sel = ""
        if sev_filter:
            opts = "".join(f'<option value="{s}">{s}</option>' for s in SEVERITIES)
            sel = f'<select class="sevfilter" data-for="{table_id}"><option value="">all severities</option>{opts}</select>'
        tools = (
            f'<div class="tools"><input class="filter" type="search" placeholder="filter" '
            f'data-for="{table_id}" aria-label="filter {table_id}">{sel}'
            f'<span class="count muted" data-for="{table_id}">{len(rows)} shown</span></div>'
        )
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(rows) if rows else f'<tr><td colspan="{len(headers)}" class="muted">none</td></tr>'
    extra = f'<p class="muted">{esc(note)}</p>' if note else ""
    return (
        f'{tools}<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{extra}"
    )


def _location(f: Finding) -> str:
    loc = f.location
    where = esc(" > ".join(loc.layer_chain))
    path = esc(loc.path)
    if loc.line is not None:
        path += f":{loc.line}"
    elif loc.offset is not None:
        path += f" @0x{loc.offset:x}"
    return (
        f'<span class="mono">{path}</span><br><span class="muted mono">{where}</span>'
        if where
        else f'<span class="mono">{path}</span>'
    )


# ---- charts -------------------------------------------------------------------------------


def _bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, float, str]], unit: str = "") -> str:
    """Horizontal bars: (label, value, colour); values scaled to the largest."""
    width, left, bar_h, gap = 520, 150, 20, 6
    height = max(1, len(items)) * (bar_h + gap) + 24
    top = max((v for _, v, _ in items), default=0) or 1
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{esc(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{esc(title)}</title>'
    ]
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * (bar_h + gap)
        w = int((width - left - 70) * (value / top))
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="12" fill="#1b1f23">{esc(label)}</text>'
            f'<rect class="bar" x="{left}" y="{y}" width="{max(w, 1)}" height="{bar_h}" fill="{colour}"/>'
            f'<text x="{left + max(w, 1) + 4}" y="{y + 15}" font-size="12" fill="#1b1f23">{esc(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_HARDENING_METRICS = (
    ("NX", "nx", None, "#1e8449"),
    ("PIE", "pie", "executables", "#2874a6"),
    ("Full RELRO", "relro_full", None, "#7d3c98"),
    ("Canary", "canary", None, "#b9770e"),
    ("FORTIFY", "fortify", None, "#117a65"),
)


def _hardening_chart(rows: Sequence[HardeningSummary]) -> str:
    """Grouped bars per architecture: share of ELF files with each mitigation (percent)."""
    group_w, bar_w = 5 * 22 + 30, 22
    width = max(520, 60 + len(rows) * group_w)
    height, base = 250, 200
    parts = [
        f'<svg id="chart-hardening" class="chart" role="img" aria-label="Hardening per architecture" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>Hardening per architecture (% of ELF files)</title>',
        f'<line x1="40" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#888"/>',
    ]
    for pct in (0, 50, 100):
        y = base - pct * 1.8
        parts.append(
            f'<text x="34" y="{y + 4:.0f}" text-anchor="end" font-size="10" fill="#555">{pct}%</text>'
            f'<line x1="40" y1="{y:.0f}" x2="{width - 10}" y2="{y:.0f}" stroke="#eee"/>'
        )
    for g, row in enumerate(rows):
        x0 = 50 + g * group_w
        for m, (label, key, of, colour) in enumerate(_HARDENING_METRICS):
            denom = getattr(row, of) if of else row.total
            share = (getattr(row, key) / denom * 100) if denom else 0.0
            h = share * 1.8
            parts.append(
                f'<rect class="bar" x="{x0 + m * bar_w}" y="{base - h:.1f}" width="{bar_w - 3}" '
                f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{esc(_arch_label(row))} {label}: '
                f"{share:.0f}%</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + 2.5 * bar_w}" y="{base + 16}" text-anchor="middle" font-size="12" '
            f'fill="#1b1f23">{esc(_arch_label(row))}</text>'
        )
    for m, (label, _k, _o, colour) in enumerate(_HARDENING_METRICS):
        x = 50 + m * 90
        parts.append(
            f'<rect x="{x}" y="{height - 20}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{height - 11}" font-size="11" fill="#1b1f23">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# ---- sections -----------------------------------------------------------------------------


def _header(report: ScanReport, checklist: annex1.Checklist, open_vulns: list, kev: list) -> str:
    img = report.image
    sev = Counter(f.severity.value for f in report.findings if not f.suppressed)
    hashes = "".join(
        f'<tr><th>{name}</th><td class="mono">{esc(value)}</td></tr>'
        for name, value in (("SHA-256", img.sha256), ("SHA-512", img.sha512), ("MD5", img.md5))
    )
    cards = [
        ("Checklist fail", checklist.count(annex1.FAIL)),
        ("Checklist pass", checklist.count(annex1.PASS)),
        ("Not assessed", checklist.count(annex1.NOT_ASSESSED)),
        ("Findings", sum(sev.values())),
        ("Components", len(report.components)),
        ("Open vulnerabilities", len(open_vulns)),
        ("KEV (Article 14)", len(kev)),
    ]
    card_html = "".join(f'<div class="card"><b>{n}</b>{esc(label)}</div>' for label, n in cards)
    chart = _bar_chart(
        "chart-severity", "Findings by severity", [(s, sev.get(s, 0), _SEV_COLOUR[s]) for s in SEVERITIES]
    )
    status_chart = _bar_chart(
        "chart-checklist",
        "CRA checklist",
        [
            ("pass", checklist.count(annex1.PASS), "#1e8449"),
            ("fail", checklist.count(annex1.FAIL), "#c0392b"),
            ("not assessed", checklist.count(annex1.NOT_ASSESSED), "#7f8c8d"),
        ],
    )
    errors = ""
    if report.errors:
        errors = (
            '<div class="warn"><b>Scan errors</b><ul>'
            + "".join(f"<li>{esc(e)}</li>" for e in report.errors[:50])
            + "</ul></div>"
        )
    return (
        f'<section id="image"><h2>Image</h2><table class="kv"><tr><th>Name</th><td>{esc(img.name)}</td></tr>'
        f"<tr><th>Size</th><td>{img.size:,} bytes</td></tr>{hashes}"
        f"<tr><th>Scan</th><td>{esc(report.started)} \u2013 {esc(report.finished)}</td></tr>"
        f"<tr><th>Tool</th><td>{esc(report.tool.name)} {esc(report.tool.version)}"
        f" (extractor {esc(report.extractor or '-')}, schema {esc(report.schema_version)})</td></tr></table>"
        f'{errors}<div class="cards">{card_html}</div>'
        f'<div class="charts">{chart}{status_chart}</div></section>'
    )


def _checklist(checklist: annex1.Checklist) -> str:
    rows = []
    order = {annex1.FAIL: 0, annex1.PASS: 1, annex1.NOT_ASSESSED: 2}
    for i, r in enumerate(checklist.results):
        behind = []
        for f in r.findings[:MAX_POINT_FINDINGS]:
            mark = ' class="supp"' if f.suppressed else ""
            behind.append(
                f"<li{mark}>{_sev_badge(f.severity.value)} <code>{esc(f.rule_id)}</code> "
                f'{esc(f.title, 300)} <span class="muted mono">{esc(f.location.path, 200)}</span></li>'
            )
        if len(r.findings) > MAX_POINT_FINDINGS:
            behind.append(
                f'<li class="muted">\u2026 and {len(r.findings) - MAX_POINT_FINDINGS} more '
                f"(filter the findings table by <code>{esc(r.point.reference)}</code>)</li>"
            )
        for rec in r.records[:MAX_POINT_FINDINGS]:
            behind.append(f"<li>{esc(rec, 300)}</li>")
        if len(r.records) > MAX_POINT_FINDINGS:
            behind.append(f'<li class="muted">\u2026 and {len(r.records) - MAX_POINT_FINDINGS} more</li>')
        detail = ""
        if behind:
            opened = " open" if r.status == annex1.FAIL and len(behind) <= 8 else ""
            detail = (
                f"<details{opened}><summary>{len(r.findings)} finding(s), {len(r.records)} record(s)"
                f"</summary><ul>{''.join(behind)}</ul></details>"
            )
        rows.append(
            f'<tr data-status="{esc(r.status)}" data-point="{esc(r.point.key)}">'
            + _cell(r.point.reference, sort=f"{i:03d}")
            + _cell(r.point.title)
            + _cell(_status_badge(r.status), sort=order[r.status], raw=True)
            + _cell(esc(r.reason) + detail, raw=True)
            + "</tr>"
        )
    return (
        '<section id="checklist-section"><h2>CRA Annex I checklist</h2>'
        '<p class="muted">pass: assessed and nothing found; fail: findings or records below; '
        "not assessed: the stage did not run, or static analysis of an image cannot show it.</p>"
        + _table("checklist", ["Reference", "Requirement", "Status", "Why"], rows)
        + "</section>"
    )


def _findings(report: ScanReport) -> str:
    items = sorted(report.findings, key=lambda f: (f.suppressed, -f.severity.rank, f.category, f.rule_id))
    rows = []
    for f in items[:MAX_FINDING_ROWS]:
        title = esc(f.title, 300)
        if f.suppressed:
            title = (
                f'<span class="supp">{title}</span><br><span class="muted">suppressed: '
                f"{esc(f.suppression_reason, 300)}</span>"
            )
        rows.append(
            f'<tr data-sev="{f.severity.value}">'
            + _cell(_sev_badge(f.severity.value), sort=5 - f.severity.rank, raw=True)
            + _cell(f.category)
            + _cell(f"<code>{esc(f.rule_id)}</code>", sort=f.rule_id, raw=True)
            + _cell(title, raw=True)
            + _cell(_location(f), sort=f.location.path, raw=True)
            + _cell("; ".join(f.cra_reference))
            + _cell(f'<span class="mono">{esc(f.evidence, 240)}</span>', raw=True)
            + _cell(esc(f.remediation, 300), raw=True)
            + "</tr>"
        )
    note = ""
    if len(items) > MAX_FINDING_ROWS:
        note = f"{len(items) - MAX_FINDING_ROWS} more findings are in report.json and findings.sarif."
    return (
        '<section id="findings-section"><h2>Findings</h2>'
        + _table(
            "findings",
            ["Severity", "Category", "Rule", "Title", "Location", "CRA", "Evidence", "Remediation"],
            rows,
            sev_filter=True,
            note=note,
        )
        + "</section>"
    )


def _score(m: VulnMatch) -> float | None:
    return m.cvss_v31_score if m.cvss_v31_score is not None else m.cvss_v4_score


def _vuln_rows(matches: Sequence[VulnMatch]) -> list[str]:
    def key(m: VulnMatch) -> tuple[bool, bool, int, float]:
        score = _score(m) or 0
        return (not m.kev, not m.open, -(m.severity.rank if m.severity else -1), -float(score))

    rows = []
    for m in sorted(matches, key=key)[:MAX_RECORD_ROWS]:
        sev = m.severity
        sev_name = sev.value if sev else "info"
        kev = m.kev
        adv = m.advisory_id
        aliases = m.aliases
        score: float | str = "" if _score(m) is None else _score(m)  # type: ignore[assignment]
        vector = m.cvss_v31_vector or m.cvss_v4_vector
        state = m.triage_state
        kev_text = ""
        if kev:
            due = m.kev_due_date
            kev_text = '<span class="kev">KEV</span>' + (f" due {esc(due)}" if due else "")
        epss = m.epss
        rows.append(
            f'<tr data-sev="{sev_name}" data-kev="{"1" if kev else "0"}">'
            + _cell(kev_text, sort=0 if kev else 1, raw=True)
            + _cell(
                f"<b>{esc(adv)}</b>"
                + (
                    f'<br><span class="muted">{esc(", ".join(map(str, aliases)), 300)}</span>'
                    if aliases
                    else ""
                ),
                sort=adv,
                raw=True,
            )
            + _cell(
                _sev_badge(sev_name) if sev else '<span class="muted">unscored</span>',
                sort=5 - (sev.rank if sev else -1),
                raw=True,
            )
            + _cell(
                f"{score}" + (f'<br><span class="mono muted">{esc(vector)}</span>' if vector else ""),
                sort=score if score != "" else -1,
                raw=True,
            )
            + _cell(m.component_key)
            + _cell(m.fixed_version or "-")
            + _cell(state if m.open else f"{state} (dismissed)")
            + _cell(f"{epss:.3f}" if isinstance(epss, float) else "-", sort=epss if epss is not None else -1)
            + _cell(esc(m.summary, 200), raw=True)
            + "</tr>"
        )
    return rows


def _vulnerabilities(report: ScanReport, ran: frozenset[str]) -> str:
    if not report.vulnerabilities and "vulns" not in ran:
        body = '<p class="muted">not assessed: the vulnerability stage did not run (no feed database?)</p>'
    else:
        body = _table(
            "vulnerabilities",
            ["KEV", "Advisory", "Severity", "CVSS", "Component", "Fixed in", "Triage", "EPSS", "Summary"],
            _vuln_rows(report.vulnerabilities),
            sev_filter=True,
            note=_more(len(report.vulnerabilities), "vulnerability matches"),
        )
    return (
        '<section id="vulnerabilities-section"><h2>Vulnerabilities (KEV first)</h2>'
        '<p class="muted">KEV: listed in CISA\u2019s Known Exploited Vulnerabilities catalog: actively '
        "exploited, the CRA Article 14 reporting clock applies.</p>" + body + "</section>"
    )


def _components(report: ScanReport) -> str:
    per: dict[str, list[VulnMatch]] = defaultdict(list)
    for m in report.vulnerabilities:
        if m.open:
            per[m.component_key].append(m)
    rows = []
    comps = sorted(
        report.components,
        key=lambda c: (
            not any(m.kev for m in per.get(c.key, [])),
            -len(per.get(c.key, [])),
            c.name.lower(),
        ),
    )
    for c in comps[:MAX_RECORD_ROWS]:
        vulns = per.get(c.key, [])
        kev = sum(1 for m in vulns if m.kev)
        ids = ", ".join(m.advisory_id for m in vulns[:12])
        if len(vulns) > 12:
            ids += f", \u2026 (+{len(vulns) - 12})"
        methods = sorted({e.method for e in c.evidence})
        conf = max((e.confidence for e in c.evidence), default=0.0)
        rows.append(
            "<tr>"
            + _cell(c.name)
            + _cell(c.version or "unknown")
            + _cell(c.kind)
            + _cell(
                f'<span class="mono">{esc(c.purl)}</span><br><span class="mono muted">{esc(c.cpe)}</span>',
                sort=c.purl,
                raw=True,
            )
            + _cell(c.supplier or "-")
            + _cell(", ".join(c.licenses) or "-")
            + _cell(f"{', '.join(methods)} ({conf:.2f})" if methods else "-", sort=conf)
            + _cell(len(c.files))
            + _cell(
                (f'<span class="kev">KEV {kev}</span> ' if kev else "") + f"{len(vulns)} {esc(ids, 600)}",
                sort=len(vulns) + 1000 * kev,
                raw=True,
            )
            + "</tr>"
        )
    if not report.components:
        note = "No components identified" + (
            ""
            if "identify" in annex1.stages_run(report)
            else ": not assessed (the identify stage did not run)"
        )
        return (
            f'<section id="components-section"><h2>Components</h2><p class="muted">{esc(note)}</p></section>'
        )
    return (
        '<section id="components-section"><h2>Components</h2>'
        + _table(
            "components",
            [
                "Name",
                "Version",
                "Kind",
                "purl / CPE",
                "Supplier",
                "Licence",
                "Identified by",
                "Files",
                "Open vulnerabilities",
            ],
            rows,
            note=_more(len(report.components), "components"),
        )
        + "</section>"
    )


def _more(total: int, what: str) -> str:
    return f"{total - MAX_RECORD_ROWS} more {what} are in report.json." if total > MAX_RECORD_ROWS else ""


def _joined(values: Iterable[str]) -> str:
    return ", ".join(values)


def _service_rows(services: Sequence[Service]) -> list[str]:
    return [
        "<tr>"
        + "".join(
            _cell(v)
            for v in (
                s.name,
                s.binary,
                "" if s.port is None else s.port,
                s.bind_address,
                s.protocol,
                s.started_by,
                s.authentication,
                s.config,
                s.notes,
            )
        )
        + "</tr>"
        for s in services[:MAX_RECORD_ROWS]
    ]


def _bundle_rows(bundles: Sequence[BundleVerdict]) -> list[str]:
    rows = []
    for b in bundles[:MAX_RECORD_ROWS]:
        verdict = b.verdict.value
        status = "pass" if verdict == "valid" else "fail"
        rows.append(
            f'<tr data-verdict="{esc(verdict, 100)}">'
            + _cell(b.path)
            + _cell(b.format)
            + _cell(f'<span class="st st-{status}">{esc(verdict, 100)}</span>', sort=verdict, raw=True)
            + _cell(b.reason)
            + _cell(b.signer)
            + _cell(b.key_fingerprint)
            + _cell(_joined(b.algorithms))
            + _cell(b.signed_at)
            + _cell(_joined(b.covered))
            + _cell(_joined(b.uncovered))
            + _cell(_joined(b.notes))
            + "</tr>"
        )
    return rows


def _attack_surface(report: ScanReport, ran: frozenset[str]) -> str:
    cols = (
        "Service",
        "Binary",
        "Port",
        "Bind",
        "Protocol",
        "Started by",
        "Authentication",
        "Config",
        "Notes",
    )
    if report.services or "checks" in ran:
        services = _table(
            "services",
            cols,
            _service_rows(report.services),
            note=_more(len(report.services), "services"),
        )
    else:
        services = '<p class="muted">not assessed: the checks stage did not run</p>'
    creds = [f for f in report.findings if f.category in ("credentials", "secrets")]
    creds.sort(key=lambda f: (f.suppressed, -f.severity.rank))
    rows = []
    for f in creds[:MAX_FINDING_ROWS]:
        shown = f.fingerprint or f.extra.get("fingerprint", "")
        rows.append(
            f'<tr data-sev="{f.severity.value}">'
            + _cell(_sev_badge(f.severity.value), sort=5 - f.severity.rank, raw=True)
            + _cell(f.category)
            + _cell(f.title)
            + _cell(_location(f), sort=f.location.path, raw=True)
            + _cell(f'<span class="mono">{esc(shown)}</span>', raw=True)
            + "</tr>"
        )
    return (
        '<section id="attack-surface"><h2>Attack surface: services and credentials</h2>'
        "<h3>Services</h3>"
        + services
        + '<h3>Credentials, keys and secrets</h3><p class="muted">Secrets are shown as fingerprints.</p>'
        + _table(
            "credentials", ["Severity", "Category", "Title", "Location", "Fingerprint"], rows, sev_filter=True
        )
        + "</section>"
    )


def _arch_label(h: HardeningSummary) -> str:
    return f"{h.arch}/{h.bits}{h.endian[:1]}"


def _hardening(report: ScanReport, ran: frozenset[str]) -> str:
    rows = report.hardening_summary
    if not rows:
        why = "no ELF files" if "checks" in ran else "not assessed: the checks stage did not run"
        return f'<section id="hardening-section"><h2>Hardening per architecture</h2><p class="muted">{why}</p></section>'

    def pct(n: int, of: int) -> str:
        return f"{n} ({n / of * 100:.0f}%)" if of else str(n)

    trs = []
    for r in rows:
        t = r.total
        trs.append(
            "<tr>"
            + _cell(_arch_label(r))
            + _cell(t)
            + _cell(r.executables)
            + _cell(r.static)
            + _cell(pct(r.nx, t), sort=r.nx)
            + _cell(pct(r.pie, r.executables), sort=r.pie)
            + _cell(pct(r.relro_full, t), sort=r.relro_full)
            + _cell(pct(r.relro_partial, t), sort=r.relro_partial)
            + _cell(pct(r.canary, t), sort=r.canary)
            + _cell(pct(r.fortify, t), sort=r.fortify)
            + _cell(r.exec_stack)
            + _cell(r.rpath)
            + "</tr>"
        )
    return (
        '<section id="hardening-section"><h2>Hardening per architecture</h2>'
        + _hardening_chart(rows)
        + _table(
            "hardening",
            [
                "Architecture",
                "ELF files",
                "Executables",
                "Static",
                "NX",
                "PIE (of executables)",
                "Full RELRO",
                "Partial RELRO",
                "Canary",
                "FORTIFY",
                "Exec stack",
                "RPATH",
            ],
            trs,
            filter_box=False,
        )
        + "</section>"
    )


def _bundles(report: ScanReport, ran: frozenset[str]) -> str:
    cols = (
        "Bundle",
        "Format",
        "Verdict",
        "Reason",
        "Signer",
        "Key",
        "Algorithms",
        "Signed at",
        "Covered",
        "Not covered",
        "Notes",
    )
    if report.bundles:
        body = _table(
            "bundles",
            cols,
            _bundle_rows(report.bundles),
            note=_more(len(report.bundles), "bundle verdicts"),
        )
    elif "bundles" in ran:
        body = (
            '<p class="muted">No update bundle, FIT image or update verification key found in the image.</p>'
        )
    else:
        body = '<p class="muted">not assessed: the bundle verification stage did not run</p>'
    return '<section id="bundles-section"><h2>Update signatures</h2>' + body + "</section>"


def _support(support: ProductSupport | None) -> str:
    if support is None:
        body = (
            '<p class="muted">not assessed: no support period known for this release '
            "(record one with <code>cra-fw support set</code> and scan with the release).</p>"
        )
    else:
        items = (
            ("product", support.product.name),
            ("from", support.start_month),
            ("until", support.end_month),
            ("months", support.months),
            ("justification", support.justification or "-"),
        )
        problems = annex1.support_failures(support)
        body = (
            "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items) + "</table>"
        )
        if problems:
            body += '<div class="warn">' + "<br>".join(esc(p) for p in problems) + "</div>"
    return '<section id="support-section"><h2>Support period (Article 13(8))</h2>' + body + "</section>"


def _layers(layers: Sequence[Layer]) -> str:
    if not layers:
        return '<section id="layers-section"><h2>Layer tree</h2><p class="muted">no layers</p></section>'
    children: dict[str | None, list[Layer]] = defaultdict(list)
    for layer in layers:
        children[layer.parent_id].append(layer)
    ids = {layer.id for layer in layers}
    roots = [la for la in layers if la.parent_id is None or la.parent_id not in ids]
    out: list[str] = []
    count = 0
    seen: set[str] = set()

    def walk(layer: Layer, depth: int = 0) -> None:
        nonlocal count
        if layer.id in seen or depth > 100:  # broken parent links must neither loop nor recurse away
            return
        seen.add(layer.id)
        count += 1
        if count > MAX_LAYER_ROWS:
            return
        status = layer.status.value if hasattr(layer.status, "value") else str(layer.status)
        where = f" in {esc(layer.parent_path, 300)}" if layer.parent_path else ""
        note = f' <span class="muted">{esc(layer.note, 300)}</span>' if layer.note else ""
        files = f", {layer.file_count} files" if layer.file_count else ""
        ent = f", entropy {layer.entropy:.2f}" if isinstance(layer.entropy, float) else ""
        out.append(
            f'<li data-layer="{esc(layer.id)}"><code>{esc(layer.id)}</code> <b>{esc(layer.format)}</b> '
            f"@0x{layer.offset:x}{where}, {layer.size:,} bytes, <i>{esc(status)}</i>{files}{ent}"
            f"{' via ' + esc(layer.extractor) if layer.extractor else ''}"
            f' <span class="mono muted">sha256 {esc(layer.sha256[:16])}\u2026</span>{note}'
        )
        kids = children.get(layer.id, [])
        if kids:
            out.append('<ul class="tree">')
            for kid in kids:
                walk(kid, depth + 1)
            out.append("</ul>")
        out.append("</li>")

    out.append('<ul class="tree" id="layers">')
    for root in roots:
        walk(root)
    for layer in layers:  # left out by a parent loop or a chain deeper than shown: list them too
        if layer.id not in seen:
            walk(layer)
    out.append("</ul>")
    more = (
        f'<p class="muted">{count - MAX_LAYER_ROWS} more layers in report.json</p>'
        if count > MAX_LAYER_ROWS
        else ""
    )
    return '<section id="layers-section"><h2>Layer tree</h2>' + "".join(out) + more + "</section>"


def render(report: ScanReport, support: ProductSupport | None = None) -> str:
    """The whole page as a string."""
    ran = annex1.stages_run(report)
    checklist = annex1.assess(report, support=support, ran=ran)
    open_vulns = [m for m in report.vulnerabilities if m.open]
    kev = [m for m in open_vulns if m.kev]
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("checklist-section", "Checklist"),
            ("findings-section", "Findings"),
            ("vulnerabilities-section", "Vulnerabilities"),
            ("components-section", "Components"),
            ("attack-surface", "Attack surface"),
            ("hardening-section", "Hardening"),
            ("bundles-section", "Updates"),
            ("support-section", "Support"),
            ("layers-section", "Layers"),
        )
    )
    title = f"cra-fw report: {report.image.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title, 300)}</title><style>{CSS}</style></head><body>",
        f'<header><h1>{esc(title, 300)}</h1><div class="muted">CRA evidence report, generated by '
        f"{esc(report.tool.name)} {esc(report.tool.version)} at {esc(report.finished or report.started)}</div>"
        f"<nav>{nav}</nav></header><main>",
        _header(report, checklist, open_vulns, kev),
        _checklist(checklist),
        _vulnerabilities(report, ran),
        _components(report),
        _attack_surface(report, ran),
        _hardening(report, ran),
        _bundles(report, ran),
        _support(support),
        _findings(report),
        _layers(report.layers),
        f'</main><footer>sha256 of the image: <span class="mono">{esc(report.image.sha256)}</span>. '
        "Machine-readable results: report.json, SBOMs, VEX and SARIF beside this file.</footer>",
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write(report: ScanReport, outdir: Path, support: ProductSupport | None = None) -> Path:
    """Write ``outdir/report.html`` (atomically) and return its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(render(report, support), encoding="utf-8")
    os.replace(tmp, path)
    return path
