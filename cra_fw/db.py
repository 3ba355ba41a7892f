"""The local SQLite database shared by the vulnerability feeds and the CRA ledger.

One file, WAL mode, versioned schema.  Each owner (``feeds``, ``ledger``...)
registers an ordered list of migrations under its own namespace; ``open_db``
applies the missing ones automatically, each in its own transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from cra_fw.errors import LedgerError

if TYPE_CHECKING:  # imported when a database is opened: a scan without one never needs it
    import sqlite_utils

ENV_VAR = "CRA_FW_DB"

Migration = Callable[["sqlite_utils.Database"], None]


@dataclass(frozen=True)
class MigrationSet:
    namespace: str
    steps: tuple[Migration, ...]


_REGISTRY: dict[str, MigrationSet] = {}


def register_migrations(namespace: str, steps: list[Migration] | tuple[Migration, ...]) -> None:
    """Declare the schema of one owner; step *i* brings it from version i to i+1."""
    _REGISTRY[namespace] = MigrationSet(namespace, tuple(steps))


def default_path() -> Path:
    """``$CRA_FW_DB``, else ``$XDG_DATA_HOME/cra-fw/cra-fw.db`` (``~/.local/share``)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cra-fw" / "cra-fw.db"


def schema_versions(db: sqlite_utils.Database) -> dict[str, int]:
    if "schema_versions" not in db.table_names():
        return {}
    return {row["namespace"]: row["version"] for row in db["schema_versions"].rows}


def migrate(db: sqlite_utils.Database, namespaces: list[str] | None = None) -> dict[str, int]:
    """Apply missing migrations for the given namespaces (default: all registered)."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    names = namespaces if namespaces is not None else sorted(_REGISTRY)
    for name in names:
        mset = _REGISTRY.get(name)
        if mset is None:
            raise LedgerError(f"no schema registered for {name!r}: import its module before opening the db")
        current = schema_versions(db).get(name, 0)
        if current > len(mset.steps):
            raise LedgerError(
                f"the database's {name} schema is version {current}, newer than this cra-fw "
                f"({len(mset.steps)}): upgrade cra-fw"
            )
        for version in range(current, len(mset.steps)):
            with transaction(db):
                mset.steps[version](db)
                conn.execute(
                    "INSERT INTO schema_versions(namespace, version) VALUES (?, ?) "
                    "ON CONFLICT(namespace) DO UPDATE SET version=excluded.version",
                    (name, version + 1),
                )
    return schema_versions(db)


def open_db(
    path: Path | str | None = None, namespaces: list[str] | None = None, *, readonly: bool = False
) -> sqlite_utils.Database:
    """Open the database, in WAL mode, with migrations applied (created if needed).

    ``readonly`` (for commands that only look): the file must exist and is opened
    read-only, so it is never created, migrated or rewritten; a schema older than this
    cra-fw is read as it is, a newer one is refused.  A path that is not a regular file
    (``/dev/null``, a folder) or a file that is not SQLite is a LedgerError naming it.
    """
    target = Path(path) if path else default_path()
    hint = f"pass --db PATH or set {ENV_VAR} to a cra-fw database"
    if target.exists() and not target.is_file():
        raise LedgerError(f"database {target} is not a regular file; {hint}")
    if readonly and not target.exists():
        raise LedgerError(f"no database at {target} (nothing recorded yet); {hint}")
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{quote(str(target.resolve()))}?mode=ro", uri=True, timeout=30, isolation_level=None
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(target), timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # reads the header: not SQLite?
    except (OSError, sqlite3.Error) as exc:
        raise LedgerError(f"cannot open database {target}: {exc}; {hint}") from exc
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        import sqlite_utils

        db = sqlite_utils.Database(conn)
        if readonly:
            _check_versions(db, namespaces)
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(db, namespaces)
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerError(f"database {target} cannot be used: {exc}; {hint}") from exc
    except LedgerError:
        conn.close()
        raise
    return db


def _check_versions(db: sqlite_utils.Database, namespaces: list[str] | None) -> None:
    names = namespaces if namespaces is not None else sorted(_REGISTRY)
    found = schema_versions(db)
    for name in names:
        mset = _REGISTRY.get(name)
        if mset is not None and found.get(name, 0) > len(mset.steps):
            raise LedgerError(
                f"the database's {name} schema is version {found[name]}, newer than this cra-fw "
                f"({len(mset.steps)}): upgrade cra-fw"
            )


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction (BEGIN IMMEDIATE so concurrent writers queue, not fail)."""
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
