"""What changed between two recorded releases: components, vulnerabilities, findings."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from cra_fw.ledger.records import Release, StoredComponent, StoredFinding, StoredVuln
from cra_fw.ledger.store import release_components, release_findings, release_vulns
from cra_fw.versions import compare


@dataclass(frozen=True)
class VersionChange:
    name: str
    old_version: str
    new_version: str
    upgraded: bool  # False: downgraded


@dataclass(frozen=True)
class ReleaseDiff:
    old: Release
    new: Release
    components_added: tuple[StoredComponent, ...]
    components_removed: tuple[StoredComponent, ...]
    components_changed: tuple[VersionChange, ...]
    vulns_fixed: tuple[StoredVuln, ...]
    vulns_introduced: tuple[StoredVuln, ...]
    findings_fixed: tuple[StoredFinding, ...]
    findings_introduced: tuple[StoredFinding, ...]

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.components_added,
                self.components_removed,
                self.components_changed,
                self.vulns_fixed,
                self.vulns_introduced,
                self.findings_fixed,
                self.findings_introduced,
            )
        )


def _newer(a: str, b: str) -> bool:
    """True when version b sorts after a (Debian version rules)."""
    return compare(b, a) > 0


def _ident(component: StoredComponent) -> str:
    """A component's identity across versions: its name plus the purl without its version."""
    base = component.purl.split("@", 1)[0] if component.purl else ""
    return f"{component.name}|{base}"


def diff_releases(db: sqlite_utils.Database, old: Release, new: Release) -> ReleaseDiff:
    """Compare ``old`` and ``new`` (any two releases, usually of one product)."""
    comps_old: dict[str, list[StoredComponent]] = {}
    for comp in release_components(db, old.id):
        comps_old.setdefault(_ident(comp), []).append(comp)
    comps_new: dict[str, list[StoredComponent]] = {}
    for comp in release_components(db, new.id):
        comps_new.setdefault(_ident(comp), []).append(comp)
    added: list[StoredComponent] = []
    removed: list[StoredComponent] = []
    changed: list[VersionChange] = []
    for ident in sorted(set(comps_old) | set(comps_new)):
        a = {c.version: c for c in comps_old.get(ident, [])}
        b = {c.version: c for c in comps_new.get(ident, [])}
        if not a:
            added.extend(b.values())
        elif not b:
            removed.extend(a.values())
        elif set(a) != set(b):
            gone = sorted(set(a) - set(b))
            came = sorted(set(b) - set(a))
            # the common case: one version replaced by another
            for before, after in zip(gone, came, strict=False):
                changed.append(VersionChange(a[before].name, before, after, _newer(before, after)))
            removed.extend(a[v] for v in gone[len(came) :])
            added.extend(b[v] for v in came[len(gone) :])

    def vkey(v: StoredVuln) -> tuple[str, str]:
        return (v.advisory_id, v.component.name)

    vulns_old = {vkey(v): v for v in release_vulns(db, old.id)}
    vulns_new = {vkey(v): v for v in release_vulns(db, new.id)}
    finds_old = {f.key: f for f in release_findings(db, old.id)}
    finds_new = {f.key: f for f in release_findings(db, new.id)}
    return ReleaseDiff(
        old=old,
        new=new,
        components_added=tuple(added),
        components_removed=tuple(removed),
        components_changed=tuple(changed),
        vulns_fixed=tuple(vulns_old[k] for k in sorted(set(vulns_old) - set(vulns_new))),
        vulns_introduced=tuple(vulns_new[k] for k in sorted(set(vulns_new) - set(vulns_old))),
        findings_fixed=tuple(finds_old[k] for k in sorted(set(finds_old) - set(finds_new))),
        findings_introduced=tuple(finds_new[k] for k in sorted(set(finds_new) - set(finds_old))),
    )
