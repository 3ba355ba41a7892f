"""Turn detections and package records into components: one per (name, version), many evidence items.

A package named in a signature's ``packages`` (or built from a source package of
that name) joins the signature's component.  Versions that agree up to a suffix
("6.4" from dpkg, "6.4.20221231" from the binary) are the same release; the package
database's upstream version wins because that is the one vulnerability feeds use.
A versionless SONAME hint only stands on its own when no versioned detection of the
same component exists.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field

from cra_fw.context import ScanContext
from cra_fw.identify import purls
from cra_fw.identify.pkgdb import PackageRecord
from cra_fw.identify.records import Detection, Signature, make_purl
from cra_fw.identify.signatures import SignatureSet
from cra_fw.records import Component, Dependency, Evidence, FileEntry, FileKind

_METHOD_RANK = {
    "package-db": 0,
    "signature": 1,
    "banner": 1,
    "filename": 2,
    "vermagic": 2,
    "soname": 3,
    "manifest": 0,
}


@dataclass
class _Draft:
    name: str
    version: str
    sig: Signature | None
    evidence: list[Evidence] = field(default_factory=list)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # "layer:/path" -> (sha256, sha512)
    packages: list[PackageRecord] = field(default_factory=list)
    pkg_version: str = ""


def same_release(a: str, b: str) -> bool:
    """Equal, or equal up to a suffix ("9.2" / "9.2p1", "6.4" / "6.4.20221231"): one release."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return bool(short) and long_.startswith(short) and long_[len(short)] in ".-+~_p"


def _sig_for_package(rec: PackageRecord, sigset: SignatureSet) -> Signature | None:
    by_pkg = sigset.by_package()
    if rec.name in by_pkg:
        return by_pkg[rec.name]
    if rec.source and rec.source in by_pkg:
        return by_pkg[rec.source]
    if rec.manager == "opkg" and "/" in rec.source:
        # OpenWrt names the source as a buildroot path: "package/network/utils/iptables" -> iptables
        base = rec.source.rstrip("/").rsplit("/", 1)[-1]
        return by_pkg.get(base) or sigset.by_name().get(base)
    return None


def _source_name(rec: PackageRecord) -> str:
    """The project an OpenWrt package was built from: its Source path's last element
    ("package/network/services/ubus" for libubus, ubus and ubusd; "package/mac80211" for kmod-ath9k)."""
    if rec.manager == "opkg" and "/" in rec.source:
        if rec.source.startswith("feeds/luci/") and rec.version.startswith("git-"):
            # one repository, one git release, built into many packages (luci-base, luci-app-*); the
            # feed's own projects (lucihttp, rpcd-mod-rrdns) carry releases of their own
            return "luci"
        return rec.source.rstrip("/").rsplit("/", 1)[-1] or rec.name
    return rec.name


def _package_release(rec: PackageRecord) -> str:
    """The upstream release a package version names; an OpenWrt kernel module built from another
    project is versioned "<kernel>+<project release>" (kmod-ath9k 3.3.8+2014-05-22-1)."""
    version = rec.upstream_version
    if rec.manager == "opkg" and rec.name.startswith("kmod-") and "+" in version:
        source = rec.source.rstrip("/").rsplit("/", 1)[-1]
        if source not in ("kernel", "linux"):
            return version.split("+", 1)[1]
    return version


