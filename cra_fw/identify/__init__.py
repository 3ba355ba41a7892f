"""Identify stage: which software components the image holds.

``run(ctx)`` reads package databases and distribution markers, matches every
selected file once against all signatures (parallel workers, content-hash cache),
finds kernel/U-Boot banners (also inside compressed kernels), merges everything into
one component per (name, version) with its evidence, and lifts the ELF link graph
into component dependencies.
"""

from __future__ import annotations

import time
from pathlib import Path

from cra_fw.context import ScanContext
from cra_fw.errors import SignatureDataError
from cra_fw.identify import kernel
from cra_fw.identify.application import identify_application
from cra_fw.identify.cache import HitCache
from cra_fw.identify.matcher import Matcher
from cra_fw.identify.merge import build_components, build_dependencies, same_release, soname_matches
from cra_fw.identify.pkgdb import read_package_dbs
from cra_fw.identify.records import Detection, Hit, IdentifyResult, Signature
from cra_fw.identify.scan import scan_files
from cra_fw.identify.signatures import SignatureSet, components_dir, load_signatures_cached
from cra_fw.paths import cache_dir as default_cache_dir
from cra_fw.records import FileEntry, Finding, LayerStatus, Location, Severity

__all__ = ["IdentifyResult", "run", "identify"]

_CRA_SBOM = ("Annex I Part II (1)",)
LAST_STATS: dict[str, float] = {}


def run(ctx: ScanContext) -> IdentifyResult:
    """Identify components in ``ctx`` with the shipped signatures and the default cache."""
    return identify(ctx)


def identify(ctx: ScanContext, signatures: Path | None = None, use_cache: bool = True) -> IdentifyResult:
    """Like :func:`run`, with an explicit signature folder and cache switch (tests, benchmarks)."""
    started = time.perf_counter()
    findings: list[Finding] = []
    folder = signatures or components_dir()
    try:
        sigset = load_signatures_cached(folder)
    except SignatureDataError as exc:
        findings.append(
            _finding(
                "identify.signatures-invalid",
                Severity.HIGH,
                "Component signatures could not be loaded; only package databases were used",
                str(exc),
                "Fix the signature file named in the message, or reinstall cra-fw.",
            )
        )
        sigset = None

    packages = []
    try:
        packages = read_package_dbs(ctx.files, ctx.read_bytes)
    except (OSError, ValueError, UnicodeError) as exc:  # a hostile DB must not stop the scan
        findings.append(
            _finding(
                "identify.pkgdb-unreadable",
                Severity.LOW,
                "A package database could not be read",
                str(exc),
                "Check the package database file in the image.",
            )
        )

    # Distribution markers describe the product itself, not a third-party component: a finding.
    distro = [p for p in packages if p.manager in ("os-release", "openwrt", "buildroot", "yocto")]
    packages = [p for p in packages if p not in distro]
    for rec in distro:
        findings.append(
            Finding(
                rule_id="identify.distribution",
                category="identify",
                severity=Severity.INFO,
                title=f"Distribution: {rec.maintainer or rec.name} {rec.version}",
                cra_reference=_CRA_SBOM,
                location=Location(path=rec.db_path),
                evidence=f"{rec.manager}: {rec.name} {rec.version} {rec.source}".strip(),
                remediation="",
                extra={"name": rec.name, "version": rec.version, "source": rec.manager},
            )
        )

    detections: list[Detection] = []
    file_hashes: dict[tuple[str, str], tuple[str, str]] = {}
    stats: dict[str, float] = {}
    if sigset is not None:
        matcher = _matcher(sigset)
        cache_folder = (ctx.options.cache_dir or default_cache_dir()) if use_cache else None
        cache = HitCache(cache_folder, sigset.digest)
        try:
            results, counts = scan_files(ctx, sigset, str(folder), matcher, cache)
        finally:
            cache.close()
        stats.update(counts)
        if cache.error:
            stats["cache_error"] = 1
        by_name = sigset.by_name()
        for r in results:
            entry = ctx.files[r.index]
            if r.sha512:
                file_hashes[(entry.layer_id, entry.path)] = (r.sha256, r.sha512)
            if r.error:
                findings.append(
                    _finding(
                        "identify.read-error",
                        Severity.LOW,
                        "A file could not be read for identification",
                        r.error,
                        "Re-run the scan; check the extracted file.",
                        entry.path,
                    )
                )
                continue
            for hit in r.hits:
                if _built_against(by_name, hit, entry):
                    stats["linked_mentions"] = stats.get("linked_mentions", 0) + 1
                    continue
                detections.append(Detection(hit, entry.layer_id, entry.path, r.sha256, r.sha512))
        detections.extend(_soname_hints(ctx, sigset, detections))
    detections.extend(_raw_region_banners(ctx))
    modules = _modules_dirs(ctx) + _first_vermagic(detections)
    detections = [d for d in detections if d.hit.method != "vermagic"]
    if any(d.hit.name == "linux" for d in detections):
        # the banner is exact; /lib/modules and a module's vermagic name an ABI (Debian: 6.1.0-50)
        # that may differ, and modules may be left over from another kernel
        banners = {d.hit.version for d in detections if d.hit.name == "linux"}
        modules = [
            m
            if any(same_release(m.hit.version, b) for b in banners)
            else Detection(
                Hit("linux", "", m.hit.method, m.hit.confidence, m.hit.detail, m.hit.offset),
                m.layer_id,
                m.path,
                m.sha256,
                m.sha512,
            )
            for m in modules
        ]
    detections.extend(modules)
    components = build_components(ctx, sigset or SignatureSet((), ""), detections, packages, file_hashes)
    application = identify_application(ctx, components)
    if application is not None:
        findings.append(application)
    dependencies = build_dependencies(ctx, components)
    stats["components"] = len(components)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    LAST_STATS.clear()
    LAST_STATS.update(stats)
    return IdentifyResult(components, dependencies, findings)


