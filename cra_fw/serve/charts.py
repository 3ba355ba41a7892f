"""The ledger dashboard: charts drawn by the datasette-dashboards plugin (Vega-Lite, served
from the plugin's own static files: nothing is fetched from the internet).

Each chart is one SQL query over the ledger, using the same ``cra_*`` functions as
the views, plus a Vega-Lite spec.  ``[[ ... :product ... ]]`` blocks apply only when
the dashboard's product filter is set.
"""

from __future__ import annotations

from typing import Any

from cra_fw.ledger.support import MIN_MONTHS

SLUG = "overview"
TOP_PRODUCTS = 10  # products drawn when no product is chosen: the most open vulnerabilities now

# per-release open vulnerability count, computed only for the releases drawn
_RELEASE_VULNS = (
    "(SELECT count(*) FROM release_components rc JOIN component_vulns v ON v.component_id = rc.component_id "
    "WHERE rc.release_id = r.id)"
)

_CASE_STATES = """
SELECT json_extract(j, '$.stage') AS stage, json_extract(j, '$.state') AS state, count(*) AS cases FROM (
  SELECT cra_case_clocks(c.status, c.actively_exploited, c.aware_at, c.fix_available_at,
    coalesce((SELECT json_group_object(stage, filed_at) FROM filings f WHERE f.case_id = c.id), '{}')) AS j
  FROM cases c JOIN products p ON p.id = c.product_id
  WHERE 1 [[ AND p.name = :product ]]
) GROUP BY 1, 2 ORDER BY 1, 2"""

_VULNS_OVER_RELEASES = f"""
WITH latest AS MATERIALIZED (
  SELECT p.id AS product_id, (
    SELECT r.id FROM releases r WHERE r.product_id = p.id ORDER BY r.released_at DESC, r.id DESC LIMIT 1
  ) AS id FROM products p
),
cv AS MATERIALIZED (SELECT component_id, count(*) AS n FROM component_vulns GROUP BY component_id),
top AS (
  SELECT l.product_id FROM latest l
  CROSS JOIN release_components rc ON rc.release_id = l.id
  LEFT JOIN cv ON cv.component_id = rc.component_id
  [[ WHERE :product IS NULL ]]
  GROUP BY l.product_id ORDER BY coalesce(sum(cv.n), 0) DESC, l.product_id LIMIT {TOP_PRODUCTS}
)
SELECT p.name AS product, r.version, r.released_at, {_RELEASE_VULNS} AS open_vulns
FROM releases r JOIN products p ON p.id = r.product_id
WHERE r.product_id IN (SELECT product_id FROM top) [[ OR p.name = :product ]]
ORDER BY p.name, r.released_at, r.id"""

# one product's support period, in the words of the charts' legend
_PERIOD = f"""CASE WHEN sp.end_month IS NULL THEN 'not declared'
            WHEN cra_months_left(sp.end_month) < 0 THEN 'ended'
            WHEN cra_support_months(sp.start_month, sp.end_month) < {MIN_MONTHS} THEN 'under 5 years'
            ELSE '5 years or more' END"""

_SUPPORT_TIMELINE = f"""
SELECT p.name AS product, sp.start_month || '-01' AS support_start,
       date(sp.end_month || '-01', '+1 month') AS support_end,
       {_PERIOD} AS period,
       substr(cra_now(), 1, 10) AS today
FROM support_periods sp JOIN products p ON p.id = sp.product_id
WHERE 1 [[ AND p.name = :product ]]
ORDER BY sp.end_month, p.name LIMIT 40"""

_SUPPORT_BY_YEAR = f"""
SELECT coalesce(substr(sp.end_month, 1, 4), 'not declared') AS end_year,
       {_PERIOD} AS period,
       count(*) AS products
FROM products p LEFT JOIN support_periods sp ON sp.product_id = p.id
GROUP BY 1, 2 ORDER BY 1, 2"""

# overdue in red everywhere (the views mark it the same way)
_STATE_COLOURS = {
    "domain": ["overdue", "running", "awaiting-fix", "closed", "tracking"],
    "range": ["#c62828", "#f9a825", "#6d7f99", "#2e7d32", "#9e9e9e"],
}
_PERIOD_COLOURS = {
    "domain": ["ended", "under 5 years", "5 years or more", "not declared"],
    "range": ["#c62828", "#f9a825", "#2e7d32", "#9e9e9e"],
}


def _bar(
    db: str, title: str, sql: str, x: tuple[str, str, str], y: tuple[str, str], colour: tuple[str, dict]
) -> dict:
    """A bar chart: x (field, type, title), y (field, title), colour (field, scale)."""
    return {
        "title": title,
        "db": db,
        "query": sql.strip(),
        "library": "vega-lite",
        "display": {
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": {"field": x[0], "type": x[1], "title": x[2]},
                "y": {"field": y[0], "type": "quantitative", "title": y[1]},
                "color": {"field": colour[0], "type": "nominal", "scale": colour[1]},
            },
        },
    }


