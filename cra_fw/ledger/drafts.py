"""Pre-filled drafts of the Article 14 reports, from what the ledger knows.

A draft is a starting point for the submission on ENISA's single reporting
platform: facts from the ledger are filled in; what only the manufacturer
knows is listed under ``to_complete``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import sqlite_utils

from cra_fw.errors import LedgerError
from cra_fw.ledger.clocks import Stage, format_local, format_utc, human_delta
from cra_fw.ledger.store import get_case, get_product, get_support, release_by_id

# What Article 14(2) and (4) ask of each report that the ledger cannot know.
_TO_COMPLETE = {
    Stage.EARLY_WARNING: (
        "Whether the vulnerability is suspected to be exploited by a malicious act (state what you know).",
        "Member States where the product is made available, if not only the markets listed above.",
    ),
    Stage.NOTIFICATION: (
        "General information on the nature of the exploit and of the vulnerability.",
        "Corrective or mitigating measures taken, and those users can take.",
        "How sensitive the notified information is.",
    ),
    Stage.FINAL: (
        "Description of the vulnerability, its severity and impact.",
        "Information about any malicious actor that exploited it, where available.",
        "Details about the security update or other corrective measures made available.",
    ),
}
_TITLES = {
    Stage.EARLY_WARNING: "Early warning of an actively exploited vulnerability (CRA Article 14(2)(a))",
    Stage.NOTIFICATION: "Vulnerability notification (CRA Article 14(2)(b))",
    Stage.FINAL: "Final report (CRA Article 14(2)(c))",
}


@dataclass(frozen=True)
class DraftRelease:
    version: str
    released_at: str
    image_sha256: str
    on_market_since: str


@dataclass(frozen=True)
class Draft:
    stage: str
    title: str
    case_id: int
    generated_at: str
    advisory_id: str
    severity: str
    summary: str
    actively_exploited: bool
    manufacturer: str
    product: str
    model: str
    category: str
    markets: tuple[str, ...]
    support_end: str
    affected_components: tuple[str, ...]
    affected_releases: tuple[DraftRelease, ...]
    aware_at: str
    due_at: str
    time_left: str
    fixing_release: DraftRelease | None
    fix_available_at: str
    previous_filings: tuple[dict[str, str], ...]
    to_complete: tuple[str, ...]


def _release(db: sqlite_utils.Database, release_id: int) -> DraftRelease:
    r = release_by_id(db, release_id)
    return DraftRelease(r.version, r.released_at, r.image_sha256, r.on_market_since)


def build_draft(db: sqlite_utils.Database, case_id: int, stage: Stage | str, now: datetime) -> Draft:
    """The draft of one report of one case."""
    try:
        stage = Stage(stage)
    except ValueError:
        raise LedgerError(f"unknown stage {stage!r}; use early-warning, notification or final") from None
    case = get_case(db, case_id)
    if stage == Stage.FINAL and not case.fix_available_at:
        raise LedgerError(
            f"case {case_id} has no fix yet; the final report is due 14 days after one is "
            "available (record it with `cra-fw release add` or `cra-fw case fix`)"
        )
    product = get_product(db, case.product)
    support = get_support(db, product.id)
    clock = next((c for c in case.clocks if c.stage == stage), None)
    due = clock.due if clock else None
    to_complete = list(_TO_COMPLETE[stage])
    if not product.manufacturer:
        to_complete.insert(0, "Manufacturer name and contact (not recorded for this product).")
    if not product.markets:
        to_complete.insert(0, "Member States where the product is made available (no markets recorded).")
    return Draft(
        stage=str(stage),
        title=_TITLES[stage],
        case_id=case.id,
        generated_at=format_utc(now),
        advisory_id=case.advisory_id,
        severity=case.severity,
        summary=case.summary,
        actively_exploited=case.actively_exploited,
        manufacturer=product.manufacturer,
        product=product.name,
        model=product.model,
        category=product.category,
        markets=product.markets,
        support_end=support.end_month if support else "",
        affected_components=case.components,
        affected_releases=tuple(_release(db, rid) for rid in case.release_ids),
        aware_at=case.aware_at,
        due_at=format_utc(due) if due else "",
        time_left=human_delta(due - now) if due else "",
        fixing_release=_release(db, case.fixing_release_id) if case.fixing_release_id else None,
        fix_available_at=case.fix_available_at,
        previous_filings=tuple(
            {"stage": str(f.stage), "filed_at": f.filed_at, "reference": f.reference} for f in case.filings
        ),
        to_complete=tuple(to_complete),
    )


def to_json(draft: Draft) -> str:
    return json.dumps(asdict(draft), indent=2, ensure_ascii=False) + "\n"


def _when(text: str) -> str:
    if not text:
        return "-"
    from cra_fw.ledger.clocks import parse_utc

    return f"{text} ({format_local(parse_utc(text))})"


def to_markdown(draft: Draft) -> str:
    lines = [
        f"# {draft.title}",
        "",
        f"DRAFT generated by cra-fw from the ledger at {draft.generated_at} (case {draft.case_id}). "
        "Check every line before submitting it on the single reporting platform.",
        "",
        "## Deadline",
        "",
        f"- Manufacturer aware since: {_when(draft.aware_at)}",
        f"- This report is due: {_when(draft.due_at)}"
        + (f", {draft.time_left} left" if draft.time_left else ""),
    ]
    if draft.fix_available_at:
        lines.append(f"- Corrective measure available since: {_when(draft.fix_available_at)}")
    lines += [
        "",
        "## Manufacturer and product",
        "",
        f"- Manufacturer: {draft.manufacturer or 'TO COMPLETE'}",
        f"- Product: {draft.product}" + (f" (model {draft.model})" if draft.model else ""),
        f"- Category: {draft.category or '-'}",
        f"- Made available in: {', '.join(draft.markets) if draft.markets else 'TO COMPLETE'}",
        f"- Support period ends: {draft.support_end or 'not declared'}",
        "",
        "## Vulnerability",
        "",
        f"- Identifier: {draft.advisory_id}",
        f"- Severity: {draft.severity or 'unknown'}",
        f"- Actively exploited: {'yes (listed in CISA KEV)' if draft.actively_exploited else 'no'}",
        f"- Affected components: {', '.join(draft.affected_components) or '-'}",
    ]
    if draft.summary:
        lines += ["", f"> {draft.summary}"]
    lines += [
        "",
        "## Affected releases",
        "",
        "| version | released | image sha256 | on the market since |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.version} | {r.released_at} | `{r.image_sha256}` | {r.on_market_since or 'no'} |"
        for r in draft.affected_releases
    ]
    if draft.fixing_release:
        r = draft.fixing_release
        lines += [
            "",
            "## Corrective measure",
            "",
            f"- Fixing release {r.version}, released {r.released_at}, image sha256 `{r.image_sha256}`",
        ]
    if draft.previous_filings:
        lines += ["", "## Reports already filed", ""]
        lines += [
            f"- {f['stage']}: {f['filed_at']}" + (f" (ref. {f['reference']})" if f["reference"] else "")
            for f in draft.previous_filings
        ]
    lines += ["", "## To complete by the manufacturer", ""]
    lines += [f"- [ ] {item}" for item in draft.to_complete]
    return "\n".join(lines) + "\n"


def write_draft(draft: Draft, outdir: Path) -> tuple[Path, Path]:
    """Write ``case-ID-STAGE.md`` and ``.json`` into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / f"case-{draft.case_id}-{draft.stage}"
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    md.write_text(to_markdown(draft), encoding="utf-8")
    js.write_text(to_json(draft), encoding="utf-8")
    return md, js
