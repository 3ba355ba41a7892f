"""The ledger's views, as Datasette canned queries.

Plain SQL over the ledger's tables (:mod:`cra_fw.ledger.schema`); every rule a
view shows comes from a ``cra_*`` function (:mod:`cra_fw.serve.sql`) or a
constant of the module that owns it, never from a second copy written here.
Each view is built to answer in well under a second on a ledger of 1,000
products and 20,000 releases (``benchmarks/bench_serve.py``): per-release
figures are computed only for the rows shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cra_fw.ledger.clocks import EARLY_WARNING_AFTER, FINAL_AFTER_FIX, NOTIFICATION_AFTER, STAGES
from cra_fw.ledger.support import MIN_MONTHS

ENDING_WITHIN_MONTHS = 12  # the support view's default horizon (issue #20: Article 13(8) planning)


@dataclass(frozen=True)
class View:
    name: str  # URL slug: /ledger/NAME
    title: str
    description: str  # plain text, shown on the home page and above the table
    sql: str
    params: tuple[str, ...] = ()


# The newest release of each product (by release date, then id, as `release list` orders them),
# found through the product index: a window over every release costs ten times more.
_LATEST = """
latest AS MATERIALIZED (
  SELECT p.id AS product_id, r.id, r.version, r.released_at, r.created,
         (SELECT count(*) FROM releases x WHERE x.product_id = p.id) AS releases
  FROM products p JOIN releases r ON r.id = (
    SELECT r2.id FROM releases r2 WHERE r2.product_id = p.id ORDER BY r2.released_at DESC, r2.id DESC LIMIT 1
  )
)"""

# The newest scan of each release in ``latest`` (its report folder and the feeds it saw).
_LAST_SCAN = """
last_scan AS (
  SELECT s.release_id, max(s.id) AS scan_id FROM scans s JOIN latest l ON l.id = s.release_id GROUP BY s.release_id
)"""

# Open vulnerabilities per component (a few thousand rows on a large ledger): releases join this
# instead of every advisory row, which halves the cost of counting over 300,000 release links.
_COMPONENT_VULNS = """
cv AS MATERIALIZED (
  SELECT component_id, count(*) AS open_vulns, sum(kev) AS kev,
    sum(severity = 'critical') AS critical, sum(severity = 'high') AS high,
    sum(severity = 'medium') AS medium, sum(severity = 'low') AS low,
    sum(severity NOT IN ('critical', 'high', 'medium', 'low')) AS unscored,
    sum(cra_vuln_trips(severity, kev)) AS gate_hits
  FROM component_vulns GROUP BY component_id
)"""

# Filings of each case as one JSON object {stage: filed_at}: the input cra_case_clocks() takes.
_FILED = """
filed AS (SELECT case_id, json_group_object(stage, filed_at) AS filed FROM filings GROUP BY case_id)"""

# Vulnerabilities were assessed for a release when its scan saw feeds, or a monitor run with
# feeds re-matched it since it was recorded.
_ASSESSED = """(
      json(coalesce(s.feed_ages, '{}')) != '{}'
      OR EXISTS (SELECT 1 FROM monitor_runs m WHERE json(m.feed_ages) != '{}' AND m.run_at >= l.created)
    )"""


def _portfolio() -> View:
    return View(
        "portfolio",
        "Portfolio",
        "Every product with its latest release: support end and months left, the release's open "
        "vulnerabilities by severity (as matched now, updated by `cra-fw monitor`), KEV-listed ones, "
        "open and overdue Article 14 cases, and the release gate applied to it.",
        f"""WITH {_LATEST},{_LAST_SCAN},{_FILED},{_COMPONENT_VULNS},
