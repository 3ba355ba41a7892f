"""The portfolio: one row per release (or image) as a table, batch-summary.json and portfolio.html.

Counts that were not assessed stay ``None`` in the JSON and read "not assessed"
in the table and the page; an image that was not analysed or failed says so and
why, never 0.  The page is one self-contained file: Jinja2 with autoescape, the
inline style and script allowed only by their hashes in a Content-Security-Policy
(``default-src 'none'``), nothing loaded from anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cra_fw import __version__
from cra_fw.batch.engine import BatchRun
from cra_fw.batch.records import ImageResult, ImageStatus, VerifyResult
from cra_fw.jsonout import to_jsonable
from cra_fw.records import Severity

NOT_ASSESSED = "not assessed"
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True)
class PortfolioRow:
    product: str
    version: str
    manufacturer: str
    released: str
    image: str
    path: str
    sha256: str
    status: str
    reason: str
    components: int | None
    vulnerabilities: int | None
    kev: int | None
    findings: dict[str, int] | None
    support_end: str  # YYYY-MM, "not declared", or "" for an image no manifest names
    gate: str
    ledger: str
    vulns_not_assessed_reason: str


def rows(run: BatchRun, ledger: dict[int, str], support: dict[str, str]) -> list[PortfolioRow]:
    out = []
    for index, item in enumerate(run.items):
        res: ImageResult | None = run.results.get(item.sha256)
        unread = next((why for bad, why in run.unreadable if bad is item), "")
        out.append(
            PortfolioRow(
                product=item.product,
                version=item.version,
                manufacturer=item.manufacturer,
                released=item.released,
                image=Path(item.path).name,
                path=item.path,
                sha256=item.sha256,
                status=res.status.value if res else ImageStatus.FAILED.value,
                reason=(res.reason if res else unread),
                components=res.components if res else None,
                vulnerabilities=res.vulnerabilities if res else None,
                kev=res.kev if res else None,
                findings=res.findings if res else None,
                support_end=support.get(item.product, "not declared") if item.product else "",
                gate=res.gate if res else "not-analysed",
                ledger=ledger.get(index, ""),
                vulns_not_assessed_reason=res.vulns_not_assessed_reason if res else "",
            )
        )
    for bad, why in run.unreadable:
        if bad not in run.items:
            out.append(
                PortfolioRow(
                    bad.product,
                    bad.version,
                    bad.manufacturer,
                    bad.released,
                    Path(bad.path).name,
                    bad.path,
                    "",
                    ImageStatus.FAILED.value,
                    why,
                    None,
                    None,
                    None,
                    None,
                    support.get(bad.product, "not declared") if bad.product else "",
                    "not-analysed",
                    "not recorded: image failed" if bad.product else "",
                    "",
                )
            )
    return out


def counts(run: BatchRun, table: list[PortfolioRow]) -> dict[str, int]:
    by_status = {s.value: 0 for s in ImageStatus}
    for res in run.results.values():
        by_status[res.status.value] += 1
    by_status[ImageStatus.FAILED.value] += len(run.unreadable)
    return {
        "inputs": len(table),
        "images": len(run.results) + len(run.unreadable),
        **by_status,
        "resumed": sum(1 for r in run.results.values() if r.resumed),
        "gate_failed": sum(1 for r in run.results.values() if r.gate == "fail"),
    }


def failures(table: list[PortfolioRow]) -> list[dict[str, str]]:
    """Every input that was not analysed, with its reason."""
    return [
        {"path": r.path, "sha256": r.sha256, "status": r.status, "reason": r.reason}
        for r in table
        if r.status != ImageStatus.ANALYSED.value
    ]


def summary_json(run: BatchRun, table: list[PortfolioRow]) -> dict[str, Any]:
    return {
        "tool": {"name": "cra-fw", "version": __version__},
        "started": run.started,
        "finished": run.finished,
        "seconds": round(run.seconds, 3),
        "interrupted": run.interrupted,
        "cluster": {"scheduler": run.scheduler, "workers": run.workers, "dashboard": run.dashboard},
        "counts": counts(run, table),
        "failures": failures(table),
        "releases": [to_jsonable(r) for r in table],
        "images": [to_jsonable(r) for r in sorted(run.results.values(), key=lambda r: r.sha256)],
    }


def write_summary(outdir: Path, run: BatchRun, table: list[PortfolioRow]) -> tuple[Path, Path]:
    """OUTDIR/batch-summary.json and OUTDIR/portfolio.html, each written whole or not at all."""
    data = summary_json(run, table)
    paths = []
    for name, text in (
        ("batch-summary.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n"),
        ("portfolio.html", render_html(data)),
    ):
        path = outdir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]


def cell(value: int | None) -> str:
    return NOT_ASSESSED if value is None else str(value)


def findings_text(findings: dict[str, int] | None) -> str:
    if findings is None:
        return NOT_ASSESSED
    parts = [f"{findings[s]} {s}" for s in SEVERITIES if findings.get(s)]
    return ", ".join(parts) or "none"


def text_table(table: list[PortfolioRow], width: int = 40) -> str:
    """The portfolio for the terminal: fixed columns, one line per release or image."""
    head = ("release / image", "status", "components", "vulns", "KEV", "findings", "support end", "gate")
    lines = []
    for r in table:
        label = f"{r.product}@{r.version}" if r.product else r.image
        lines.append(
            (
                label[:width],
                r.status,
                cell(r.components),
                cell(r.vulnerabilities),
                cell(r.kev),
                findings_text(r.findings),
                r.support_end or "-",
                r.gate,
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    return "\n".join(out)


def verify_table(results: list[VerifyResult]) -> str:
    head = ("bundle", "verdict", "format", "reason")
    lines = [
        (r.path, r.verdict + (" (publicly known key)" if r.known_key else ""), r.format or "-", r.reason[:80])
        for r in results
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    widths[-1] = len(head[-1])
    fmt = "  ".join(f"{{:{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line).rstrip() for line in lines]
    return "\n".join(out)


# ---- portfolio.html ----------------------------------------------------------------------------


def _asset(name: str) -> str:
    return resources.files("cra_fw.batch").joinpath("templates", name).read_text(encoding="utf-8")


def _csp_hash(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"


def render_html(data: dict[str, Any]) -> str:
    """portfolio.html from the batch-summary.json data."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_asset),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = cell
    env.filters["findings_text"] = findings_text
    css, script = _asset("portfolio.css"), _asset("portfolio.js")
    csp = f"default-src 'none'; style-src {_csp_hash(css)}; script-src {_csp_hash(script)}; base-uri 'none'; form-action 'none'"
    return env.get_template("portfolio.html.j2").render(
        data=data, css=css, script=script, csp=csp, severities=SEVERITIES, not_assessed=NOT_ASSESSED
    )
