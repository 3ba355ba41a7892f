"""Check any CycloneDX or SPDX JSON SBOM against the NTIA minimum elements and BSI TR-03183-2,
and compare two SBOMs.

Both formats are first read into the same neutral :class:`SbomDoc`, so every rule is
written once.  Rules say what is missing per component, by field name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.errors import CraFwError


class SbomFormatError(CraFwError):
    """The file is not a CycloneDX or SPDX JSON document."""


@dataclass(frozen=True)
class SbomComponent:
    ref: str
    name: str
    version: str
    supplier: str
    identifiers: tuple[str, ...]  # purl, cpe, swid
    licenses: tuple[str, ...]
    hashes: dict[str, str]
    filename: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SbomDoc:
    format: str  # "CycloneDX 1.6", "SPDX-2.3"
    authors: tuple[str, ...]
    timestamp: str
    components: tuple[SbomComponent, ...]
    dependencies: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Missing:
    component: str  # "" for the document itself
    standard: str  # NTIA, BSI TR-03183-2
    field: str


@dataclass(frozen=True)
class CheckResult:
    doc: SbomDoc
    missing: tuple[Missing, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def missing_for(self, component: str) -> list[Missing]:
        return [m for m in self.missing if m.component == component]


def load(path: Path) -> SbomDoc:
    """Read a CycloneDX (JSON) or SPDX 2.x (JSON) SBOM."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SbomFormatError(f"{path}: not readable JSON ({exc}); pass a CycloneDX or SPDX JSON file") from exc
    if isinstance(data, dict) and data.get("bomFormat") == "CycloneDX":
        return _from_cyclonedx(data)
    if isinstance(data, dict) and str(data.get("spdxVersion", "")).startswith("SPDX-"):
        return _from_spdx(data)
    raise SbomFormatError(f"{path}: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON")


def _cdx_component(c: dict) -> SbomComponent:
    supplier = (c.get("supplier") or {}).get("name", "") or (c.get("manufacturer") or {}).get("name", "") \
        or c.get("author", "") or c.get("publisher", "")
    ids = tuple(x for x in (c.get("purl"), c.get("cpe"), (c.get("swid") or {}).get("tagId")) if x)
    lics = []
    for lic in c.get("licenses", []) or []:
        if "expression" in lic:
            lics.append(lic["expression"])
        elif "license" in lic:
            lics.append(lic["license"].get("id") or lic["license"].get("name", ""))
    hashes = {h.get("alg", ""): h.get("content", "") for h in c.get("hashes", []) or []}
    props = {p.get("name", ""): p.get("value", "") for p in c.get("properties", []) or []}
    return SbomComponent(c.get("bom-ref", c.get("name", "")), c.get("name", ""), c.get("version", ""), supplier,
                         ids, tuple(x for x in lics if x), hashes, props.get("bsi:component:filename", ""), props)


def _from_cyclonedx(data: dict) -> SbomDoc:
    meta = data.get("metadata") or {}
    authors = [a.get("email") or a.get("name", "") for a in meta.get("authors", []) or []]
    manu = meta.get("manufacturer") or meta.get("manufacture") or {}
    authors += [u for u in manu.get("url", []) or []] + [c.get("email", "") for c in manu.get("contact", []) or []]
    comps: list[SbomComponent] = []
    stack = list(data.get("components", []) or [])
    while stack:
        c = stack.pop(0)
        comps.append(_cdx_component(c))
        stack.extend(c.get("components", []) or [])
    deps = {d.get("ref", ""): tuple(d.get("dependsOn", []) or []) for d in data.get("dependencies", []) or []}
    return SbomDoc(f"CycloneDX {data.get('specVersion', '?')}", tuple(a for a in authors if a),
                   meta.get("timestamp", ""), tuple(comps), deps)


_NOASSERT = {"", "NOASSERTION", "NONE"}


