"""CycloneDX 1.6 SBOM (JSON and XML) from a ScanReport, via cyclonedx-python-lib.

The firmware image is ``metadata.component`` (type firmware, with its hashes); every
identified component carries name, version, supplier, purl, CPE 2.3, licences,
SHA-256/SHA-512 of the file it was identified in, its occurrences and
``evidence.identity`` (one method per way it was found, with a confidence).  The
ELF link graph becomes the dependency graph; the image depends on every component.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.component_evidence import (
    AnalysisTechnique,
    ComponentEvidence,
    Identity,
    IdentityField,
    Method,
    Occurrence,
)
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.output.xml import XmlV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import fixup_id
from packageurl import PackageURL

from cra_fw.records import Component, Evidence, ScanReport
from cra_fw.report import VERSION_UNKNOWN, application

JSON_NAME = "sbom.cdx.json"
XML_NAME = "sbom.cdx.xml"

_TYPES = {
    "library": ComponentType.LIBRARY,
    "application": ComponentType.APPLICATION,
    "operating-system": ComponentType.OPERATING_SYSTEM,
    "firmware": ComponentType.FIRMWARE,
    "framework": ComponentType.FRAMEWORK,
}
_TECHNIQUE = {
    "package-db": AnalysisTechnique.MANIFEST_ANALYSIS,
    "manifest": AnalysisTechnique.MANIFEST_ANALYSIS,
    "signature": AnalysisTechnique.BINARY_ANALYSIS,
    "banner": AnalysisTechnique.BINARY_ANALYSIS,
    "symbol": AnalysisTechnique.BINARY_ANALYSIS,
    "soname": AnalysisTechnique.BINARY_ANALYSIS,
    "filename": AnalysisTechnique.FILENAME,
    "hash": AnalysisTechnique.HASH_COMPARISON,
}
_HASH_ALG = {
    "SHA-256": HashAlgorithm.SHA_256,
    "SHA-512": HashAlgorithm.SHA_512,
    "SHA-1": HashAlgorithm.SHA_1,
    "MD5": HashAlgorithm.MD5,
}


def bom_ref(component: Component) -> str:
    """Stable bom-ref of a component: its key (``name@version``)."""
    return component.key


def _licenses(values: Iterable[str]) -> list[DisjunctiveLicense | LicenseExpression]:
    items = [v for v in values if v]
    if not items:
        return []
    if len(items) > 1 or " " in items[0]:
        expr = " AND ".join(f"({v})" if " " in v else v for v in items) if len(items) > 1 else items[0]
        return [LicenseExpression(expr)]
    spdx_id = fixup_id(items[0])
    return [DisjunctiveLicense(id=spdx_id) if spdx_id else DisjunctiveLicense(name=items[0])]


def _hashes(hashes: dict[str, str]) -> list[HashType]:
    return [
        HashType(alg=_HASH_ALG[alg], content=value)
        for alg, value in sorted(hashes.items())
        if alg in _HASH_ALG and value
    ]


def _component(c: Component) -> CdxComponent:
    identities = []
    by_method: dict[str, list[Evidence]] = {}
    for ev in c.evidence:
        by_method.setdefault(ev.method, []).append(ev)
    methods = [
        Method(
            technique=_TECHNIQUE.get(m, AnalysisTechnique.OTHER),
            confidence=Decimal(str(round(max(e.confidence for e in evs), 2))),
            value=f"{m}: " + "; ".join(sorted({(e.detail or e.path)[:160] for e in evs})[:5]),
        )
        for m, evs in sorted(by_method.items())
    ]
    if methods:
        overall = max(m.confidence for m in methods)
        identities.append(
            Identity(field=IdentityField.NAME, confidence=overall, concluded_value=c.name, methods=methods)
        )
        if c.version:
            identities.append(
                Identity(
                    field=IdentityField.VERSION,
                    confidence=overall,
                    concluded_value=c.version,
                    methods=methods,
                )
            )
    # The library keeps occurrences in a set ordered by bom-ref; without one of ours the
    # order would follow random ids, so each run would write a different SBOM.  The offset is
    # where in each file the identifying text sits, when known.
    offsets = {f"{e.layer_id}:{e.path}": e.offset for e in c.evidence if e.offset >= 0}
    occurrences = [
        Occurrence(
            bom_ref=f"{bom_ref(c)}#occurrence-{i:05d}",
            location=occ.partition(":")[2] or occ,
            offset=offsets.get(occ),
        )
        for i, occ in enumerate(c.files)
    ]
    evidence = (
        ComponentEvidence(identity=identities, occurrences=occurrences)
        if (identities or occurrences)
        else None
    )
    props = [
        Property(
            name="cra-fw:evidence",
            value=f"{ev.method} {ev.confidence:.2f} {ev.path}"
            + (f" @{ev.offset:#x}" if ev.offset >= 0 else ""),
        )
        for ev in c.evidence
    ]
    props.extend(Property(name="cra-fw:occurrence", value=occ) for occ in c.files)
    if not c.version:  # say why the version is missing, so a reviewer does not read it as an omission
        props.append(Property(name="cra-fw:version", value=VERSION_UNKNOWN))
    elif c.version_certainty not in ("exact", ""):  # e.g. "at least 2.36" from feature markers
        props.append(Property(name="cra-fw:version-certainty", value=c.version_certainty))
        if c.version_range:
            props.append(Property(name="cra-fw:version-range", value=c.version_range))
    # BSI TR-03183-2 component properties
    main = next(iter(c.files), "")
    if main:
        props.append(Property(name="bsi:component:filename", value=main.rsplit("/", 1)[-1]))
    props.append(
        Property(
            name="bsi:component:executable",
            value="executable"
            if c.kind in ("application", "firmware", "operating-system")
            else "non-executable",
        )
    )
    props.append(Property(name="bsi:component:archive", value="no archive"))
    props.append(Property(name="bsi:component:structured", value="unstructured"))
    purl = None
    if c.purl:
        try:
            purl = PackageURL.from_string(c.purl)
        except ValueError:
            props.append(Property(name="cra-fw:purl-unparsed", value=c.purl))
    return CdxComponent(
        name=c.name,
        version=c.version or None,
        type=_TYPES.get(c.kind, ComponentType.LIBRARY),
        bom_ref=bom_ref(c),
        supplier=OrganizationalEntity(name=c.supplier) if c.supplier else None,
        purl=purl,
        cpe=c.cpe or None,
        licenses=_licenses(c.licenses),
        hashes=_hashes(c.hashes),
        evidence=evidence,
        properties=props,
    )


def build_bom(report: ScanReport) -> Bom:
    """The CycloneDX model of ``report`` (no I/O)."""
    image = report.image
    app = application(report)
    root = CdxComponent(
        name=(app.name if app else "") or image.name or "firmware",
        version=(app.version or None) if app else None,
        type=ComponentType.FIRMWARE,
        bom_ref=f"image:{image.sha256[:16] or 'unknown'}",
        hashes=_hashes({"SHA-256": image.sha256, "SHA-512": image.sha512, "MD5": image.md5}),
        properties=[Property(name="cra-fw:image-size", value=str(image.size))]
        + ([Property(name="cra-fw:image-name", value=image.name)] if app else [])
        + ([Property(name="cra-fw:identity-source", value=app.source)] if app else [])
        + [
            Property(
                name="cra-fw:distribution",
                value=f"{f.extra.get('name', '')} {f.extra.get('version', '')}".strip(),
            )
            for f in report.findings
            if f.rule_id == "identify.distribution"
        ],
    )
    meta = BomMetaData(component=root)
    tool = CdxComponent(
        name=report.tool.name,
        version=report.tool.version,
        type=ComponentType.APPLICATION,
        bom_ref=f"tool:{report.tool.name}",
    )
    meta.tools.components.add(tool)
    bom = Bom(metadata=meta)
    by_key: dict[str, CdxComponent] = {}
    for c in report.components:
        if c.key in by_key:
            continue
        cdx = _component(c)
        by_key[c.key] = cdx
        bom.components.add(cdx)
    if app and app.device:
        device = CdxComponent(
            name=app.device,
            type=ComponentType.DEVICE,
            bom_ref=f"device:{app.device}",
            properties=[Property(name="cra-fw:role", value="the chip the firmware runs on")],
        )
        bom.components.add(device)
        by_key[f"device:{app.device}"] = device
    bom.register_dependency(root, list(by_key.values()))
    for dep in report.dependencies:
        parent = by_key.get(dep.ref)
        if parent is None:
            continue
        bom.register_dependency(parent, [by_key[d] for d in dep.depends_on if d in by_key])
    return bom


# characters XML 1.0 cannot carry (C0 controls but tab/newline/CR, lone surrogates, non-characters)
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(value: Any) -> Any:
    """``value`` with every string XML can carry: a control character read from the image
    (an ESC in /etc/openwrt_release) becomes U+FFFD instead of failing the XML writer."""
    if type(value) is str:
        return _XML_BAD.sub("\ufffd", value)
    if isinstance(value, tuple):
        return tuple(_xml_safe(v) for v in value)
    if isinstance(value, list):
        return [_xml_safe(v) for v in value]
    if isinstance(value, dict):
        return {_xml_safe(k): _xml_safe(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _xml_safe(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


def write(report: ScanReport, outdir: Path) -> Path:
    """Write ``sbom.cdx.json`` and ``sbom.cdx.xml`` into ``outdir``; returns the JSON path."""
    outdir.mkdir(parents=True, exist_ok=True)
    safe = dataclasses.replace(
        report,
        image=_xml_safe(report.image),
        components=_xml_safe(report.components),
        dependencies=_xml_safe(report.dependencies),
        findings=_xml_safe([f for f in report.findings if f.rule_id.startswith("identify.")]),
    )
    bom = build_bom(safe)
    json_text = JsonV1Dot6(bom).output_as_string(indent=2)
    json_path = outdir / JSON_NAME
    json_path.write_text(json_text, encoding="utf-8")
    (outdir / XML_NAME).write_text(XmlV1Dot6(bom).output_as_string(indent=2), encoding="utf-8")
    return json_path


def validate_json(text: str) -> str | None:
    """None when ``text`` is valid CycloneDX 1.6 JSON (strict schema), else the first error."""
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return str(error) if error else None


def validate_xml(text: str) -> str | None:
    """None when ``text`` is valid CycloneDX 1.6 XML, else the first error (needs lxml)."""
    from cyclonedx.validation.xml import XmlValidator

    error = XmlValidator(SchemaVersion.V1_6).validate_str(text)
    return str(error) if error else None


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value
