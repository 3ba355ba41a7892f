"""Build SBOMs in: match a CycloneDX or SPDX SBOM (Yocto create-spdx, Syft, cra-fw's own) as a scan
would, take Yocto ``cve-check`` results as already-patched CVEs, and compare a build SBOM with what
the binary analysis found in the image.

A distro package the SBOM declares (``pkg:deb``, ``pkg:apk``, ``pkg:opkg`` purls) becomes the same
component a scan makes of the installed package, so both give the same matches.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packageurl import PackageURL

from cra_fw.errors import FeedError
from cra_fw.records import Component, Evidence, Finding, ScanReport, Severity
from cra_fw.sbomcheck import SbomDoc
from cra_fw.vulns.records import Triage, VulnMatch

_MANAGER = {"deb": "dpkg", "apk": "apk", "opkg": "opkg"}
MAX_CVE_CHECK_BYTES = 256 * 1024 * 1024


def _purl(identifiers: Iterable[str]) -> PackageURL | None:
    for ident in identifiers:
        if ident.startswith("pkg:"):
            try:
                return PackageURL.from_string(ident)
            except ValueError:
                continue
    return None


def components_from_sbom(doc: SbomDoc, origin: str = "sbom") -> list[Component]:
    """The SBOM's components as cra-fw components (distro packages named as a scan names them)."""
    from cra_fw.identify.merge import component_for_package
    from cra_fw.identify.pkgdb import PackageRecord
    from cra_fw.identify.signatures import default_signatures

    sigset = default_signatures()
    by_name = sigset.by_name()
    out: dict[tuple[str, str, str], Component] = {}
    for sc in doc.components:
        purl = _purl(sc.identifiers)
        if purl is not None and purl.type in _MANAGER and purl.version:
            quals = purl.qualifiers or {}
            upstream = str(quals.get("upstream", ""))
            source, _, source_version = upstream.partition("@")
            rec = PackageRecord(
                purl.name,
                purl.version,
                _MANAGER[purl.type],
                "sbom",
                origin,
                arch=str(quals.get("arch", "")),
                source=source,
                source_version=source_version,
                distro=str(quals.get("distro", "")),
            )
            comp = component_for_package(rec, sigset)
        else:
            version = sc.version or (purl.version if purl and purl.version else "")
            sig = by_name.get(sc.name.lower())
            cpe = next((i for i in sc.identifiers if i.startswith("cpe:2.3:")), "")
            comp = Component(
                name=sig.name if sig else sc.name,
                version=version,
                purl=purl.to_string() if purl else "",
                cpe=(sig.cpe_for(version) if sig and version else "") or cpe,
                evidence=(
                    Evidence("manifest", 1.0, origin, "sbom", f"{doc.format}: {sc.name} {sc.version}"),
                ),
            )
        if comp.name and comp.version:
            out.setdefault((comp.name, comp.version, comp.purl), comp)
    return sorted(out.values(), key=lambda c: (c.name, c.version, c.purl))


@dataclass(frozen=True)
class CveCheckEntry:
    recipe: str
    version: str
    advisory: str
    status: str  # Patched, Ignored, Unpatched
    detail: str


