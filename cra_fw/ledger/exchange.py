"""Export and import the whole ledger as JSON (backup, moving between machines).

The export holds every ledger table row by row, in primary-key order, with the
schema version; importing it into an empty ledger and exporting again gives
the same document.  Feed tables are not included: re-import the feeds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils

from cra_fw import safejson
from cra_fw.db import schema_versions, transaction
from cra_fw.errors import LedgerError
from cra_fw.ledger.schema import NAMESPACE, TABLES
from cra_fw.regions import read_limited

FORMAT = "cra-fw-ledger"
MAX_EXPORT = 2 * 1024**3  # bytes of an export file read at most
_INT64 = (-(2**63), 2**63 - 1)


def _columns(db: sqlite_utils.Database, table: str) -> list[str]:
    return [row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")]


def _order(db: sqlite_utils.Database, table: str) -> str:
    pk = [
        row[1] for row in sorted(db.conn.execute(f"PRAGMA table_info({table})"), key=lambda r: r[5]) if row[5]
    ]
    return ", ".join(pk) if pk else "rowid"


def export_ledger(db: sqlite_utils.Database) -> dict[str, Any]:
    """The whole ledger as one JSON-ready document."""
    tables: dict[str, Any] = {}
    for table in TABLES:
        cols = _columns(db, table)
        rows = db.conn.execute(
            f"SELECT {', '.join(cols)} FROM {table} ORDER BY {_order(db, table)}"
        ).fetchall()
        tables[table] = {"columns": cols, "rows": [list(r) for r in rows]}
    return {"format": FORMAT, "schema_version": schema_versions(db).get(NAMESPACE, 0), "tables": tables}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


def write_export(db: sqlite_utils.Database, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(export_ledger(db)), encoding="utf-8")
    tmp.replace(path)
    return path


def is_empty(db: sqlite_utils.Database) -> bool:
    return all(db.conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is None for t in TABLES)


def import_ledger(db: sqlite_utils.Database, doc: Any, *, replace: bool = False) -> dict[str, int]:
    """Load an export into this ledger (empty unless ``replace``); rows per table."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tables"), dict):
        raise LedgerError("not a cra-fw ledger export (made by `cra-fw export`)")
    current = schema_versions(db).get(NAMESPACE, 0)
    if doc.get("schema_version") != current:
        raise LedgerError(
            f"the export has ledger schema {doc.get('schema_version')}, this cra-fw has {current}; "
            "import it with the cra-fw version that exported it, then export again"
        )
    counts: dict[str, int] = {}
    with transaction(db):
        if not is_empty(db):
            if not replace:
                raise LedgerError(
                    "the ledger is not empty; pass --replace to overwrite it, or use another --db"
                )
            for table in reversed(TABLES):
                db.conn.execute(f"DELETE FROM {table}")
        for table in TABLES:
            part = doc["tables"].get(table, {"columns": [], "rows": []})
            cols, rows = _table_part(part, table, set(_columns(db, table)))
            if rows:
                marks = ",".join("?" * len(cols))
                try:
                    db.conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
                except sqlite3.Error as exc:  # constraint or type problems in the file
                    raise LedgerError(f"cannot import table {table}: {exc}") from exc
            counts[table] = len(rows)
    return counts


def _table_part(part: Any, table: str, known: set[str]) -> tuple[list[str], list[list[Any]]]:
    """(columns, rows) of one exported table, every value of a type SQLite stores as given."""
    damaged = f"export table {table} has {{}}; the file was edited or is damaged"
    if not isinstance(part, dict):
        raise LedgerError(damaged.format("no columns and rows"))
    cols = part.get("columns") or []
    rows = part.get("rows") or []
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols):
        raise LedgerError(damaged.format("malformed columns"))
    if not set(cols) <= known:
        raise LedgerError(damaged.format("unknown columns"))
    if not isinstance(rows, list):
        raise LedgerError(damaged.format("malformed rows"))
    for row in rows:
        if not isinstance(row, list) or len(row) != len(cols):
            raise LedgerError(damaged.format("malformed rows"))
        for value in row:
            if isinstance(value, bool) or not isinstance(value, str | int | float | type(None)):
                raise LedgerError(damaged.format(f"malformed rows (a {type(value).__name__} value)"))
            if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
                raise LedgerError(damaged.format("malformed rows (an integer out of range)"))
    return cols, rows


def read_import(db: sqlite_utils.Database, path: Path, *, replace: bool = False) -> dict[str, int]:
    data = read_limited(Path(path), MAX_EXPORT, "ledger export", LedgerError)
    try:
        doc = safejson.loads(data)
    except ValueError as exc:  # not JSON, not UTF-8, nested too deeply
        raise LedgerError(f"{path} is not JSON ({exc}); give a file made by `cra-fw export`") from exc
    return import_ledger(db, doc, replace=replace)
