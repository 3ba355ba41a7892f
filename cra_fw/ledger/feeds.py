"""The one place the ledger talks to the vulnerability feeds (``cra_fw.vulns``).

Everything feed-related the ledger needs goes through these functions, so a
change in the feeds package is wired here only.  When the feeds package is
not installed the ledger still works; monitor then reports that it has no
feeds to match against.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from cra_fw.records import Component


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


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def namespaces() -> list[str]:
    """Schema namespaces of the feeds package (registered by importing its store)."""
    store = _module("cra_fw.vulns.store")
    return list(getattr(store, "NAMESPACES", ["feeds"])) if store is not None else []


def available(db: sqlite_utils.Database) -> bool:
    """True when the feeds package is installed and its tables exist in ``db``."""
    return bool(namespaces()) and "advisories" in db.table_names()


def feed_ages(db: sqlite_utils.Database, now: datetime) -> dict[str, float]:
    """Age in days of each imported feed (empty when there are none)."""
    store = _module("cra_fw.vulns.store")
    if store is None or "feed_meta" not in db.table_names():
        return {}
    ages = {}
    for status in store.feed_status(db):
        age = status.age_days(now)
        if age is not None:
            ages[status.name] = round(age, 2)
    return ages


def from_vuln_match(match: object) -> Match:
    """Convert a ``cra_fw.vulns.records.VulnMatch`` (or a record with the same fields)."""
    severity = getattr(match, "severity", None)
    score = getattr(match, "cvss_v31_score", None)
    if score is None:
        score = getattr(match, "cvss_v4_score", None)
    return Match(
        advisory_id=str(match.advisory_id),
        severity=str(severity.value if hasattr(severity, "value") else severity or ""),
        kev=bool(getattr(match, "kev", False)),
        kev_date_added=str(getattr(match, "kev_date_added", "") or ""),
        fixed_version=str(getattr(match, "fixed_version", "") or ""),
        summary=str(getattr(match, "summary", "") or "")[:2000],
        cvss_score=float(score) if score is not None else None,
    )


def is_open(match: object) -> bool:
    """False when a triage decision says the component is not (or no longer) affected."""
    return bool(getattr(match, "open", True))


def _matcher(db: sqlite_utils.Database) -> Callable[[Component], list]:
    match_mod = _module("cra_fw.vulns.match")
    matcher_cls = getattr(match_mod, "Matcher", None)
    if matcher_cls is not None:
        # one Matcher keeps its per-product caches across all components
        matcher = matcher_cls(db)
        return lambda component: matcher.match([component])
    func = getattr(_module("cra_fw.vulns"), "match_components", None) or getattr(
        match_mod, "match_components", None
    )
    if func is None:
        raise ImportError("cra_fw.vulns.match_components")
    return lambda component: func([component], db)


def match_each(components: Iterable[Component], db: sqlite_utils.Database) -> Iterator[list[Match]]:
    """For each component, in order, its open matches against the feeds in ``db``."""
    match_one = _matcher(db)
    for component in components:
        yield [from_vuln_match(m) for m in match_one(component) if is_open(m)]
