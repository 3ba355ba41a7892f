"""Check any CycloneDX or SPDX JSON SBOM against the NTIA minimum elements and BSI TR-03183-2,
and compare two SBOMs.

Both formats are first read into the same neutral :class:`SbomDoc`, so every rule is
written once.  Rules say what is missing per component, by field name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw import safejson
from cra_fw.errors import CraFwError

MAX_SBOM_BYTES = 512 * 1024 * 1024


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
    schema_error: str = ""  # first schema violation (CycloneDX, validated with cyclonedx-python-lib)


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
        if path.stat().st_size > MAX_SBOM_BYTES:
            raise SbomFormatError(f"{path}: larger than {MAX_SBOM_BYTES} bytes; not checked")
        data = safejson.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, too deep (safejson)
        raise SbomFormatError(
            f"{path}: not readable JSON ({exc}); pass a CycloneDX or SPDX JSON file"
        ) from exc
    if isinstance(data, dict) and data.get("bomFormat") == "CycloneDX":
        doc = _from_cyclonedx(data)
        return dataclasses.replace(
            doc, schema_error=_cdx_schema_error(path, str(data.get("specVersion", "")))
        )
    if isinstance(data, dict) and str(data.get("spdxVersion", "")).startswith("SPDX-"):
        return _from_spdx(data)
    raise SbomFormatError(f"{path}: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON")


def _cdx_schema_error(path: Path, spec: str) -> str:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        version = SchemaVersion.from_version(spec)
    except ValueError:
        return f"unknown CycloneDX specVersion {spec!r}"
    error = JsonStrictValidator(version).validate_str(path.read_text(encoding="utf-8"))
    return str(error)[:300] if error else ""


def _dicts(value: object) -> list[dict]:
    """Only the objects of a JSON array: hostile or sloppy SBOMs put anything anywhere."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _obj(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _cdx_component(c: dict) -> SbomComponent:
    supplier = (
        _obj(c.get("supplier")).get("name", "")
        or _obj(c.get("manufacturer")).get("name", "")
        or c.get("author", "")
        or c.get("publisher", "")
    )
    ids = tuple(str(x) for x in (c.get("purl"), c.get("cpe"), _obj(c.get("swid")).get("tagId")) if x)
    lics = []
    for lic in _dicts(c.get("licenses")):
        if "expression" in lic:
            lics.append(str(lic["expression"]))
        elif "license" in lic:
            inner = _obj(lic["license"])
            lics.append(str(inner.get("id") or inner.get("name", "")))
    hashes = {str(h.get("alg", "")): str(h.get("content", "")) for h in _dicts(c.get("hashes"))}
    props = {str(p.get("name", "")): str(p.get("value", "")) for p in _dicts(c.get("properties"))}
    return SbomComponent(
        str(c.get("bom-ref", c.get("name", ""))),
        str(c.get("name", "")),
        str(c.get("version", "")),
        str(supplier),
        ids,
        tuple(x for x in lics if x),
        hashes,
        props.get("bsi:component:filename", ""),
        props,
    )


def _from_cyclonedx(data: dict) -> SbomDoc:
    meta = _obj(data.get("metadata"))
    authors = [str(a.get("email") or a.get("name", "")) for a in _dicts(meta.get("authors"))]
    manu = _obj(meta.get("manufacturer") or meta.get("manufacture"))
    urls = manu.get("url", [])
    authors += [str(u) for u in (urls if isinstance(urls, list) else [])]
    authors += [str(c.get("email", "")) for c in _dicts(manu.get("contact"))]
    comps: list[SbomComponent] = []
    stack = _dicts(data.get("components"))
    while stack and len(comps) < 1_000_000:
        c = stack.pop(0)
        if c.get("type") != "device":  # hardware (the chip): TR-03183-2 fields are for software
            comps.append(_cdx_component(c))
        stack.extend(_dicts(c.get("components")))
    deps = {
        str(d.get("ref", "")): tuple(
            str(x)
            for x in (d.get("dependsOn") if isinstance(d.get("dependsOn"), list) else [])
            if isinstance(x, str)
        )
        for d in _dicts(data.get("dependencies"))
    }
    return SbomDoc(
        f"CycloneDX {data.get('specVersion', '?')}",
        tuple(a for a in authors if a),
        str(meta.get("timestamp", "")),
        tuple(comps),
        deps,
    )


_NOASSERT = {"", "NOASSERTION", "NONE"}


def _from_spdx(data: dict) -> SbomDoc:
    info = _obj(data.get("creationInfo"))
    described = {
        r.get("relatedSpdxElement")
        for r in _dicts(data.get("relationships"))
        if r.get("relationshipType") == "DESCRIBES"
    }
    comps = []
    for p in _dicts(data.get("packages")):
        if p.get("SPDXID") in described:
            continue  # the product itself, not one of its components
        if p.get("primaryPackagePurpose") == "DEVICE":
            continue  # hardware (the chip): TR-03183-2 fields are for software
        supplier = str(p.get("supplier", ""))
        supplier = "" if supplier in _NOASSERT else supplier.split(":", 1)[-1].strip()
        ids = tuple(
            str(r.get("referenceLocator", ""))
            for r in _dicts(p.get("externalRefs"))
            if r.get("referenceType") in ("purl", "cpe23Type", "cpe22Type", "swid")
        )
        lic = [
            str(x)
            for x in (p.get("licenseDeclared", ""), p.get("licenseConcluded", ""))
            if x not in _NOASSERT
        ]
        hashes = {
            str(c.get("algorithm", "")): str(c.get("checksumValue", "")) for c in _dicts(p.get("checksums"))
        }
        comps.append(
            SbomComponent(
                str(p.get("SPDXID", "")),
                str(p.get("name", "")),
                str(p.get("versionInfo", "")),
                supplier,
                ids,
                tuple(lic[:1]),
                hashes,
                str(p.get("packageFileName", "")),
            )
        )
    deps: dict[str, list[str]] = {}
    for r in _dicts(data.get("relationships")):
        if r.get("relationshipType") in ("DEPENDS_ON", "CONTAINS"):
            deps.setdefault(str(r.get("spdxElementId", "")), []).append(str(r.get("relatedSpdxElement", "")))
    creators_raw = info.get("creators", [])
    creators = tuple(
        str(c)
        for c in (creators_raw if isinstance(creators_raw, list) else [])
        if not str(c).startswith("Tool:")
    )
    return SbomDoc(
        str(data.get("spdxVersion", "SPDX")),
        creators,
        str(info.get("created", "")),
        tuple(comps),
        {k: tuple(v) for k, v in deps.items()},
    )


def check(doc: SbomDoc) -> CheckResult:
    """What the NTIA minimum elements and BSI TR-03183-2 require and the document lacks."""
    missing: list[Missing] = []
    if doc.schema_error:
        missing.append(Missing("", "schema", f"valid {doc.format} document: {doc.schema_error}"))
    if not doc.authors:
        missing.append(Missing("", "NTIA", "author of SBOM data"))
        missing.append(Missing("", "BSI TR-03183-2", "SBOM creator (e-mail or URL)"))
    if not doc.timestamp:
        missing.append(Missing("", "NTIA", "timestamp"))
        missing.append(Missing("", "BSI TR-03183-2", "timestamp"))
    if not doc.dependencies and doc.components:  # with no component there is nothing to relate
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
