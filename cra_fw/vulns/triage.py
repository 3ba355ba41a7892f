"""Persisted triage decisions, and import of CycloneDX VEX, OpenVEX and CSAF VEX documents.

A decision is keyed by advisory id and component reference (purl, purl without
qualifiers, or name@version), so it applies to every later scan of any release
that contains the component, and survives feed re-imports (it lives in its own
table, which imports never touch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cra_fw import safejson
from cra_fw.db import transaction
from cra_fw.errors import FeedError
from cra_fw.feeddb import now_iso
from cra_fw.vulns.match import normalize_ref

if TYPE_CHECKING:
    import sqlite_utils

CDX_STATES = (
    "resolved",
    "resolved_with_pedigree",
    "exploitable",
    "in_triage",
    "false_positive",
    "not_affected",
)
CDX_JUSTIFICATIONS = (
    "code_not_present",
    "code_not_reachable",
    "requires_configuration",
    "requires_dependency",
    "requires_environment",
    "protected_by_compiler",
    "protected_at_runtime",
    "protected_at_perimeter",
    "protected_by_mitigating_control",
)
CDX_RESPONSES = ("can_not_fix", "will_not_fix", "update", "rollback", "workaround_available")

_OPENVEX_STATE = {
    "not_affected": "not_affected",
    "affected": "exploitable",
    "fixed": "resolved",
    "under_investigation": "in_triage",
}
_OPENVEX_JUSTIFICATION = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "protected_by_mitigating_control",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}
MAX_VEX_BYTES = 64 * 1024 * 1024


class TriageError(FeedError):
    """A triage decision or VEX document is not usable."""


@dataclass(frozen=True)
class TriageDecision:
    advisory_id: str
    component: str
    state: str
    justification: str = ""
    response: tuple[str, ...] = ()
    detail: str = ""
    source: str = "cli"


def validate(decision: TriageDecision) -> None:
    if not decision.advisory_id.strip():
        raise TriageError("a triage decision needs an advisory id such as CVE-2023-4911")
    if not decision.component.strip():
        raise TriageError("a triage decision needs --component PURL (or name@version)")
    if decision.state not in CDX_STATES:
        raise TriageError(f"state {decision.state!r} is not one of: {', '.join(CDX_STATES)}")
    if decision.justification and decision.justification not in CDX_JUSTIFICATIONS:
        raise TriageError(
            f"justification {decision.justification!r} is not one of: {', '.join(CDX_JUSTIFICATIONS)}"
        )
    for resp in decision.response:
        if resp not in CDX_RESPONSES:
            raise TriageError(f"response {resp!r} is not one of: {', '.join(CDX_RESPONSES)}")


def record(db: sqlite_utils.Database, decisions: list[TriageDecision]) -> int:
    """Store (replace) decisions; returns how many."""
    for decision in decisions:
        validate(decision)
    stamp = now_iso()
    with transaction(db):
        db["triage"].upsert_all(
            [
                {
                    "advisory_id": d.advisory_id.strip(),
                    "component": normalize_ref(d.component),
                    "state": d.state,
                    "justification": d.justification,
                    "response": ",".join(d.response),
                    "detail": d.detail[:4000],
                    "source": d.source,
                    "updated": stamp,
                }
                for d in decisions
            ],
            pk=("advisory_id", "component"),
        )
    return len(decisions)


def list_decisions(db: sqlite_utils.Database) -> list[TriageDecision]:
    return [
        TriageDecision(
            r["advisory_id"],
            r["component"],
            r["state"],
            r["justification"] or "",
            tuple(x for x in (r["response"] or "").split(",") if x),
            r["detail"] or "",
            r["source"] or "",
        )
        for r in db["triage"].rows_where(order_by="advisory_id, component")
    ]


def _cdx_decisions(doc: dict, source: str) -> list[TriageDecision]:
    refs: dict[str, str] = {}

    def collect(components: list) -> None:
        for comp in components or []:
            if isinstance(comp, dict):
                ref = comp.get("bom-ref")
                if ref:
                    refs[str(ref)] = str(comp.get("purl") or (f"{comp.get('name')}@{comp.get('version')}"))
                collect(comp.get("components") or [])

    collect(doc.get("components") or [])
    meta_comp = (doc.get("metadata") or {}).get("component")
    if isinstance(meta_comp, dict):
        collect([meta_comp])
    out = []
    for vuln in doc.get("vulnerabilities") or []:
        if not isinstance(vuln, dict):
            continue
        analysis = vuln.get("analysis") or {}
        state = str(analysis.get("state", ""))
        if not vuln.get("id") or state not in CDX_STATES:
            continue
        justification = str(analysis.get("justification", ""))
        response = tuple(str(r) for r in analysis.get("response") or [] if str(r) in CDX_RESPONSES)
        for affect in vuln.get("affects") or []:
            ref = str((affect or {}).get("ref", ""))
            # a ref is a bom-ref in this document, a purl, or a BOM-Link (urn:cdx:...#ref)
            target = (
                refs.get(ref) or refs.get(ref.split("#", 1)[-1]) or (ref if ref.startswith("pkg:") else "")
            )
            if not target:
                continue
            out.append(
                TriageDecision(
                    str(vuln["id"]),
                    target,
                    state,
                    justification if justification in CDX_JUSTIFICATIONS else "",
                    response,
                    str(analysis.get("detail", "")),
                    source,
                )
            )
    return out


def _openvex_decisions(doc: dict, source: str) -> list[TriageDecision]:
    out = []
    for stmt in doc.get("statements") or []:
        if not isinstance(stmt, dict):
            continue
        vuln = stmt.get("vulnerability")
        vuln_id = vuln.get("name") or vuln.get("@id") if isinstance(vuln, dict) else vuln
        state = _OPENVEX_STATE.get(str(stmt.get("status", "")))
        if not vuln_id or not state:
            continue
        justification = _OPENVEX_JUSTIFICATION.get(str(stmt.get("justification", "")), "")
        detail = str(
            stmt.get("impact_statement") or stmt.get("status_notes") or stmt.get("action_statement") or ""
        )
        response = ("update",) if state == "exploitable" and stmt.get("action_statement") else ()
        for product in stmt.get("products") or []:
            ids = []
            if isinstance(product, str):
                ids.append(product)
            elif isinstance(product, dict):
                ids.append(str(product.get("@id", "")))
                ids.extend(str(v) for v in (product.get("identifiers") or {}).values())
                for sub in product.get("subcomponents") or []:
                    if isinstance(sub, dict):
                        ids.append(str(sub.get("@id", "")))
            for ident in ids:
                if ident.startswith("pkg:"):
                    out.append(
                        TriageDecision(str(vuln_id), ident, state, justification, response, detail, source)
                    )
    return out


def import_vex(db: sqlite_utils.Database, path: Path | str) -> int:
    """Import decisions from a CycloneDX VEX/BOM, an OpenVEX or a CSAF 2.0 VEX document; returns how many."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_VEX_BYTES:
            raise TriageError(f"{path}: larger than {MAX_VEX_BYTES} bytes")
        doc = safejson.loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise TriageError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise TriageError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}); "
            "pass a CycloneDX VEX or OpenVEX JSON document"
        ) from exc
    if not isinstance(doc, dict):
        raise TriageError(f"{path}: expected a JSON object")
    source = f"vex:{path.name}"
    if doc.get("bomFormat") == "CycloneDX":
        decisions = _cdx_decisions(doc, source)
    elif "openvex" in str(doc.get("@context", "")) or "statements" in doc:
        decisions = _openvex_decisions(doc, source)
    elif isinstance(doc.get("document"), dict) and doc["document"].get("csaf_version"):
        from cra_fw.vulns.csaf import decisions_from_csaf

        decisions = [
            TriageDecision(adv, purl, state, justification, (), detail, source)
            for adv, purl, state, justification, detail in decisions_from_csaf(doc)
        ]
    else:
        raise TriageError(f"{path}: neither a CycloneDX, an OpenVEX nor a CSAF VEX document")
    return record(db, decisions) if decisions else 0
