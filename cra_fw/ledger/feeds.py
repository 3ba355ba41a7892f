"""The one place the ledger talks to the vulnerability feeds.

The ledger keeps what a scan matched and re-matches recorded components when
the feeds change (``monitor``), with the very matcher the scan's vulns stage
uses.  That matcher is the only thing the ledger takes from another stage,
and only here: the rest of the ledger sees :class:`Match`, its own record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from cra_fw.feeddb import NAMESPACES, assess_feeds, feed_status
from cra_fw.records import Assessment, AssessmentStatus, Component
from cra_fw.vulns.match import Matcher
from cra_fw.vulns.records import VulnMatch


@dataclass(frozen=True)
class Match:
    """What the ledger keeps of one advisory matching one component."""

    advisory_id: str
    severity: str
    kev: bool
    kev_date_added: str
    fixed_version: str
    summary: str
    cvss_score: float | None


def namespaces() -> list[str]:
    """Schema namespaces of the feed tables (opened alongside the ledger's)."""
    return list(NAMESPACES)


def available(db: sqlite_utils.Database) -> bool:
    """True when ``db`` holds an advisory feed (NVD or OSV)."""
    return assess(db)[0].status != AssessmentStatus.NOT_ASSESSED


def assess(
    db: sqlite_utils.Database, now: datetime | None = None, max_age_days: int = 7
) -> tuple[Assessment, Assessment]:
    """(vulnerabilities, kev): whether counts from ``db``'s feeds mean anything, and why not."""
    if "advisories" not in db.table_names():
        why = "no vulnerability feeds in this database: `cra-fw db import FILE` or `cra-fw db update`"
        return (
            Assessment("vulnerabilities", AssessmentStatus.NOT_ASSESSED, why),
            Assessment("kev", AssessmentStatus.NOT_ASSESSED, why),
        )
    return assess_feeds(db, max_age_days, now)


def feed_ages(db: sqlite_utils.Database, now: datetime) -> dict[str, float]:
    """Age in days of each imported feed (empty when there are none)."""
    if "feed_meta" not in db.table_names():
        return {}
    ages = {}
    for status in feed_status(db):
        age = status.age_days(now)
        if age is not None:
            ages[status.name] = round(age, 2)
    return ages


def from_vuln_match(match: VulnMatch) -> Match:
    """What the ledger keeps of a scan's match."""
    score = match.cvss_v31_score if match.cvss_v31_score is not None else match.cvss_v4_score
    return Match(
        advisory_id=match.advisory_id,
        severity=match.severity.value if match.severity is not None else "",
        # a possible match (uncertain version) opens no Article 14 case on its own
        kev=match.kev and not match.possible,
        kev_date_added=match.kev_date_added,
        fixed_version=match.fixed_version,
        summary=match.summary[:2000],
        cvss_score=float(score) if score is not None else None,
    )


def match_each(components: Iterable[Component], db: sqlite_utils.Database) -> Iterator[list[Match]]:
    """For each component, in order, its open matches against the feeds in ``db``."""
    matcher = Matcher(db)  # one Matcher keeps its per-product caches across all components
    for component in components:
        yield [from_vuln_match(m) for m in matcher.match([component]) if m.open]
