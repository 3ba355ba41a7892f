"""The ledger's tables (namespace ``ledger`` in the shared database).

Step *i* of :data:`STEPS` brings the schema from version *i* to *i + 1*;
:func:`cra_fw.db.open_db` applies the missing ones, each in one transaction.
Never edit a released step: add a new one.
"""

from __future__ import annotations

import sqlite_utils

from cra_fw.db import register_migrations

NAMESPACE = "ledger"


def _run(db: sqlite_utils.Database, script: str) -> None:
    # not executescript(): it commits first, which would break the migration's transaction
    for statement in script.split(";"):
        if statement.strip():
            db.conn.execute(statement)


def _v1(db: sqlite_utils.Database) -> None:
    """Products, releases, scans, SBOM, findings, matches, support periods, cases, filings."""
    _run(
        db,
        """
        CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            manufacturer TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            category TEXT NOT NULL DEFAULT '',
            markets TEXT NOT NULL DEFAULT '[]',
            created TEXT NOT NULL
        );
        CREATE TABLE releases (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id),
            version TEXT NOT NULL,
            released_at TEXT NOT NULL,
            image_sha256 TEXT NOT NULL DEFAULT '',
            image_name TEXT NOT NULL DEFAULT '',
            on_market_since TEXT NOT NULL DEFAULT '',
            withdrawn_at TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL,
            UNIQUE (product_id, version)
        );
        CREATE TABLE scans (
            id INTEGER PRIMARY KEY,
            release_id INTEGER NOT NULL REFERENCES releases(id),
            scanned_at TEXT NOT NULL,
            tool_version TEXT NOT NULL DEFAULT '',
            feed_ages TEXT NOT NULL DEFAULT '{}',
            report_path TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE components (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            purl TEXT NOT NULL DEFAULT '',
            cpe TEXT NOT NULL DEFAULT '',
            supplier TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL DEFAULT '',
            licenses TEXT NOT NULL DEFAULT '[]',
            UNIQUE (name, version, purl, cpe)
        );
        CREATE TABLE release_components (
            release_id INTEGER NOT NULL REFERENCES releases(id),
            component_id INTEGER NOT NULL REFERENCES components(id),
            PRIMARY KEY (release_id, component_id)
        ) WITHOUT ROWID;
        CREATE TABLE release_findings (
            release_id INTEGER NOT NULL REFERENCES releases(id),
            key TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            title TEXT NOT NULL,
            path TEXT NOT NULL DEFAULT '',
            cra_reference TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (release_id, key)
        );
        CREATE TABLE component_vulns (
            component_id INTEGER NOT NULL REFERENCES components(id),
            advisory_id TEXT NOT NULL,
            severity TEXT NOT NULL DEFAULT '',
            kev INTEGER NOT NULL DEFAULT 0,
            kev_date_added TEXT NOT NULL DEFAULT '',
            fixed_version TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '',
            first_seen TEXT NOT NULL,
            PRIMARY KEY (component_id, advisory_id)
        );
        CREATE TABLE support_periods (
            product_id INTEGER PRIMARY KEY REFERENCES products(id),
            start_month TEXT NOT NULL,
            end_month TEXT NOT NULL,
            justification TEXT NOT NULL DEFAULT '',
            updated TEXT NOT NULL
        );
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            product_id INTEGER NOT NULL REFERENCES products(id),
            advisory_id TEXT NOT NULL,
            aware_at TEXT NOT NULL,
            actively_exploited INTEGER NOT NULL DEFAULT 1,
            fixing_release_id INTEGER REFERENCES releases(id),
            fix_available_at TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open',
            created TEXT NOT NULL,
            UNIQUE (product_id, advisory_id)
        );
        CREATE TABLE case_releases (
            case_id INTEGER NOT NULL REFERENCES cases(id),
            release_id INTEGER NOT NULL REFERENCES releases(id),
            PRIMARY KEY (case_id, release_id)
        ) WITHOUT ROWID;
        CREATE TABLE filings (
            case_id INTEGER NOT NULL REFERENCES cases(id),
            stage TEXT NOT NULL,
            filed_at TEXT NOT NULL,
            reference TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (case_id, stage)
        );
        """,
    )


def _v2(db: sqlite_utils.Database) -> None:
    """What a case is about (kept on the case, so drafts survive feed changes); monitor history."""
    _run(
        db,
        """
        ALTER TABLE cases ADD COLUMN severity TEXT NOT NULL DEFAULT '';
        ALTER TABLE cases ADD COLUMN summary TEXT NOT NULL DEFAULT '';
        ALTER TABLE cases ADD COLUMN components TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE component_vulns ADD COLUMN cvss_score REAL;
        CREATE TABLE monitor_runs (
            id INTEGER PRIMARY KEY,
            run_at TEXT NOT NULL,
            feed_ages TEXT NOT NULL DEFAULT '{}',
            components_matched INTEGER NOT NULL DEFAULT 0,
            added INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            cases_opened INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE monitor_changes (
            run_id INTEGER NOT NULL REFERENCES monitor_runs(id),
            kind TEXT NOT NULL,
            advisory_id TEXT NOT NULL,
            component_id INTEGER NOT NULL,
            releases INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, kind, advisory_id, component_id)
        );
        """,
    )


def _v3(db: sqlite_utils.Database) -> None:
    """Indexes that keep monitor and cases fast on large ledgers."""
    _run(
        db,
        """
        CREATE INDEX idx_release_components_component ON release_components(component_id);
        CREATE INDEX idx_releases_product ON releases(product_id);
        CREATE INDEX idx_component_vulns_advisory ON component_vulns(advisory_id);
        CREATE INDEX idx_component_vulns_kev ON component_vulns(kev) WHERE kev = 1;
        CREATE INDEX idx_cases_status ON cases(status);
        CREATE INDEX idx_scans_release ON scans(release_id);
        """,
    )


STEPS = (_v1, _v2, _v3)
VERSION = len(STEPS)

# Tables in the order an import must fill them (parents first).
TABLES = (
    "products",
    "releases",
    "scans",
    "components",
    "release_components",
    "release_findings",
    "component_vulns",
    "support_periods",
    "cases",
    "case_releases",
    "filings",
    "monitor_runs",
    "monitor_changes",
)

register_migrations(NAMESPACE, STEPS)