def load_cve_check(path: Path) -> list[CveCheckEntry]:
    """Yocto ``cve-check`` JSON (``cve-summary.json`` or a recipe's ``*_cve.json``)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CVE_CHECK_BYTES:
            raise FeedError(f"{path}: larger than {MAX_CVE_CHECK_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FeedError(f"cannot read Yocto cve-check JSON {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("package"), list):
        raise FeedError(f"{path}: not Yocto cve-check JSON (no 'package' list)")
    out = []
    for pkg in doc["package"]:
        if not isinstance(pkg, dict):
            continue
        for issue in pkg.get("issue") or []:
            if isinstance(issue, dict) and issue.get("id"):
                detail = str(issue.get("detail") or issue.get("description") or "")
                out.append(
                    CveCheckEntry(
                        str(pkg.get("name", "")),
                        str(pkg.get("version", "")),
                        str(issue["id"]),
                        str(issue.get("status", "")),
                        detail,
                    )
                )
    return out


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def apply_cve_check(
    matches: Iterable[VulnMatch], entries: Iterable[CveCheckEntry], source: str
) -> list[VulnMatch]:
    """Matches with the build's verdicts: a CVE Yocto reports Patched is resolved, Ignored not affected.

    A decision recorded with ``cra-fw triage`` stays; cra-fw's own distro analysis gives way.
    """
    verdicts: dict[tuple[str, str], CveCheckEntry] = {}
    for e in entries:
        if e.status in ("Patched", "Ignored"):
            verdicts[(_norm(e.recipe), e.advisory)] = e
    out = []
    for m in matches:
        found = verdicts.get((_norm(m.component_name), m.advisory_id))
        if found is None or (m.triage is not None and not m.triage.source.startswith("distro:")):
            out.append(m)
            continue
        e = found
        where = f"Yocto cve-check: {e.advisory} {e.status.lower()} in recipe {e.recipe} {e.version}"
        triage = (
            Triage("resolved", "", (), f"{where}{': ' + e.detail if e.detail else ''}", source)
            if e.status == "Patched"
            else Triage(
                "not_affected",
                "requires_configuration",
                (),
                f"{where}{': ' + e.detail if e.detail else ''}",
                source,
            )
        )
        out.append(dataclasses.replace(m, triage=triage))
    return out


@dataclass(frozen=True)
class BuildDiff:
    """A build SBOM against the image: what each side has that the other lacks."""

    not_in_image: tuple[tuple[str, str], ...]  # declared by the build, not found in the image
    not_declared: tuple[tuple[str, str], ...]  # found in the image, not declared by the build
    version_differs: tuple[tuple[str, str, str], ...]  # name, image version, build version


def compare_with_build(image: Iterable[Component], build: Iterable[Component]) -> BuildDiff:
    image, build = list(image), list(build)

    def index(comps: Iterable[Component]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in comps:
            if c.kind != "operating-system":
                out.setdefault(_norm(c.name), set()).add(c.version)
        return out

    img, bld = index(image), index(build)
    names = {_norm(c.name): c.name for c in [*image, *build]}
    missing = tuple((names[n], v) for n in sorted(set(bld) - set(img)) for v in sorted(bld[n]))
    extra = tuple((names[n], v) for n in sorted(set(img) - set(bld)) for v in sorted(img[n] - {""}) or [""])
    differs = tuple(
        (names[n], ",".join(sorted(img[n])), ",".join(sorted(bld[n])))
        for n in sorted(set(img) & set(bld))
        if not img[n] & bld[n] and img[n] - {""}
    )
    return BuildDiff(missing, extra, differs)


_VULN_RULES = ("vuln.known-vulnerability", "vuln.actively-exploited", "vuln.possible-vulnerability")


def amend_report(
    report: ScanReport, build_sbom: Path | None = None, cve_check: Path | None = None
) -> BuildDiff | None:
    """Apply a build's inputs to a finished scan: Yocto cve-check verdicts, and the build SBOM's
    differences with the image (findings both ways).  The caller writes the outputs again."""
    from cra_fw.sbomcheck import load
    from cra_fw.vulns import findings_for

    diff = None
    if cve_check is not None:
        matches = [m for m in report.vulnerabilities if isinstance(m, VulnMatch)]
        amended = apply_cve_check(
            matches, load_cve_check(cve_check), f"yocto-cve-check:{Path(cve_check).name}"
        )
        report.vulnerabilities[:] = amended
        report.findings[:] = [f for f in report.findings if f.rule_id not in _VULN_RULES]
        report.findings.extend(findings_for(report.components, amended))
    if build_sbom is not None:
        build = components_from_sbom(load(Path(build_sbom)), str(build_sbom))
        diff = compare_with_build(report.components, build)
        name = Path(build_sbom).name
        for comp, version in diff.not_in_image:
            report.findings.append(
                Finding(
                    rule_id="sbom.build-not-in-image",
                    category="sbom",
                    severity=Severity.LOW,
                    title=f"{comp} {version}: declared by the build SBOM, not found in the image",
                    cra_reference=("Annex I Part II 1",),
                    evidence=f"{name} declares {comp} {version}",
                    remediation="Check whether it ships (cra-fw may not identify it in binaries) or the build "
                    "SBOM lists build-time components; the SBOM handed over must describe what ships.",
                    fingerprint=f"build-sbom:missing:{comp}@{version}",
                )
            )
        for comp, version in diff.not_declared:
            report.findings.append(
                Finding(
                    rule_id="sbom.build-undeclared",
                    category="sbom",
                    severity=Severity.MEDIUM,
                    title=f"{comp} {version}: in the image, not declared by the build SBOM",
                    cra_reference=("Annex I Part II 1",),
                    evidence=f"found by binary analysis; {name} does not list it",
                    remediation="Add it to the build's SBOM (vendor blobs, prebuilt binaries and static "
                    "libraries are the usual gaps).",
                    fingerprint=f"build-sbom:undeclared:{comp}@{version}",
                )
            )
        for comp, image_version, build_version in diff.version_differs:
            report.findings.append(
                Finding(
                    rule_id="sbom.build-version-differs",
                    category="sbom",
                    severity=Severity.MEDIUM,
                    title=f"{comp}: the image has {image_version}, the build SBOM says {build_version}",
                    cra_reference=("Annex I Part II 1",),
                    fingerprint=f"build-sbom:version:{comp}",
                )
            )
    return diff


def sbom_report(
    path: Path, db_path: Path | None, cve_check: Path | None = None, max_age_days: int = 7
) -> ScanReport:
    """A report for an SBOM: its components, their matches, findings and feed warnings."""
    import time
    from datetime import UTC, datetime

    from cra_fw import __version__
    from cra_fw.context import ScanContext, ScanOptions
    from cra_fw.pipeline import image_info
    from cra_fw.records import Assessment, AssessmentStatus, ToolInfo
    from cra_fw.sbomcheck import load
    from cra_fw.vulns import run

    path = Path(path)
    doc = load(path)
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    report = ScanReport(
        image=image_info(path), tool=ToolInfo("cra-fw", __version__), started=stamp, extractor="sbom"
    )
    report.components.extend(components_from_sbom(doc, str(path)))
    ctx = ScanContext(report.image, [], [], ScanOptions(db_path=db_path, feed_max_age_days=max_age_days))
    start = time.monotonic()
    result = run(list(report.components), ctx)
    report.stats["seconds_identify"] = 0.0
    report.stats["seconds_vulns"] = time.monotonic() - start
    report.vulnerabilities.extend(result.matches)
    report.findings.extend(result.findings)
    # nothing was unpacked: the components are what the SBOM declares; the vulnerability
    # stage says itself when it could not assess (no database, missing or stale feeds)
    report.assessments.append(
        Assessment("unpack", AssessmentStatus.COMPLETE, "SBOM input: nothing to unpack")
    )
    report.assessments.append(
        Assessment("components", AssessmentStatus.COMPLETE, f"as declared in {path.name}")
    )
    own = list(result.assessments)
    if not any(a.topic == "vulnerabilities" for a in own):
        own.insert(0, Assessment("vulnerabilities", AssessmentStatus.COMPLETE))
    report.assessments.extend(own)
    if cve_check is not None:
        amend_report(report, cve_check=cve_check)
    report.finished = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return report


def write_build_diff(diff: BuildDiff, outdir: Path, sbom: Path) -> str:
    """``OUTDIR/build-sbom-diff.json``; returns a one-paragraph summary for the terminal."""
    doc = {
        "build_sbom": sbom.name,
        "not_in_image": [{"name": n, "version": v} for n, v in diff.not_in_image],
        "not_declared": [{"name": n, "version": v} for n, v in diff.not_declared],
        "version_differs": [{"name": n, "image": a, "build": b} for n, a, b in diff.version_differs],
    }
    (outdir / "build-sbom-diff.json").write_text(json.dumps(doc, indent=2))
    lines = [
        f"build SBOM {sbom.name}: {len(diff.not_in_image)} declared but not found in the image, "
        f"{len(diff.not_declared)} in the image but not declared, {len(diff.version_differs)} versions differ"
    ]
    lines += [f"  - {n} {v} (declared, not found)" for n, v in diff.not_in_image[:20]]
    lines += [f"  + {n} {v} (found, not declared)" for n, v in diff.not_declared[:20]]
    lines += [f"  ~ {n}: image {a}, build {b}" for n, a, b in diff.version_differs[:20]]
    return "\n".join(lines)