def build_components(
    ctx: ScanContext,
    sigset: SignatureSet,
    detections: list[Detection],
    packages: list[PackageRecord],
    file_hashes: dict[tuple[str, str], tuple[str, str]] | None = None,
) -> list[Component]:
    """Merge every detection and package record into the final component list."""
    sigs = sigset.by_name()
    drafts: list[_Draft] = []
    pkg_file_owner: dict[tuple[str, str], _Draft] = {}

    def draft_for(name: str, version: str, sig: Signature | None) -> _Draft:
        for d in drafts:
            if d.name == name and same_release(d.version, version):
                if not d.packages and len(version) > len(d.version):
                    d.version = version  # "9.2p1" says more than "9.2"; a package DB version wins
                return d
        d = _Draft(name, version, sig)
        drafts.append(d)
        return d

    for rec in packages:
        sig = _sig_for_package(rec, sigset)
        name = sig.name if sig else _source_name(rec)
        version = _package_release(rec)
        d = draft_for(name, version, sig or sigs.get(name))
        d.version = version  # the package DB's upstream version is authoritative
        d.packages.append(rec)
        d.evidence.append(
            Evidence("package-db", 1.0, rec.db_path, rec.layer_id, f"{rec.manager}: {rec.name} {rec.version}")
        )
        for p in rec.files:
            pkg_file_owner.setdefault((rec.layer_id, p), d)
            entry = ctx.lookup(rec.layer_id, p)
            if entry is not None and entry.kind == FileKind.SYMLINK:
                # OpenWrt's hostapd-mini lists /usr/sbin/hostapd, a link to wpad-mini's /usr/sbin/wpad
                entry = ctx.resolve(entry)
            if entry is not None and entry.kind == FileKind.ELF:
                d.files.setdefault(
                    f"{rec.layer_id}:{entry.path}",
                    (file_hashes or {}).get((rec.layer_id, entry.path), (entry.sha256, "")),
                )

    versionless = [det for det in detections if not det.hit.version]
    for det in sorted(
        (x for x in detections if x.hit.version), key=lambda x: _METHOD_RANK.get(x.hit.method, 9)
    ):
        sig = sigs.get(det.hit.name)
        owner = pkg_file_owner.get((det.layer_id, det.path))
        if owner is not None and (owner.name == det.hit.name or owner.sig is None):
            # the file belongs to an installed package: same component, whatever the package is called
            d = owner
            if d.name != det.hit.name:
                d.name, d.sig = det.hit.name, sig
            if not same_release(d.version, det.hit.version):
                d.version = det.hit.version  # e.g. a snapshot-dated package of a released program
        else:
            d = draft_for(det.hit.name, det.hit.version, sig)
        d.evidence.append(
            Evidence(
                det.hit.method, det.hit.confidence, det.path, det.layer_id, det.hit.detail, det.hit.offset
            )
        )
        d.files[f"{det.layer_id}:{det.path}"] = (det.sha256, det.sha512)
    for det in versionless:
        existing = [d for d in drafts if d.name == det.hit.name]
        d = existing[0] if existing else draft_for(det.hit.name, "", sigs.get(det.hit.name))
        d.evidence.append(
            Evidence(
                det.hit.method, det.hit.confidence, det.path, det.layer_id, det.hit.detail, det.hit.offset
            )
        )
        d.files.setdefault(f"{det.layer_id}:{det.path}", (det.sha256, det.sha512))

    _follow_binary_versions(drafts)
    merged: dict[tuple[str, str], _Draft] = {}
    for d in drafts:  # renaming can make two drafts the same component
        key = (d.name, d.version)
        if key in merged:
            merged[key].evidence.extend(d.evidence)
            merged[key].files.update(d.files)
            merged[key].packages.extend(d.packages)
        else:
            merged[key] = d
    out = [_finish(d, ctx, packages) for d in merged.values()]
    out.sort(key=lambda c: (c.name, c.version))
    return out


def _follow_binary_versions(drafts: list[_Draft]) -> None:
    """Packages of one component built from one source version (OpenWrt hostapd-mini and wpad-mini,
    both 20131120-1) are one release: when a binary gave one of them its real version, all take it."""
    groups: dict[tuple[str, str], list[_Draft]] = defaultdict(list)
    for d in drafts:
        if d.packages:
            groups[(d.name, d.packages[0].version)].append(d)
    for group in groups.values():
        binary = [d for d in group if d.version != d.packages[0].upstream_version]
        if binary and len({d.version for d in binary}) == 1:
            for d in group:
                d.version = binary[0].version


def _finish(d: _Draft, ctx: ScanContext | None = None, packages: list[PackageRecord] = ()) -> Component:
    sig = d.sig
    evidence = _dedupe_evidence(d.evidence)
    hashes: dict[str, str] = {}
    main = next((f for f, (s256, s512) in d.files.items() if s256 and s512), None)
    if main:
        hashes = {"SHA-256": d.files[main][0], "SHA-512": d.files[main][1]}
    purl = ""
    # the purl names the package that installed the identified file (libcrypt1, not libcrypt-dev)
    rec = next(
        (r for r in d.packages if any(f"{r.layer_id}:{p}" in d.files for p in r.files)),
        d.packages[0] if d.packages else None,
    )
    if rec is not None and (distro_purl := purls.package_purl(rec)):
        purl = distro_purl
    elif rec is None and (banner := purls.banner_distro(evidence)) is not None:
        purl = _banner_purl(d, banner, ctx, packages)
    elif sig is not None:
        purl = sig.purl_for(d.version)
    elif rec is not None:
        purl = make_purl(f"pkg:generic/{rec.name}@{{version}}", rec.version)
    supplier = sig.supplier if sig else (rec.maintainer if rec else "")
    licenses = sig.licenses if sig else ((rec.license,) if rec and rec.license else ())
    kind = sig.kind if sig else (rec.kind if rec else "library")
    certainty, version_range = purls.version_certainty(d.version, evidence)
    return Component(
        name=d.name,
        version=d.version,
        purl=purl,
        cpe=sig.cpe_for(d.version) if sig and d.version else "",
        supplier=supplier,
        licenses=tuple(licenses),
        kind=kind,
        evidence=tuple(evidence),
        files=tuple(sorted(d.files)),
        hashes=hashes,
        version_certainty=certainty,
        version_range=version_range,
    )