vulns AS (
  SELECT l.product_id, sum(cv.open_vulns) AS open_vulns, sum(cv.critical) AS critical,
    sum(cv.high) AS high, sum(cv.medium) AS medium, sum(cv.low) AS low, sum(cv.unscored) AS unscored,
    sum(cv.kev) AS kev, sum(cv.gate_hits) AS gate_hits
  FROM latest l
  CROSS JOIN release_components rc ON rc.release_id = l.id  -- CROSS: the 1,000 latest releases first
  JOIN cv ON cv.component_id = rc.component_id
  GROUP BY l.product_id
),
findings AS (
  SELECT l.product_id, sum(cra_finding_trips(f.severity)) AS gate_hits,
         sum(f.rule_id LIKE '%.stage-failed') AS failed_stages
  FROM latest l JOIN release_findings f ON f.release_id = l.id GROUP BY l.product_id
),
cases_now AS MATERIALIZED (
  SELECT c.product_id, count(*) AS open_cases,
    sum(json_extract(cra_case_clocks(c.status, c.actively_exploited, c.aware_at, c.fix_available_at,
        coalesce(f.filed, '{{}}')), '$.state') = 'overdue') AS overdue_cases
  FROM cases c LEFT JOIN filed f ON f.case_id = c.id WHERE c.status = 'open' GROUP BY c.product_id
)
SELECT
  p.id AS product_id,
  p.name AS product,
  p.manufacturer,
  p.category,
  coalesce(l.releases, 0) AS releases,
  l.id AS release_id,
  l.version AS latest_release,
  l.released_at AS released,
  sp.end_month AS support_end,
  cra_months_left(sp.end_month) AS months_left,
  coalesce(v.critical, 0) AS critical,
  coalesce(v.high, 0) AS high,
  coalesce(v.medium, 0) AS medium,
  coalesce(v.low, 0) AS low,
  coalesce(v.unscored, 0) AS unscored,
  coalesce(v.open_vulns, 0) AS open_vulns,
  coalesce(v.kev, 0) AS kev,
  coalesce(k.open_cases, 0) AS open_cases,
  coalesce(k.overdue_cases, 0) AS overdue_cases,
  CASE WHEN l.id IS NULL THEN 'no release'
       ELSE cra_gate(coalesce(v.gate_hits, 0), coalesce(fd.gate_hits, 0), {_ASSESSED},
                     coalesce(fd.failed_stages, 0)) END AS gate,
  ls.scan_id AS reports,
  s.report_path
FROM products p
LEFT JOIN latest l ON l.product_id = p.id
LEFT JOIN last_scan ls ON ls.release_id = l.id
LEFT JOIN scans s ON s.id = ls.scan_id
LEFT JOIN support_periods sp ON sp.product_id = p.id
LEFT JOIN vulns v ON v.product_id = p.id
LEFT JOIN findings fd ON fd.product_id = p.id
LEFT JOIN cases_now k ON k.product_id = p.id
ORDER BY p.name""",
    )


def _clock_columns() -> str:
    cols = []
    for stage in STAGES:
        key, col = str(stage), str(stage).replace("-", "_")
        cols.append(
            f"  json_extract(j, '$.\"{key}\".due') AS {col}_due,\n"
            f"  json_extract(j, '$.\"{key}\".state') AS {col}_state,\n"
            f"  json_extract(j, '$.\"{key}\".hours_left') AS {col}_hours_left,\n"
            f"  json_extract(j, '$.\"{key}\".filed_at') AS {col}_filed"
        )
    return ",\n".join(cols)


def _hours(delta: timedelta) -> int:
    return int(delta.total_seconds() // 3600)


def _clocks() -> View:
    return View(
        "article14_clocks",
        "Article 14 clocks",
        f"Every open case with its reporting deadlines: early warning {_hours(EARLY_WARNING_AFTER)} h and "
        f"notification {_hours(NOTIFICATION_AFTER)} h after awareness, final report {FINAL_AFTER_FIX.days} "
        "days after a fix is available. Overdue cases first (most overdue "
        "first), then by the next deadline, exactly as `cra-fw cases` sorts them. Hours left are "
        "negative when overdue.",
        f"""WITH {_FILED},
