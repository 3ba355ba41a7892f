"""Datasette metadata for the ledger: titles and descriptions of every table and column,
hidden internal tables, default sorts and facets, the canned views and the dashboard.

Descriptions follow :mod:`cra_fw.ledger.schema`; ``tests/serve`` checks that every
column of the live schema is described here, so a schema step without words fails.
"""

from __future__ import annotations

import html
import re
from typing import Any

from cra_fw.ledger.schema import TABLES
from cra_fw.serve.charts import dashboards
from cra_fw.serve.queries import views

DATABASE = "ledger"  # the name the ledger has in every URL: /ledger/...
PLUGIN = "cra-fw"  # plugin configuration key: the release gate the portfolio applies

_TIME = "UTC, ISO 8601"
_CODE = re.compile(r"`([^`]+)`")


def code_html(text: str) -> str:
    """Plain text with `code` spans, as HTML."""
    return _CODE.sub(r"<code>\1</code>", html.escape(text, quote=False))


TABLE_DOCS: dict[str, dict[str, Any]] = {
    "products": {
        "title": "Products",
        "description": "Products the manufacturer places on the market (`cra-fw product add`).",
        "sort": "name",
        "facets": ["category", "manufacturer"],
        "label_column": "name",
        "columns": {
            "id": "Row id.",
            "name": "The product's name: its handle in every command (no '@').",
            "manufacturer": "Manufacturer name as it appears on the product.",
            "model": "Model or type number.",
            "category": "CRA category (default, important class I/II, critical).",
            "markets": "Member States where it is sold (JSON list of country codes).",
            "created": f"When it was recorded ({_TIME}).",
        },
    },
    "releases": {
        "title": "Releases",
        "description": "Firmware releases of each product, one per scanned image (`cra-fw release add`).",
        "sort_desc": "released_at",
        "facets": ["product_id"],
        "label_column": "version",
        "columns": {
            "id": "Row id.",
            "product_id": "The product.",
            "version": "Release version, unique within the product.",
            "released_at": f"Release date ({_TIME}); orders a product's releases.",
            "image_sha256": "SHA-256 of the firmware image that was scanned.",
            "image_name": "File name of the image.",
            "on_market_since": f"When it was placed on the market ({_TIME}); empty: not placed on the market.",
            "withdrawn_at": f"When it stopped being made available ({_TIME}); empty: still available.",
            "created": f"When it was recorded ({_TIME}).",
        },
    },
    "scans": {
        "title": "Scans",
        "description": "Each scan recorded for a release, with where its reports were written.",
        "sort_desc": "scanned_at",
        "columns": {
            "id": "Row id.",
            "release_id": "The release scanned.",
            "scanned_at": f"When the scan finished ({_TIME}).",
            "tool_version": "cra-fw version that scanned.",
            "feed_ages": "Age in days of each vulnerability feed at scan time (JSON; {} means no feeds).",
            "report_path": "report.json of the scan; report.html and evidence.zip sit beside it.",
            "summary": "Counts from the scan: components, files, layers, findings by severity, "
            "vulnerabilities, KEV, errors (JSON).",
        },
    },
    "components": {
        "title": "Components",
        "description": "Every distinct component (name, version, purl, CPE) found in any release.",
        "sort": "name",
        "facets": ["kind"],
        "label_column": "name",
        "columns": {
            "id": "Row id.",
            "name": "Component name.",
            "version": "Component version as identified.",
            "purl": "Package URL.",
            "cpe": "CPE 2.3 name used to match NVD.",
            "supplier": "Supplier, when known.",
            "kind": "library, application, operating-system, firmware...",
            "licenses": "Licences (JSON list of SPDX ids).",
        },
    },
    "release_components": {
        "title": "Release components",
        "description": "Which components each release ships (the release's SBOM).",
        "columns": {
            "release_id": "The release.",
            "component_id": "A component it ships.",
        },
    },
    "release_findings": {
        "title": "Release findings",
        "description": "Secure-by-default findings of each release's scan (suppressed ones are not recorded).",
        "sort": "rule_id",
        "facets": ["severity", "category"],
        "columns": {
            "release_id": "The release.",
            "key": "The finding's identity across releases: rule, path, line/offset and fingerprint.",
            "rule_id": "The rule that found it.",
            "category": "credentials, secrets, services, hardening, update, unpack...",
            "severity": "critical, high, medium, low or info.",
            "title": "What was found.",
            "path": "Where, inside the image.",
            "cra_reference": "The CRA points it concerns (JSON list).",
        },
    },
    "component_vulns": {
        "title": "Component vulnerabilities",
        "description": "Open advisories matching each component now (`cra-fw monitor` keeps them current; "
        "triaged-away matches are not kept).",
        "sort_desc": "first_seen",
        "facets": ["severity", "kev"],
        "columns": {
            "component_id": "The component.",
            "advisory_id": "CVE or other advisory id.",
            "severity": "critical, high, medium, low; empty when unscored.",
            "kev": "1 when listed in CISA KEV (actively exploited: Article 14 applies).",
            "kev_date_added": "When CISA added it to KEV.",
            "fixed_version": "First fixed version, when the advisory says.",
            "summary": "The advisory's description.",
            "first_seen": f"When cra-fw first matched it to this component ({_TIME}).",
            "cvss_score": "CVSS base score (v3.1, else v4).",
        },
    },
    "support_periods": {
        "title": "Support periods",
        "description": "Declared support period of each product (Article 13(8); `cra-fw support set`).",
        "sort": "end_month",
        "columns": {
            "product_id": "The product.",
            "start_month": "First month of support (YYYY-MM).",
            "end_month": "Last month of support (YYYY-MM): support lasts to the end of it.",
            "justification": "Why support is shorter than five years, when it is.",
            "updated": f"When it was last declared ({_TIME}).",
        },
    },
    "cases": {
        "title": "Cases",
        "description": "Actively exploited vulnerabilities affecting a product: each starts the Article 14 "
        "clocks (see the Article 14 clocks view for deadlines and hours left).",
        "sort_desc": "aware_at",
        "facets": ["status", "severity", "product_id"],
        "label_column": "advisory_id",
        "columns": {
            "id": "Case number (`cra-fw case show ID`).",
            "product_id": "The product affected.",
            "advisory_id": "The advisory (CVE).",
            "aware_at": f"When the manufacturer became aware: the clocks start here ({_TIME}).",
            "actively_exploited": "1: actively exploited (KEV), the Article 14 clocks run; 0: tracked only.",
            "fixing_release_id": "The release that fixes it, when one is recorded.",
            "fix_available_at": f"When a corrective or mitigating measure became available ({_TIME}); "
            "starts the final-report clock.",
            "status": "open, or closed once the final report is filed.",
            "created": f"When the case was opened ({_TIME}).",
            "severity": "The advisory's severity when the case was opened.",
            "summary": "The advisory's description when the case was opened.",
            "components": "Affected components, name@version (JSON list).",
        },
    },
    "case_releases": {
        "title": "Case releases",
        "description": "Releases affected by each case.",
        "columns": {"case_id": "The case.", "release_id": "An affected release."},
    },
    "filings": {
        "title": "Filings",
        "description": "Reports sent to the CSIRT/ENISA platform for each case (`cra-fw case file`).",
        "sort_desc": "filed_at",
        "facets": ["stage"],
        "columns": {
            "case_id": "The case.",
            "stage": "early-warning, notification or final.",
            "filed_at": f"When it was sent ({_TIME}).",
            "reference": "Reference given by the reporting platform.",
            "note": "Free text kept with the filing.",
        },
    },
    "monitor_runs": {
        "title": "Monitor runs",
        "description": "Each `cra-fw monitor` run: every recorded release re-matched against the feeds.",
        "sort_desc": "run_at",
        "columns": {
            "id": "Row id.",
            "run_at": f"When it ran ({_TIME}).",
            "feed_ages": "Age in days of each feed it matched against (JSON).",
            "components_matched": "Distinct components matched.",
            "added": "Matches that appeared.",
            "removed": "Matches that disappeared.",
            "cases_opened": "Cases it opened.",
        },
    },
    "monitor_changes": {
        "title": "Monitor changes",
        "description": "What each monitor run changed: new, removed and newly exploited matches.",
        "sort_desc": "run_id",
        "facets": ["kind"],
        "columns": {
            "run_id": "The monitor run.",
            "kind": "new, removed or now-exploited.",
            "advisory_id": "The advisory.",
            "component_id": "The component.",
            "releases": "Releases shipping the component at the time.",
        },
    },
}