def _banner_purl(
    d: _Draft, banner: tuple[str, str], ctx: ScanContext | None, packages: list[PackageRecord]
) -> str:
    """The distro purl of a component whose binary names its distro build (Debian's glibc)."""
    distro, version = banner
    arch = release = ""
    if ctx is not None:
        for occ in d.files:
            layer_id, _, path = occ.partition(":")
            entry = ctx.lookup(layer_id, path)
            arch = purls.deb_arch(entry.elf if entry else None, path)
            if arch:
                break
    for rec in packages:  # the image's os-release, when it is that distribution
        if rec.manager == "os-release" and rec.name == distro:
            release = rec.version
    return purls.banner_purl(d.name, distro, version, arch, release)


def _dedupe_evidence(items: list[Evidence]) -> list[Evidence]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for ev in sorted(items, key=lambda e: (_METHOD_RANK.get(e.method, 9), -e.confidence, e.path)):
        key = (ev.method, ev.layer_id, ev.path)
        if key not in seen:
            seen.add(key)
            out.append(ev)
    return out


def build_dependencies(ctx: ScanContext, components: list[Component]) -> list[Dependency]:
    """The ELF link graph (DT_NEEDED -> SONAME in the same layer) lifted to components."""
    owner: dict[str, set[str]] = defaultdict(set)
    for c in components:
        for f in c.files:
            owner[f].add(c.key)
    by_soname: dict[tuple[str, str], list[FileEntry]] = defaultdict(list)
    for f in ctx.files:
        if f.elf is not None:
            if f.elf.soname:
                by_soname[(f.layer_id, f.elf.soname)].append(f)
        if f.kind in (FileKind.ELF, FileKind.SYMLINK) and ".so" in f.name:
            by_soname[(f.layer_id, f.name)].append(f)
    edges: dict[str, set[str]] = defaultdict(set)
    for c in components:
        for occ in c.files:
            layer_id, _, path = occ.partition(":")
            entry = ctx.lookup(layer_id, path)
            if entry is None or entry.elf is None:
                continue
            for needed in entry.elf.needed:
                for lib in by_soname.get((layer_id, needed), []):
                    target = ctx.resolve(lib) or lib
                    for dep in owner.get(f"{layer_id}:{target.path}", set()) | owner.get(
                        f"{layer_id}:{lib.path}", set()
                    ):
                        if dep != c.key:
                            edges[c.key].add(dep)
    return [Dependency(ref, tuple(sorted(deps))) for ref, deps in sorted(edges.items())]


def soname_matches(sig: Signature, soname: str) -> bool:
    return any(fnmatch.fnmatchcase(soname, g) for g in sig.sonames)


def component_for_package(rec: PackageRecord, sigset: SignatureSet) -> Component:
    """The component one package record stands for, named and versioned as a scan names it
    (``sbom match`` uses it for the packages a build SBOM declares)."""
    sig = _sig_for_package(rec, sigset)
    version = rec.upstream_version
    return Component(
        name=sig.name if sig else rec.name,
        version=version,
        purl=purls.package_purl(rec),
        cpe=sig.cpe_for(version) if sig and version else "",
        supplier=sig.supplier if sig else rec.maintainer,
        licenses=sig.licenses if sig else ((rec.license,) if rec.license else ()),
        kind=sig.kind if sig else rec.kind,
        evidence=(
            Evidence("manifest", 1.0, rec.db_path, rec.layer_id, f"{rec.manager}: {rec.name} {rec.version}"),
        ),
    )
