"""Support-period checks (CRA Article 13(8)): length, ending soon, ended, updates due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from cra_fw.ledger.records import Product
from cra_fw.ledger.store import get_support, list_cases, list_products, list_releases

MIN_MONTHS = 60  # Article 13(8): at least five years unless the product is in use for less
ARTICLE = "Article 13(8)"

SHORT = "short-without-justification"
MISSING = "no-support-period"
ENDING = "ending-soon"
ON_MARKET_AFTER_END = "on-market-after-end"
UPDATE_DUE = "security-update-due"


@dataclass(frozen=True)
class SupportIssue:
    kind: str
    product: str
    detail: str
    reference: str = ARTICLE


@dataclass(frozen=True)
class ProductSupport:
    product: Product
    start_month: str
    end_month: str
    months: int
    justification: str
    ends_at: datetime | None  # first instant after support


def end_instant(end_month: str) -> datetime:
    """Support declared until YYYY-MM lasts to the end of that month."""
    year, month = int(end_month[:4]), int(end_month[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def months_left(end_month: str, now: datetime) -> int:
    """Whole months from ``now`` until support declared until YYYY-MM ends (negative once ended)."""
    ends = end_instant(end_month)
    months = (ends.year * 12 + ends.month) - (now.year * 12 + now.month)
    # ``ends`` is the first instant of a month: any time past the first instant of
    # now's month means the last month is not whole
    if (now.day, now.hour, now.minute, now.second) > (1, 0, 0, 0):
        months -= 1
    return months


def support_status(
    db: sqlite_utils.Database, now: datetime, within_days: int = 90
) -> tuple[list[ProductSupport], list[SupportIssue]]:
    """Each product's support period, and every problem with it, most serious first."""
    periods: list[ProductSupport] = []
    issues: list[SupportIssue] = []
    releases = list_releases(db)
    open_cases = [c for c in list_cases(db) if c.status == "open"]
    for product in list_products(db):
        period = get_support(db, product.id)
        on_market = [r for r in releases if r.product_id == product.id and r.on_market(now)]
        if period is None:
            periods.append(ProductSupport(product, "", "", 0, "", None))
            issues.append(
                SupportIssue(
                    MISSING,
                    product.name,
                    f"no support period declared; set one with `cra-fw support set "
                    f"{product.name} --end YYYY-MM`",
                )
            )
        else:
            ends = end_instant(period.end_month)
            periods.append(
                ProductSupport(
                    product, period.start_month, period.end_month, period.months, period.justification, ends
                )
            )
            if period.months < MIN_MONTHS and not period.justification:
                issues.append(
                    SupportIssue(
                        SHORT,
                        product.name,
                        f"support {period.start_month} to {period.end_month} is {period.months} months, under "
                        f"{MIN_MONTHS}, with no justification; extend it or give --justification",
                    )
                )
            if ends <= now:
                for release in on_market:
                    issues.append(
                        SupportIssue(
                            ON_MARKET_AFTER_END,
                            product.name,
                            f"{release.label} is still on the market after support ended {period.end_month}; "
                            f"withdraw it or extend support",
                        )
                    )
            elif ends - now <= timedelta(days=within_days):
                days = (ends - now).days
                issues.append(
                    SupportIssue(ENDING, product.name, f"support ends {period.end_month} (in {days} days)")
                )
        for case in open_cases:
            if case.product_id == product.id and not case.fix_available_at:
                issues.append(
                    SupportIssue(
                        UPDATE_DUE,
                        product.name,
                        f"{case.advisory_id} (case {case.id}) is actively exploited and has no fixing release yet",
                        "Annex I Part II 2; Article 14",
                    )
                )
    rank = {ON_MARKET_AFTER_END: 0, UPDATE_DUE: 1, SHORT: 2, MISSING: 3, ENDING: 4}
    issues.sort(key=lambda i: (rank[i.kind], i.product, i.detail))
    return periods, issues
