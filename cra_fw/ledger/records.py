"""The ledger's records: products, releases, scans, stored components/vulns/findings, support, cases.

Queries that read and write them live in :mod:`cra_fw.ledger.store`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from cra_fw.errors import LedgerError
from cra_fw.ledger.clocks import Clock, Stage, clocks, current_stage, parse_utc
from cra_fw.records import Component

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


def parse_month(text: str) -> tuple[int, int]:
    """(year, month) of a ``YYYY-MM`` text."""
    match = _MONTH_RE.fullmatch(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise LedgerError(f"{text!r} is not a month; use YYYY-MM, e.g. 2031-06")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    manufacturer: str = ""
    model: str = ""
    category: str = ""
    markets: tuple[str, ...] = ()
    created: str = ""


@dataclass(frozen=True)
class Release:
    id: int
    product_id: int
    product: str
    version: str
    released_at: str
    image_sha256: str = ""
    image_name: str = ""
    on_market_since: str = ""  # empty: not placed on the market
    withdrawn_at: str = ""
    created: str = ""

    @property
    def label(self) -> str:
        return f"{self.product}@{self.version}"

    def on_market(self, now: datetime) -> bool:
        if not self.on_market_since or self.withdrawn_at:
            return False
        return parse_utc(self.on_market_since) <= now


@dataclass(frozen=True)
class Scan:
    id: int
    release_id: int
    scanned_at: str
    tool_version: str
    feed_ages: dict[str, float]
    report_path: str
    summary: dict[str, int]


@dataclass(frozen=True)
class StoredComponent:
    id: int
    name: str
    version: str
    purl: str = ""
    cpe: str = ""
    supplier: str = ""
    kind: str = ""
    licenses: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    def to_component(self) -> Component:
        return Component(
            name=self.name,
            version=self.version,
            purl=self.purl,
            cpe=self.cpe,
            supplier=self.supplier,
            licenses=self.licenses,
            kind=self.kind or "library",
        )


@dataclass(frozen=True)
class StoredVuln:
    """An advisory matching a component of a release."""

    advisory_id: str
    component: StoredComponent
    severity: str
    kev: bool
    kev_date_added: str
    fixed_version: str
    summary: str
    first_seen: str
    cvss_score: float | None = None


@dataclass(frozen=True)
class StoredFinding:
    release_id: int
    key: str
    rule_id: str
    category: str
    severity: str
    title: str
    path: str
    cra_reference: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupportPeriod:
    product_id: int
    start_month: str  # YYYY-MM
    end_month: str  # YYYY-MM, support ends at the end of this month
    justification: str = ""
    updated: str = ""

    @property
    def months(self) -> int:
        sy, sm = parse_month(self.start_month)
        ey, em = parse_month(self.end_month)
        return (ey * 12 + em) - (sy * 12 + sm) + 1


@dataclass(frozen=True)
class Filing:
    case_id: int
    stage: Stage
    filed_at: str
    reference: str = ""
    note: str = ""


@dataclass(frozen=True)
class Case:
    """One actively exploited (or tracked) vulnerability affecting one product."""

    id: int
    product_id: int
    product: str
    advisory_id: str
    aware_at: str
    actively_exploited: bool
    status: str  # open | closed
    created: str
    severity: str = ""
    summary: str = ""
    components: tuple[str, ...] = ()
    release_ids: tuple[int, ...] = ()
    fixing_release_id: int | None = None
    fix_available_at: str = ""
    filings: tuple[Filing, ...] = field(default_factory=tuple)

    @property
    def clocks(self) -> tuple[Clock, ...]:
        # computed once per case (functools.cached_property takes a lock on every access in 3.11)
        cached = self.__dict__.get("_clocks")
        if cached is None:
            if not self.actively_exploited:
                cached = ()
            else:
                filed = {f.stage: parse_utc(f.filed_at) for f in self.filings}
                fix = parse_utc(self.fix_available_at) if self.fix_available_at else None
                cached = clocks(parse_utc(self.aware_at), fix, filed)
            object.__setattr__(self, "_clocks", cached)
        return cached

    @property
    def stage(self) -> str:
        if self.status == "closed":
            return "closed"
        if not self.actively_exploited:
            return "tracking"
        return current_stage(self.clocks)