k AS MATERIALIZED (  -- cra_case_clocks() once per case, not once per column that reads it
  SELECT c.id, c.product_id, p.name AS product, c.advisory_id, c.severity, c.aware_at, c.fix_available_at,
         c.fixing_release_id,
         cra_case_clocks(c.status, c.actively_exploited, c.aware_at, c.fix_available_at,
                         coalesce(f.filed, '{{}}')) AS j
  FROM cases c JOIN products p ON p.id = c.product_id LEFT JOIN filed f ON f.case_id = c.id
  WHERE c.status = 'open'
)
SELECT
  id AS case_id,
  product_id,
  product,
  advisory_id,
  severity,
  json_extract(j, '$.state') AS state,
  json_extract(j, '$.stage') AS stage,
  json_extract(j, '$.next_due') AS next_due,
  json_extract(j, '$.hours_left') AS hours_left,
  json_extract(j, '$.time_left') AS time_left,
  aware_at,
{_clock_columns()},
  nullif(fix_available_at, '') AS fix_available_at
FROM k
ORDER BY json_extract(j, '$.urgency'), json_extract(j, '$.next_due'), id""",
    )


def _support() -> View:
    return View(
        "support_review",
        "Support periods to look at",
        f"Article 13(8): products whose declared support period is under five years ({MIN_MONTHS} months), "
        f"ends within the next months (default {ENDING_WITHIN_MONTHS}; set `within_months`), has ended, "
        "or was never declared. Months are counted as `cra-fw support status` counts them, start and end "
        "included.",
        f"""WITH s AS MATERIALIZED (
  SELECT p.id AS product_id, p.name AS product, sp.start_month, sp.end_month,
         cra_support_months(sp.start_month, sp.end_month) AS months,
         cra_months_left(sp.end_month) AS months_left,
         coalesce(sp.justification, '') AS justification
  FROM products p LEFT JOIN support_periods sp ON sp.product_id = p.id
)
SELECT product_id, product, start_month, end_month, months, months_left, justification,
  (SELECT count(*) FROM releases r WHERE r.product_id = s.product_id AND r.on_market_since != ''
     AND r.on_market_since <= (SELECT cra_now()) AND r.withdrawn_at = '') AS releases_on_market,
  CASE
    WHEN end_month IS NULL THEN 'not declared'
    WHEN months_left < 0 THEN 'ended'
    WHEN months_left < coalesce(CAST(nullif(:within_months, '') AS INTEGER), {ENDING_WITHIN_MONTHS}) THEN 'ending soon'
    ELSE ''
  END AS ending,
  CASE
    WHEN months < {MIN_MONTHS} AND justification = '' THEN 'under 5 years, no justification'
    WHEN months < {MIN_MONTHS} THEN 'under 5 years, justified'
    ELSE ''
  END AS length
FROM s
WHERE end_month IS NULL OR months < {MIN_MONTHS}
   OR months_left < coalesce(CAST(nullif(:within_months, '') AS INTEGER), {ENDING_WITHIN_MONTHS})
