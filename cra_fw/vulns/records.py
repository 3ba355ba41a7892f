"""Records of the vulnerability stage."""

from __future__ import annotations

from dataclasses import dataclass, fields

from cra_fw.records import Assessment, Finding, Severity

ARTICLE14_NOTE = "actively exploited: CRA Article 14 reporting applies"


@dataclass(frozen=True)
class Triage:
    """A persisted triage decision (CycloneDX analysis terms)."""

    state: str  # resolved, resolved_with_pedigree, exploitable, in_triage, false_positive, not_affected
    justification: str = ""
    response: tuple[str, ...] = ()
    detail: str = ""
    source: str = ""  # cli, or the VEX file it came from
    updated: str = ""

    @property
    def dismisses(self) -> bool:
        """True when the decision says the component is not (or no longer) affected."""
        return self.state in DISMISSING_STATES


DISMISSING_STATES = frozenset({"not_affected", "false_positive", "resolved", "resolved_with_pedigree"})


@dataclass(frozen=True)
class VulnMatch:
    """One advisory that applies to one component."""

    component_key: str  # name@version
    component_purl: str
    component_name: str
    component_version: str
    advisory_id: str  # the CVE id when there is one
    aliases: tuple[str, ...]
    source: str  # nvd | osv
    summary: str
    severity: Severity | None
    cvss_v31_vector: str
    cvss_v31_score: float | None
    cvss_v4_vector: str
    cvss_v4_score: float | None
    fixed_version: str
    match_method: str  # cpe | purl
    matched_range: str  # e.g. "cpe:2.3:a:openssl:openssl >=1.0.2 <1.0.2zd"
    kev: bool = False
    kev_date_added: str = ""
    kev_due_date: str = ""
    epss: float | None = None
    epss_percentile: float | None = None
    actively_exploited: str = ""  # ARTICLE14_NOTE when KEV-listed
    triage: Triage | None = None
    # how well the component's version is known (exact, lower-bound, range); a match on an
    # uncertain version whose range could end below the real version is only ``possible``:
    # listed apart, never a KEV gate failure or an Article 14 case on its own
    version_certainty: str = "exact"
    possible: bool = False
    settle: str = ""  # what would settle a possible match

    @property
    def certain(self) -> bool:
        return not self.possible

    @property
    def triage_state(self) -> str:
        return self.triage.state if self.triage else "in_triage"

    @property
    def open(self) -> bool:
        """Still to be handled: not triaged away."""
        return not (self.triage and self.triage.dismisses)

    @property
    def exploited_here(self) -> bool:
        """KEV-listed and certain: what starts an Article 14 clock and fails ``--fail-on-vuln kev``."""
        return self.kev and self.open and not self.possible


_VULN_FIELDS = tuple(f.name for f in fields(VulnMatch))


def vuln_match(*values: object) -> VulnMatch:
    """A VulnMatch from all its field values in declaration order.

    Same object as ``VulnMatch(*values)``, built without the per-field ``object.__setattr__``
    calls of a frozen dataclass: the matcher builds tens of thousands per image.
    """
    if len(values) != len(_VULN_FIELDS):
        raise TypeError(f"vuln_match() takes {len(_VULN_FIELDS)} values, got {len(values)}")
    obj = object.__new__(VulnMatch)
    obj.__dict__.update(zip(_VULN_FIELDS, values, strict=True))
    return obj


@dataclass(frozen=True)
class VulnResult:
    """What ``cra_fw.vulns.run`` returns."""

    matches: tuple[VulnMatch, ...]
    findings: tuple[Finding, ...]
    assessments: tuple[Assessment, ...] = ()  # vulnerabilities and kev: complete, partial or not assessed
