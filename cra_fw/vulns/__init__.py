"""Vulnerability stage: match components against offline NVD, OSV, CISA KEV and EPSS feeds.

Entry points:
* ``run(components, ctx) -> VulnResult`` for the scan pipeline;
* ``match_components(components, db) -> list[VulnMatch]`` without a scan;
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cra_fw.context import ScanContext
from cra_fw.db import default_path
from cra_fw.errors import CraFwError
from cra_fw.records import Assessment, AssessmentStatus, Component, Finding, Location, Severity
from cra_fw.vulns.match import match_components

if TYPE_CHECKING:
    import sqlite_utils

from cra_fw.vulns.records import ARTICLE14_NOTE, Triage, VulnMatch, VulnResult

__all__ = [
    "run",
    "match_components",
    "findings_for",
    "VulnMatch",
    "VulnResult",
    "Triage",
    "ARTICLE14_NOTE",
]

CRA_REFS = ("Annex I Part I (2)(a)", "Annex I Part II 1", "Annex I Part II 2")
KEV_REF = "Article 14(2)"
FEEDS_EXPECTED = ("nvd", "kev")


def _location(component: Component, ctx: ScanContext | None) -> Location:
    if not component.files:
        return Location()
    layer_id, _, path = component.files[0].partition(":")
    chain: tuple[str, ...] = ()
    if ctx is not None:
        try:
            chain = ctx.layer_chain(layer_id)
        except KeyError:
            chain = ()
    return Location(layer_chain=chain, path=path or component.files[0])


def findings_for(
    components: Iterable[Component], matches: Iterable[VulnMatch], ctx: ScanContext | None = None
) -> list[Finding]:
    """One Finding per vulnerable component (suppressed when every match is triaged away)."""
    by_key: dict[str, list[VulnMatch]] = {}
    for m in matches:
        by_key.setdefault(m.component_key, []).append(m)
    out = []
    for component in components:
        found = by_key.pop(component.key, None)
        if not found:
            continue
        certain = [m for m in found if not m.possible]
        possible = [m for m in found if m.possible and m.open]
        if certain:
            out.append(_component_finding(component, certain, ctx))
        if possible:
            out.append(_possible_finding(component, possible, ctx))
    return out


def _possible_finding(component: Component, matches: list[VulnMatch], ctx: ScanContext | None) -> Finding:
    """Matches on a version known only as a bound: listed apart, never actively exploited here."""
    ids = ", ".join(m.advisory_id for m in matches[:20]) + (" ..." if len(matches) > 20 else "")
    kev = [m.advisory_id for m in matches if m.kev]
    known = component.version_range or f"{component.version_certainty} {component.version}"
    evidence = f"{ids}; the version is known only as {known}"
    if kev:
        evidence += f"; KEV-listed ({', '.join(kev)}) but not established for this component"
    return Finding(
        rule_id="vuln.possible-vulnerability",
        category="vulnerability",
        severity=Severity.MEDIUM,
        title=f"{component.name} {component.version}: {len(matches)} possible vulnerabilit"
        + ("y" if len(matches) == 1 else "ies")
        + " (version uncertain)",
        cra_reference=CRA_REFS,
        location=_location(component, ctx),
        evidence=evidence,
        remediation="Establish the exact version (a package database in the image, the build SBOM with "
        "`cra-fw scan --build-sbom`), or record a decision with `cra-fw triage`. "
        + (matches[0].settle if matches[0].settle else ""),
        fingerprint=f"possible:{component.purl or component.key}",
        extra={
            "component": component.purl or component.key,
            "advisories": ",".join(m.advisory_id for m in matches),
        },
    )


def _component_finding(component: Component, found: list[VulnMatch], ctx: ScanContext | None) -> Finding:
    open_matches = [m for m in found if m.open]
    kev = [m for m in open_matches if m.kev]
    ranks = [m.severity.rank for m in open_matches if m.severity is not None]
    if kev:
        severity = Severity.CRITICAL
    elif ranks:
        severity = next(s for s in Severity if s.rank == max(ranks))
    else:
        severity = Severity.MEDIUM
    shown = open_matches or found
    ids = ", ".join(m.advisory_id for m in shown[:20]) + (" ..." if len(shown) > 20 else "")
    fixes = sorted({m.fixed_version for m in open_matches if m.fixed_version})
    title = f"{component.name} {component.version}: {len(open_matches)} known vulnerabilit" + (
        "y" if len(open_matches) == 1 else "ies"
    )
    if kev:
        title += f", {len(kev)} actively exploited (CISA KEV)"
    evidence = f"{ids}"
    if kev:
        evidence += "; KEV: " + ", ".join(
            f"{m.advisory_id} (added {m.kev_date_added}, due {m.kev_due_date})" for m in kev
        )
        evidence += f"; {ARTICLE14_NOTE}"
    remediation = (
        f"Update {component.name} to a version without these vulnerabilities"
        + (f" (fixed in: {', '.join(fixes[:5])})" if fixes else "")
        + ", or record a triage decision with `cra-fw triage` when it is not affected."
    )
    if kev:
        remediation += (
            " Actively exploited: notify the CSIRT/ENISA within 24 hours of becoming aware (Article 14)."
        )
    all_dismissed = not open_matches
    return Finding(
        rule_id="vuln.actively-exploited" if kev else "vuln.known-vulnerability",
        category="vulnerability",
        severity=severity,
        title=title
        if open_matches
        else f"{component.name} {component.version}: all "
        f"{len(found)} matched vulnerabilities triaged as not affecting it",
        cra_reference=CRA_REFS + ((KEV_REF,) if kev else ()),
        location=_location(component, ctx),
        evidence=evidence,
        remediation=remediation,
        fingerprint=component.purl or component.key,
        suppressed=all_dismissed,
        suppression_reason="triaged: " + ", ".join(sorted({m.triage_state for m in found}))
        if all_dismissed
        else "",
        extra={
            "component": component.purl or component.key,
            "advisories": ",".join(m.advisory_id for m in found),
            "kev": ",".join(m.advisory_id for m in kev),
        },
    )


def _feed_findings(db, max_age_days: int, now: datetime | None = None) -> list[Finding]:
    from cra_fw.feeddb import feed_status

    out = []
    status = {s.name: s for s in feed_status(db)}
    for name in FEEDS_EXPECTED:
        if name not in status:
            out.append(
                Finding(
                    rule_id="vuln.feed-missing",
                    category="vulnerability",
                    severity=Severity.MEDIUM,
                    title=f"No {name.upper()} feed imported: vulnerability results are incomplete",
                    cra_reference=("Annex I Part II 1",),
                    remediation=f"Import the {name.upper()} feed with `cra-fw db import FILE` or `cra-fw db update`.",
                    fingerprint=f"feed:{name}",
                )
            )
    for s in status.values():
        age = s.age_days(now)
        if age is not None and age > max_age_days:
            out.append(
                Finding(
                    rule_id="vuln.feed-stale",
                    category="vulnerability",
                    severity=Severity.MEDIUM,
                    title=f"The {s.name.upper()} feed is {int(age)} days old (limit {max_age_days})",
                    cra_reference=("Annex I Part II 1",),
                    evidence=f"newest data {s.feed_date or 'unknown'}, imported {s.imported_at}",
                    remediation="Refresh the feeds with `cra-fw db update` (online) or `cra-fw db import FILE`.",
                    fingerprint=f"feed:{s.name}",
                    extra={"feed": s.name, "age_days": f"{age:.1f}"},
                )
            )
    return out


def _kernel_build_filter(
    matches: list[VulnMatch], db: sqlite_utils.Database, ctx: ScanContext
) -> tuple[list[VulnMatch], list[Finding]]:
    """Kernel CVEs whose affected files the image's kernel configuration does not build: not affected."""
    import dataclasses

    from cra_fw.vulns.kernel import KERNEL_NAMES, kernel_build, not_built, program_files

    kernels = [m for m in matches if m.component_name.lower() in KERNEL_NAMES and m.open]
    if not kernels:
        return matches, []
    build = kernel_build(ctx.files)
    if build is None:
        return matches, [
            Finding(
                rule_id="vuln.kernel-config-unknown",
                category="vulnerability",
                severity=Severity.INFO,
                title=f"{len(kernels)} kernel CVE matches kept: the image says nothing about how its kernel "
                "was configured",
                cra_reference=("Annex I Part II 1",),
                remediation="Ship the configuration (/boot/config-*, IKCONFIG) or scan with it, so CVEs in "
                "code the kernel does not build can be set aside.",
                fingerprint="kernel-config:unknown",
            )
        ]
    files = program_files(db, {m.advisory_id for m in kernels})
    out: list[VulnMatch] = []
    filtered = 0
    reasons: dict[str, int] = {}
    kernel_ids = {id(m) for m in kernels}
    for m in matches:
        verdict = None
        if id(m) in kernel_ids and build.config:
            verdict = not_built(build, files.get(m.advisory_id, ()))
        if verdict is None:
            out.append(m)
            continue
        filtered += 1
        symbol = verdict.evidence.split(": ", 1)[1].split(" is not set", 1)[0]
        reasons[symbol] = reasons.get(symbol, 0) + 1
        triage = Triage(
            "not_affected",
            "code_not_present",
            (),
            f"not built in this kernel: {verdict.evidence}",
            f"kernel-config:{build.config_source}",
        )
        out.append(dataclasses.replace(m, triage=triage))
    without = sum(1 for m in kernels if not files.get(m.advisory_id))
    detail = ", ".join(f"{sym}: {n}" for sym, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:20])
    return out, [
        Finding(
            rule_id="vuln.kernel-config-filtered",
            category="vulnerability",
            severity=Severity.INFO,
            title=f"{filtered} of {len(kernels)} kernel CVE matches are in code this kernel does not build",
            cra_reference=("Annex I Part II 1",),
            evidence=f"configuration {build.config_source or 'not found'}; objects from "
            f"{build.objects_source or 'no module lists'} ({len(build.built_objects)} built objects); "
            f"set aside by symbol: {detail or 'none'}; {without} matched CVEs name no affected files "
            "(import the kernel CNA's CVE JSON 5 records) and were kept",
            remediation="Each set-aside CVE is in the VEX as not_affected (code_not_present) with the "
            "symbol and configuration file as the reason.",
            fingerprint="kernel-config:filtered",
            extra={
                "filtered": str(filtered),
                "kernel_matches": str(len(kernels)),
                "without_files": str(without),
            },
        )
    ]