ORDER BY end_month IS NOT NULL, months_left, product""",
        ("within_months",),
    )


def _release_by_label(param: str) -> str:
    # PRODUCT@VERSION, split at the first '@' as `cra-fw diff` does (product names have none)
    return (
        f"(SELECT r.id FROM releases r JOIN products p ON p.id = r.product_id "
        f"WHERE p.name = substr(:{param}, 1, instr(:{param}, '@') - 1) "
        f"AND r.version = substr(:{param}, instr(:{param}, '@') + 1))"
    )


def _diff() -> View:
    old, new = _release_by_label("old"), _release_by_label("new")
    comp = "SELECT c.id, c.name, c.version, c.purl FROM release_components rc JOIN components c ON c.id = rc.component_id WHERE rc.release_id = {}"
    vuln = (
        "SELECT v.advisory_id, c.name, c.version, v.severity, v.kev FROM release_components rc "
        "JOIN components c ON c.id = rc.component_id JOIN component_vulns v ON v.component_id = c.id "
        "WHERE rc.release_id = {}"
    )
    find = "SELECT key, rule_id, severity, title, path FROM release_findings WHERE release_id = {}"
    return View(
        "release_diff",
        "Release diff",
        "What changed from release `old` to release `new` (each PRODUCT@VERSION, e.g. router@1.0): "
        "components added and removed (a version change is a removal and an addition; `other_version` "
        "names the other side), vulnerabilities and findings fixed and introduced. The same comparison "
        "as `cra-fw diff OLD NEW`.",
        f"""WITH
ca AS ({comp.format(old)}), cb AS ({comp.format(new)}),
va AS ({vuln.format(old)}), vb AS ({vuln.format(new)}),
fa AS ({find.format(old)}), fb AS ({find.format(new)})
SELECT 'component' AS kind, 'added' AS change, cb.name || '@' || cb.version AS item, cb.purl AS detail, '' AS severity,
       (SELECT group_concat(ca.version, ', ') FROM ca WHERE ca.name = cb.name) AS other_version
  FROM cb WHERE NOT EXISTS (SELECT 1 FROM ca WHERE ca.name = cb.name AND ca.version = cb.version)
UNION ALL
SELECT 'component', 'removed', ca.name || '@' || ca.version, ca.purl, '',
       (SELECT group_concat(cb.version, ', ') FROM cb WHERE cb.name = ca.name)
  FROM ca WHERE NOT EXISTS (SELECT 1 FROM cb WHERE cb.name = ca.name AND cb.version = ca.version)
UNION ALL
SELECT 'vulnerability', 'introduced', vb.advisory_id || CASE WHEN vb.kev THEN ' [KEV]' ELSE '' END,
       vb.name || '@' || vb.version, vb.severity, ''
  FROM vb WHERE NOT EXISTS (SELECT 1 FROM va WHERE va.advisory_id = vb.advisory_id AND va.name = vb.name)
UNION ALL
SELECT 'vulnerability', 'fixed', va.advisory_id || CASE WHEN va.kev THEN ' [KEV]' ELSE '' END,
       va.name || '@' || va.version, va.severity, ''
  FROM va WHERE NOT EXISTS (SELECT 1 FROM vb WHERE vb.advisory_id = va.advisory_id AND vb.name = va.name)
UNION ALL
SELECT 'finding', 'introduced', fb.rule_id || ' ' || fb.path, fb.title, fb.severity, ''
  FROM fb WHERE fb.key NOT IN (SELECT key FROM fa)
UNION ALL
SELECT 'finding', 'fixed', fa.rule_id || ' ' || fa.path, fa.title, fa.severity, ''
  FROM fa WHERE fa.key NOT IN (SELECT key FROM fb)
