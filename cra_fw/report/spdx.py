"""SPDX 2.3 JSON SBOM (``sbom.spdx.json``), written directly from the records.

The image is the described package (purpose FIRMWARE) and CONTAINS every component
package; ELF link dependencies become DEPENDS_ON relationships.  File paths where a
component was found go to ``sourceInfo``; the identifying file's SHA-256/SHA-512 to
``checksums``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cra_fw.records import Component, ScanReport
from cra_fw.report import VERSION_UNKNOWN, application

FILE_NAME = "sbom.spdx.json"
_PURPOSE = {
    "library": "LIBRARY",
    "application": "APPLICATION",
    "operating-system": "OPERATING-SYSTEM",
    "firmware": "FIRMWARE",
    "framework": "FRAMEWORK",
}
_ALG = {"SHA-256": "SHA256", "SHA-512": "SHA512", "SHA-1": "SHA1", "MD5": "MD5"}
_ID_SAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_LICENSE_TOKEN = re.compile(r"^[A-Za-z0-9.\-+]+$")


def _spdx_id(prefix: str, text: str, used: set[str]) -> str:
    base = f"SPDXRef-{prefix}-{_ID_SAFE.sub('-', text).strip('-') or 'x'}"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def _license(values: tuple[str, ...]) -> str:
    items = [v.strip() for v in values if v.strip()]
    if not items:
        return "NOASSERTION"
    for item in items:
        for token in re.split(r"\s+|[()]", item):
            if token and token not in ("AND", "OR", "WITH") and not _LICENSE_TOKEN.match(token):
                return "NOASSERTION"
    return " AND ".join(f"({v})" if " " in v else v for v in items) if len(items) > 1 else items[0]


def _package(c: Component, spdx_id: str) -> dict[str, Any]:
    pkg: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": c.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "supplier": f"Organization: {c.supplier}" if c.supplier else "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": _license(c.licenses),
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": _PURPOSE.get(c.kind, "LIBRARY"),
    }
    if c.version:
        pkg["versionInfo"] = c.version
    checksums = [
        {"algorithm": _ALG[a], "checksumValue": v} for a, v in sorted(c.hashes.items()) if a in _ALG and v
    ]
    if checksums:
        pkg["checksums"] = checksums
    refs = []
    if c.cpe:
        refs.append(
            {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": c.cpe}
        )
    if c.purl:
        refs.append(
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": c.purl}
        )
    if refs:
        pkg["externalRefs"] = refs
    if c.files:
        pkg["sourceInfo"] = "found in: " + ", ".join(occ.partition(":")[2] or occ for occ in c.files)
    if c.evidence:
        pkg["comment"] = "identified by: " + "; ".join(
            f"{e.method} ({e.confidence:.2f}) {e.path}".strip() for e in c.evidence
        )
        if not c.version:
            pkg["comment"] += f"; version {VERSION_UNKNOWN}"
    return pkg


def build_document(report: ScanReport, created: str | None = None) -> dict[str, Any]:
    """The SPDX 2.3 document of ``report`` as a JSON-ready dict."""
    image = report.image
    created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    used: set[str] = {"SPDXRef-DOCUMENT"}
    app = application(report)
    image_id = _spdx_id("Image", image.name or "firmware", used)
    image_pkg = {
        "SPDXID": image_id,
        "name": (app.name if app else "") or image.name or "firmware",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "supplier": "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "FIRMWARE",
        "checksums": [
            {"algorithm": _ALG[a], "checksumValue": v}
            for a, v in (("SHA-256", image.sha256), ("SHA-512", image.sha512), ("MD5", image.md5))
            if v
        ],
    }
    if app:
        if app.version:
            image_pkg["versionInfo"] = app.version
        image_pkg["comment"] = f"image file {image.name}; identity from {app.source}"
    packages = [image_pkg]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}
    ]
    if app and app.device:
        device_id = _spdx_id("Device", app.device, used)
        packages.append(
            {
                "SPDXID": device_id,
                "name": app.device,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "supplier": "NOASSERTION",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": "DEVICE",
                "comment": "the chip the firmware runs on",
            }
        )
        relationships.append(
            {"spdxElementId": device_id, "relationshipType": "CONTAINS", "relatedSpdxElement": image_id}
        )
    ids: dict[str, str] = {}
    for c in report.components:
        if c.key in ids:
            continue
        ids[c.key] = _spdx_id("Package", f"{c.name}-{c.version}", used)
        packages.append(_package(c, ids[c.key]))
        relationships.append(
            {"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": ids[c.key]}
        )
    for dep in report.dependencies:
        for target in dep.depends_on:
            if dep.ref in ids and target in ids:
                relationships.append(
                    {
                        "spdxElementId": ids[dep.ref],
                        "relationshipType": "DEPENDS_ON",
                        "relatedSpdxElement": ids[target],
                    }
                )
    namespace_seed = f"{image.sha256}:{created}"
    extracted = _extracted_licences(packages)
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"cra-fw SBOM of {image.name or 'firmware'}",
        "documentNamespace": f"https://spdx.org/spdxdocs/cra-fw/{uuid.uuid5(uuid.NAMESPACE_URL, namespace_seed)}",
        "creationInfo": {"created": created, "creators": [f"Tool: {report.tool.name}-{report.tool.version}"]},
        "packages": packages,
        "relationships": relationships,
        **({"hasExtractedLicensingInfos": extracted} if extracted else {}),
    }


def _extracted_licences(packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SPDX 2.3 needs every ``LicenseRef-`` it names declared (vendor licences of MCU SDKs)."""
    refs = sorted(
        {
            ref
            for p in packages
            for key in ("licenseDeclared", "licenseConcluded")
            for ref in re.findall(r"LicenseRef-[A-Za-z0-9.\-]+", str(p.get(key, "")))
        }
    )
    return [
        {
            "licenseId": ref,
            "name": ref.removeprefix("LicenseRef-"),
            "extractedText": f"{ref.removeprefix('LicenseRef-')}: the supplier's own licence (not on the SPDX list)",
        }
        for ref in refs
    ]


def write(report: ScanReport, outdir: Path) -> Path:
    """Write ``sbom.spdx.json`` into ``outdir``; returns its path."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / FILE_NAME
    path.write_text(json.dumps(build_document(report), indent=2), encoding="utf-8")
    return path


def validate(path: Path) -> list[str]:
    """Problems spdx-tools finds in an SPDX document (empty list = valid)."""
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    try:
        doc = parse_file(str(path))
    except SPDXParsingError as exc:
        return [str(m) for m in exc.get_messages()]  # type: ignore[no-untyped-call]
    return [m.validation_message for m in validate_full_spdx_document(doc)]