def run(components: list[Component], ctx: ScanContext, now: datetime | None = None) -> VulnResult:
    """The scan stage: match, then one Finding per vulnerable component plus feed warnings."""
    from cra_fw.feeddb import assess_feeds, open_feed_db

    path = Path(ctx.options.db_path) if ctx.options.db_path else default_path()
    if not path.exists():
        why = f"no vulnerability database at {path}: import feeds with `cra-fw db import FILE...` or `cra-fw db update`"
        return VulnResult(
            (),
            (
                Finding(
                    rule_id="vuln.no-database",
                    category="vulnerability",
                    severity=Severity.MEDIUM,
                    title="No vulnerability database: components were not checked for known vulnerabilities",
                    cra_reference=("Annex I Part I (2)(a)", "Annex I Part II 1"),
                    evidence=str(path),
                    remediation="Import feeds with `cra-fw db import FILE...` or `cra-fw db update`, "
                    "or pass --db PATH.",
                    fingerprint="db:missing",
                ),
            ),
            _not_assessed(why),
        )
    try:
        db = open_feed_db(path, readonly=True)
        try:
            matches = match_components(components, db)
            matches, kernel_findings = _kernel_build_filter(matches, db, ctx)
            feed_findings = _feed_findings(db, ctx.options.feed_max_age_days, now) + kernel_findings
            assessed = assess_feeds(db, ctx.options.feed_max_age_days, now)
        finally:
            db.conn.close()
    except (CraFwError, OSError, Exception) as exc:  # noqa: BLE001 - a broken db must not end the scan
        return VulnResult(
            (),
            (
                Finding(
                    rule_id="vuln.database-error",
                    category="vulnerability",
                    severity=Severity.MEDIUM,
                    title="The vulnerability database could not be read",
                    cra_reference=("Annex I Part II 1",),
                    evidence=f"{type(exc).__name__}: {exc}"[:500],
                    remediation="Check the file given with --db, or rebuild it with `cra-fw db import`.",
                    fingerprint="db:error",
                ),
            ),
            _not_assessed(f"the vulnerability database {path} could not be read: {exc}"[:300]),
        )
    return VulnResult(tuple(matches), tuple(feed_findings + findings_for(components, matches, ctx)), assessed)


def _not_assessed(reason: str) -> tuple[Assessment, Assessment]:
    return (
        Assessment("vulnerabilities", AssessmentStatus.NOT_ASSESSED, reason),
        Assessment("kev", AssessmentStatus.NOT_ASSESSED, reason),
    )