def _from_spdx(data: dict) -> SbomDoc:
    info = data.get("creationInfo") or {}
    described = {r.get("relatedSpdxElement") for r in data.get("relationships", []) or []
                 if r.get("relationshipType") == "DESCRIBES"}
    comps = []
    for p in data.get("packages", []) or []:
        if p.get("SPDXID") in described:
            continue  # the product itself, not one of its components
        supplier = p.get("supplier", "")
        supplier = "" if supplier in _NOASSERT else supplier.split(":", 1)[-1].strip()
        ids = tuple(r.get("referenceLocator", "") for r in p.get("externalRefs", []) or []
                    if r.get("referenceType") in ("purl", "cpe23Type", "cpe22Type", "swid"))
        lic = [x for x in (p.get("licenseDeclared", ""), p.get("licenseConcluded", "")) if x not in _NOASSERT]
        hashes = {c.get("algorithm", ""): c.get("checksumValue", "") for c in p.get("checksums", []) or []}
        comps.append(SbomComponent(p.get("SPDXID", ""), p.get("name", ""), p.get("versionInfo", ""), supplier,
                                   ids, tuple(lic[:1]), hashes, p.get("packageFileName", "")))
    deps: dict[str, list[str]] = {}
    for r in data.get("relationships", []) or []:
        if r.get("relationshipType") in ("DEPENDS_ON", "CONTAINS"):
            deps.setdefault(r.get("spdxElementId", ""), []).append(r.get("relatedSpdxElement", ""))
    creators = tuple(c for c in info.get("creators", []) or [] if not c.startswith("Tool:"))
    return SbomDoc(data.get("spdxVersion", "SPDX"), creators, info.get("created", ""), tuple(comps),
                   {k: tuple(v) for k, v in deps.items()})


def check(doc: SbomDoc) -> CheckResult:
    """What the NTIA minimum elements and BSI TR-03183-2 require and the document lacks."""
    missing: list[Missing] = []
    if not doc.authors:
        missing.append(Missing("", "NTIA", "author of SBOM data"))
        missing.append(Missing("", "BSI TR-03183-2", "SBOM creator (e-mail or URL)"))
    if not doc.timestamp:
        missing.append(Missing("", "NTIA", "timestamp"))
        missing.append(Missing("", "BSI TR-03183-2", "timestamp"))
    if not doc.dependencies:
        missing.append(Missing("", "NTIA", "dependency relationships"))
    for c in doc.components:
        label = f"{c.name}@{c.version}" if c.version else c.name or c.ref
        if not c.name:
            missing.append(Missing(label, "NTIA", "component name"))
        if not c.version:
            missing.append(Missing(label, "NTIA", "version"))
            missing.append(Missing(label, "BSI TR-03183-2", "version"))
        if not c.supplier:
            missing.append(Missing(label, "NTIA", "supplier name"))
            missing.append(Missing(label, "BSI TR-03183-2", "component creator"))
        if not c.identifiers:
            missing.append(Missing(label, "NTIA", "other unique identifiers (purl/CPE/SWID)"))
        if not c.licenses:
            missing.append(Missing(label, "BSI TR-03183-2", "distribution licences"))
        if not any(k.upper().replace("-", "") == "SHA512" and v for k, v in c.hashes.items()):
            missing.append(Missing(label, "BSI TR-03183-2", "SHA-512 hash of the deployable component"))
        if doc.format.startswith("CycloneDX"):
            if not c.filename:
                missing.append(Missing(label, "BSI TR-03183-2", "filename (bsi:component:filename)"))
            for prop in ("bsi:component:executable", "bsi:component:archive", "bsi:component:structured"):
                if prop not in c.properties:
                    missing.append(Missing(label, "BSI TR-03183-2", prop))
    return CheckResult(doc, tuple(missing))


@dataclass(frozen=True)
class Diff:
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    changed: tuple[tuple[str, str, str], ...]  # name, old version, new version


def diff(a: SbomDoc, b: SbomDoc) -> Diff:
    """Components added, removed and changed in version from ``a`` to ``b`` (matched by name)."""
    def index(doc: SbomDoc) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in doc.components:
            out.setdefault(c.name, set()).add(c.version)
        return out

    ia, ib = index(a), index(b)
    added, removed, changed = [], [], []
    for name in sorted(set(ia) | set(ib)):
        va, vb = ia.get(name, set()), ib.get(name, set())
        if not va:
            added.extend((name, v) for v in sorted(vb))
        elif not vb:
            removed.extend((name, v) for v in sorted(va))
        elif va != vb:
            if len(va) == 1 and len(vb) == 1:
                changed.append((name, next(iter(va)), next(iter(vb))))
            else:
                removed.extend((name, v) for v in sorted(va - vb))
                added.extend((name, v) for v in sorted(vb - va))
    return Diff(tuple(added), tuple(removed), tuple(changed))