_MATCHERS: dict[str, Matcher] = {}


def _matcher(sigset: SignatureSet) -> Matcher:
    # building the automaton costs more than matching a small tree: once per signature set
    if sigset.digest not in _MATCHERS:
        _MATCHERS.clear()
        _MATCHERS[sigset.digest] = Matcher(sigset)
    return _MATCHERS[sigset.digest]


def _built_against(by_name: dict[str, Signature], hit: Hit, entry: FileEntry) -> bool:
    """A version text in a program that loads the component's own library is the header
    version it was compiled against (libssh's "OpenSSL 3.0.17 ..."), not a copy of it."""
    elf = entry.elf
    if elf is None or not elf.needed or hit.method != "signature":
        return False
    sig = by_name.get(hit.name)
    if sig is None or not sig.sonames or (elf.soname and soname_matches(sig, elf.soname)):
        return False
    return any(soname_matches(sig, n) for n in elf.needed)


def _soname_hints(ctx: ScanContext, sigset: SignatureSet, detections: list[Detection]) -> list[Detection]:
    """Versionless evidence from SONAMEs, for files where no content pattern gave a version."""
    found = {(d.layer_id, d.path, d.hit.name) for d in detections}
    out = []
    for f in ctx.files:
        if f.elf is None or not f.elf.soname:
            continue
        for sig in sigset.signatures:
            if (
                sig.sonames
                and soname_matches(sig, f.elf.soname)
                and (f.layer_id, f.path, sig.name) not in found
            ):
                out.append(
                    Detection(Hit(sig.name, "", "soname", 0.5, f.elf.soname), f.layer_id, f.path, f.sha256)
                )
    return out


def _first_vermagic(detections: list[Detection]) -> list[Detection]:
    """One module's vermagic per layer and release stands for all of them (not every .ko is listed)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for d in detections:
        if d.hit.method == "vermagic" and (d.layer_id, d.hit.version) not in seen:
            seen.add((d.layer_id, d.hit.version))
            out.append(d)
    return out


RAW_REGION_MIN = 16 * 1024
RAW_REGION_READ = 4 * 1024 * 1024  # bytes read per region: boot loaders sit at a flash dump's start
RAW_REGIONS = 16


def _raw_region_banners(ctx: ScanContext) -> list[Detection]:
    """U-Boot and kernel banners in regions no format claimed: a boot loader stored raw (no uImage
    header) at the start of a flash dump is code, not a file, and would otherwise not be read."""
    out: list[Detection] = []
    regions = [
        lay
        for lay in ctx.layers
        if lay.status == LayerStatus.UNKNOWN and lay.parent_id and lay.size >= RAW_REGION_MIN
    ]
    for lay in regions[:RAW_REGIONS]:
        parent_id = lay.parent_id or ""
        if lay.parent_path:
            parent = ctx.lookup(parent_id, lay.parent_path)
            source = parent.abs_path if parent is not None else ""
        else:
            source = ctx.image.path if ctx.layer(parent_id).parent_id is None else ""
        if not source:
            continue
        try:
            with open(source, "rb") as fh:
                fh.seek(lay.offset)
                data = fh.read(min(lay.size, RAW_REGION_READ))
        except OSError:
            continue
        where = lay.parent_path or "/" + ctx.image.name
        for hit in kernel.find_banners(data):
            offset = lay.offset + hit.offset if hit.offset >= 0 else lay.offset
            out.append(
                Detection(
                    Hit(hit.name, hit.version, hit.method, hit.confidence, hit.detail, offset),
                    parent_id,
                    where,
                )
            )
    return out


def _modules_dirs(ctx: ScanContext) -> list[Detection]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in ctx.files:
        version = kernel.version_from_modules_path(f.path)
        if version and (f.layer_id, version) not in seen:
            seen.add((f.layer_id, version))
            top = "/".join(f.path.split("/")[:4])
            out.append(Detection(Hit("linux", version, "filename", 0.8, top), f.layer_id, top))
    return out


def _finding(
    rule: str, severity: Severity, title: str, evidence: str, remediation: str, path: str = ""
) -> Finding:
    return Finding(
        rule_id=rule,
        category="identify",
        severity=severity,
        title=title,
        cra_reference=_CRA_SBOM,
        location=Location(path=path),
        evidence=evidence,
        remediation=remediation,
    )