ORDER BY 1 DESC, 2, 3""",
        ("old", "new"),
    )


def _component_search() -> View:
    return View(
        "component_search",
        "Component search",
        'Which releases ship a component, for the "are we affected?" question when a new CVE lands. '
        "`component`: a name (SQL LIKE: `%` is a wildcard, case does not matter). `versions`: empty for "
        "any, a version, or constraints such as `>=1.2.0, <1.2.13` (Debian order for Debian packages, "
        "the firmware order otherwise). One row per product and component version, with the releases "
        "that ship it, newest first.",
        """WITH hit AS MATERIALIZED (
  SELECT c.id, c.name, c.version, c.purl FROM components c
  WHERE :component != '' AND c.name LIKE :component AND cra_version_in(c.version, :versions, c.purl)
),
shipped AS (
  SELECT p.id AS product_id, p.name AS product, hit.id AS component_id, hit.name, hit.version, hit.purl,
    row_number() OVER newest AS n,
    count(*) OVER every AS releases,
    sum(r.on_market_since != '' AND r.on_market_since <= (SELECT cra_now()) AND r.withdrawn_at = '') OVER every
      AS on_market,
    group_concat(r.version, ', ') OVER every AS release_versions,
    r.released_at AS newest_release_date
  FROM hit
  JOIN release_components rc ON rc.component_id = hit.id
  JOIN releases r ON r.id = rc.release_id
  JOIN products p ON p.id = r.product_id
  WINDOW newest AS (PARTITION BY p.id, hit.name, hit.version ORDER BY r.released_at DESC, r.id DESC),
         every AS (newest ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT product_id, product, name AS component, version, releases, on_market, release_versions,
  newest_release_date,
  (SELECT count(*) FROM component_vulns v WHERE v.component_id = shipped.component_id) AS open_vulns,
  (SELECT coalesce(sum(v.kev), 0) FROM component_vulns v WHERE v.component_id = shipped.component_id) AS kev,
  purl
FROM shipped WHERE n = 1
ORDER BY product, component, version""",
        ("component", "versions"),
    )


def _releases(max_rows: int) -> View:
    return View(
        "release_list",  # not "releases": a canned query would hide the table of that name
        "Releases",
        "Releases (of the products matching `product`, SQL LIKE; empty for all), newest first per product, "
        "with what their latest scan found, links to the stored report.html and evidence pack when they "
        "exist, and a diff against the release before.",
        f"""WITH page AS MATERIALIZED (
  SELECT r.id, r.product_id, p.name AS product, r.version, r.released_at, r.on_market_since, r.withdrawn_at,
         lag(r.version) OVER (PARTITION BY r.product_id ORDER BY r.released_at, r.id) AS previous
  FROM releases r JOIN products p ON p.id = r.product_id
  WHERE :product = '' OR p.name LIKE :product
  ORDER BY p.name, r.released_at DESC, r.id DESC
  LIMIT {max_rows + 1}
),
last_scan AS (SELECT s.release_id, max(s.id) AS scan_id FROM scans s JOIN page ON page.id = s.release_id
              GROUP BY s.release_id),
{_COMPONENT_VULNS},
vulns AS (  -- one pass over the shown releases' components for both counts
  SELECT rc.release_id, sum(cv.open_vulns) AS open_vulns, sum(cv.kev) AS kev
  FROM page CROSS JOIN release_components rc ON rc.release_id = page.id  -- CROSS: page first
  JOIN cv ON cv.component_id = rc.component_id GROUP BY rc.release_id
)
SELECT
  page.id AS release_id,
  page.product,
  page.version,
  page.released_at,
  CASE WHEN page.withdrawn_at != '' THEN 'withdrawn'
       WHEN page.on_market_since != '' AND page.on_market_since <= (SELECT cra_now()) THEN 'on market'
       ELSE 'not on market' END AS market,
  json_extract(s.summary, '$.components') AS components,
  coalesce(vulns.open_vulns, 0) AS open_vulns,
  coalesce(vulns.kev, 0) AS kev,
  (SELECT count(*) FROM release_findings f WHERE f.release_id = page.id) AS findings,
  ls.scan_id AS reports,
  s.report_path,
  CASE WHEN page.previous IS NULL THEN NULL ELSE page.product || '@' || page.previous END AS diff_from
FROM page
LEFT JOIN vulns ON vulns.release_id = page.id
LEFT JOIN last_scan ls ON ls.release_id = page.id
LEFT JOIN scans s ON s.id = ls.scan_id
ORDER BY page.product, page.released_at DESC, page.id DESC""",
        ("product",),
    )


def views(max_rows: int) -> tuple[View, ...]:
    """Every view, in the order the home page lists them."""
    return (_portfolio(), _clocks(), _support(), _releases(max_rows), _diff(), _component_search())