def _metric(db: str, title: str, sql: str, field: str) -> dict[str, Any]:
    return {"title": title, "db": db, "query": sql, "library": "metric", "display": {"field": field}}


def dashboards(db: str) -> dict[str, Any]:
    """datasette-dashboards configuration for the ledger database ``db``."""
    open_cases = (
        "SELECT count(*) AS n FROM cases c JOIN products p ON p.id = c.product_id "
        "WHERE c.status = 'open' [[ AND p.name = :product ]]"
    )
    overdue = (
        "SELECT count(*) AS n FROM cases c JOIN products p ON p.id = c.product_id WHERE c.status = 'open' "
        "AND json_extract(cra_case_clocks(c.status, c.actively_exploited, c.aware_at, c.fix_available_at, "
        "coalesce((SELECT json_group_object(stage, filed_at) FROM filings f WHERE f.case_id = c.id), '{}')), "
        "'$.state') = 'overdue' [[ AND p.name = :product ]]"
    )
    on_market = (
        "SELECT count(*) AS n FROM releases r JOIN products p ON p.id = r.product_id "
        "WHERE r.on_market_since != '' AND r.on_market_since <= (SELECT cra_now()) AND r.withdrawn_at = '' "
        "[[ AND p.name = :product ]]"
    )
    products = "SELECT count(*) AS n FROM products p WHERE 1 [[ AND p.name = :product ]]"
    return {
        SLUG: {
            "title": "CRA ledger overview",
            "description": "Open vulnerabilities over releases, Article 14 cases by state, support periods. "
            f"Without a product chosen, the {TOP_PRODUCTS} products with the most open vulnerabilities "
            "in their latest release are drawn.",
            "layout": [
                ["products", "on-market", "open-cases", "overdue-cases"],
                ["vulns-over-releases", "vulns-over-releases", "cases-by-state", "cases-by-state"],
                ["support-timeline", "support-timeline", "support-by-year", "support-by-year"],
            ],
            "filters": {
                "product": {
                    "name": "Product",
                    "type": "select",
                    "db": db,
                    "query": "SELECT name FROM products ORDER BY name",
                }
            },
            "charts": {
                "products": _metric(db, "Products", products, "n"),
                "on-market": _metric(db, "Releases on the market", on_market, "n"),
                "open-cases": _metric(db, "Open Article 14 cases", open_cases, "n"),
                "overdue-cases": _metric(db, "Overdue cases", overdue, "n"),
                "vulns-over-releases": {
                    "title": "Open vulnerabilities per release",
                    "db": db,
                    "query": _VULNS_OVER_RELEASES.strip(),
                    "library": "vega-lite",
                    "display": {
                        "mark": {"type": "line", "point": True, "tooltip": True},
                        "encoding": {
                            "x": {"field": "released_at", "type": "temporal", "title": "release date"},
                            "y": {
                                "field": "open_vulns",
                                "type": "quantitative",
                                "title": "open vulnerabilities",
                            },
                            "color": {"field": "product", "type": "nominal"},
                            "tooltip": [
                                {"field": "product"},
                                {"field": "version"},
                                {"field": "released_at", "type": "temporal"},
                                {"field": "open_vulns", "type": "quantitative"},
                            ],
                        },
                    },
                },
                "cases-by-state": _bar(
                    db,
                    "Article 14 cases by stage and state",
                    _CASE_STATES,
                    ("stage", "nominal", "stage"),
                    ("cases", "cases"),
                    ("state", _STATE_COLOURS),
                ),
                "support-timeline": {
                    "title": "Support periods ending soonest",
                    "db": db,
                    "query": _SUPPORT_TIMELINE.strip(),
                    "library": "vega-lite",
                    "display": {
                        "layer": [
                            {
                                "mark": {"type": "bar", "tooltip": True},
                                "encoding": {
                                    "y": {"field": "product", "type": "nominal", "sort": None, "title": None},
                                    "x": {"field": "support_start", "type": "temporal", "title": "support"},
                                    "x2": {"field": "support_end"},
                                    "color": {"field": "period", "type": "nominal", "scale": _PERIOD_COLOURS},
                                },
                            },
                            {
                                "mark": {"type": "rule", "color": "#c62828", "strokeDash": [4, 3]},
                                "encoding": {"x": {"aggregate": "max", "field": "today", "type": "temporal"}},
                            },
                        ]
                    },
                },
                "support-by-year": _bar(
                    db,
                    "Support ends per year",
                    _SUPPORT_BY_YEAR,
                    ("end_year", "ordinal", "support ends"),
                    ("products", "products"),
                    ("period", _PERIOD_COLOURS),
                ),
            },
        }
    }