def build(
    table_names: list[str], max_rows: int, fail_on: str | None, fail_on_vuln: str | None, gate_text: str
) -> dict[str, Any]:
    """The metadata dict for a ledger whose tables are ``table_names``."""
    tables: dict[str, Any] = {}
    # the ledger's tables in schema order (parents first), then everything else
    for name in sorted(table_names, key=lambda n: (TABLES.index(n) if n in TABLES else len(TABLES), n)):
        if name in TABLE_DOCS:
            tables[name] = TABLE_DOCS[name]
        else:  # schema_versions, the vulnerability feeds: reachable by URL and SQL, not listed
            tables[name] = {"hidden": True}
    queries: dict[str, Any] = {}
    for view in views(max_rows):
        description = view.description
        if view.name == "portfolio":
            description += f" Gate: {gate_text}."
        queries[view.name] = {
            "title": view.title,
            "description_html": code_html(description),
            "sql": view.sql,
            "hide_sql": True,
            **({"params": list(view.params)} if view.params else {}),
        }
    return {
        "title": "cra-fw ledger",
        "description": "Products, releases, support periods and Article 14 clocks recorded by cra-fw "
        "(read-only view).",
        "about": "cra-fw",
        "databases": {
            DATABASE: {
                "title": "CRA ledger",
                "description": "The CRA ledger: tables as cra-fw writes them, and the views above them.",
                "tables": tables,
                "queries": queries,
            }
        },
        "plugins": {
            "datasette-dashboards": dashboards(DATABASE),
            PLUGIN: {"fail_on": fail_on, "fail_on_vuln": fail_on_vuln},
        },
    }
