"""Start Datasette on a ledger: checked, read-only, with cra-fw's metadata, views and plugin.

Read-only, not immutable.  Datasette's immutable mode (``-i``) opens the file with
``immutable=1``: SQLite then takes no locks and ignores the write-ahead log, so on
a ledger that cra-fw is writing to (WAL mode, see :mod:`cra_fw.db`) it shows
stale data, or none of what is still in the log, and can read a half-written
page.  `cra-fw serve` opens the ledger as a mutable database instead, which
Datasette reads through ``mode=ro`` connections: every page sees the ledger as
the last committed cra-fw command left it, and SQLite itself refuses any write
("attempt to write a readonly database"), whatever SQL reaches it.  Datasette
never opens a write connection here: no plugin or canned query writes.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cra_fw.errors import LedgerError
from cra_fw.ledger.schema import NAMESPACE, VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
MAX_ROWS = 1000  # rows a view returns (the portfolio of a 1,000-product estate in one page)
SQL_TIME_LIMIT_MS = 5000  # hand-written SQL gets a little more than the views need


def check_ledger(path: Path) -> list[str]:
    """Refuse anything but an existing, current cra-fw ledger; its table names otherwise.

    Read through a ``mode=ro`` connection: nothing is created, migrated or written.
    """
    if not path.exists():
        raise LedgerError(
            f"no ledger at {path}: `cra-fw serve` only shows an existing ledger; record a product first "
            "(`cra-fw product add NAME`) or pass --db PATH"
        )
    if not path.is_file():
        raise LedgerError(f"{path} is not a file; pass the ledger database with --db PATH")
    try:
        with path.open("rb") as fh:
            magic = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise LedgerError(f"cannot read {path}: {exc.strerror}") from exc
    if magic != SQLITE_MAGIC:
        raise LedgerError(f"{path} is not an SQLite database; pass the ledger database with --db PATH")
    if any(ch in str(path.resolve()) for ch in "?#%"):
        raise LedgerError(
            f"{path}: '?', '#' or '%' in the path cannot be opened read-only; move or link the file"
        )
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            row = (
                conn.execute(
                    "SELECT version FROM schema_versions WHERE namespace = ?", (NAMESPACE,)
                ).fetchone()
                if "schema_versions" in names
                else None
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot read the ledger {path}: {exc}") from exc
    version = row[0] if row else 0
    if version == 0:
        raise LedgerError(
            f"{path} holds no cra-fw ledger; record a product first (`cra-fw product add NAME`)"
        )
    if version > VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, newer than this cra-fw ({VERSION}): upgrade cra-fw"
        )
    if version < VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, older than this cra-fw ({VERSION}); "
            "`cra-fw serve` does not write to it: run a command that records something (for example "
            "`cra-fw monitor`) to upgrade it, then serve again"
        )
    return names


def build(path: Path, *, fail_on: str | None = None, fail_on_vuln: str | None = None) -> Any:
    """The Datasette application for the ledger at ``path`` (checked first)."""
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.plugins import pm

    from cra_fw.serve import metadata, plugin
    from cra_fw.serve.sql import GatePolicy

    names = check_ledger(path)
    policy = GatePolicy.parse(fail_on, fail_on_vuln)  # a bad gate option fails here, before serving
    # Datasette prints a rich traceback with every local variable for each 4xx (a query with a
    # typo, a refused write) when rich is installed: pages of noise on the terminal per click.
    # Without it, a 4xx prints nothing and a real 500 still prints its traceback.  (Looked up
    # after datasette.app is imported: importing the module first would register it half-made.)
    importlib.import_module("datasette.handle_exception").rich = None
    if not pm.is_registered(plugin):
        pm.register(plugin, name="cra-fw")
    _only_our_plugins(pm)
    ds = Datasette(
        [],
        metadata=metadata.build(
            names,
            MAX_ROWS,
            policy.fail_on.value if policy.fail_on else None,
            ",".join(policy.fail_on_vuln) or None,
            policy.text,
        ),
        template_dir=str(TEMPLATES),
        static_mounts=[("-/cra-fw/static", str(STATIC))],
        settings={
            "max_returned_rows": MAX_ROWS,
            "sql_time_limit_ms": SQL_TIME_LIMIT_MS,
            "suggest_facets": False,  # suggestions scan every column of tables with millions of rows
            "allow_download": False,
        },
    )
    ds.add_database(_read_only_database(Database)(ds, str(path.resolve())), name=metadata.DATABASE)
    return ds


# Plugins `serve` runs besides Datasette's own: datasette-dashboards and the map library it
# loads.  Any other Datasette plugin installed in the same environment is switched off: one
# that writes (an upload or edit plugin) would open a write connection to the ledger, and
# datasette-render-markdown (a dashboards dependency; serve has no Markdown) looks up
# metadata for every cell of every page, a second per 1,000-row view.
PLUGINS = ("cra-fw", "dashboards", "leaflet")


def _only_our_plugins(pm: Any) -> None:
    from datasette.plugins import DEFAULT_PLUGINS

    for name, _module in list(pm.list_name_plugin()):
        if name not in PLUGINS and name not in DEFAULT_PLUGINS:
            pm.set_blocked(name)


def _read_only_database(base: type) -> type:
    """Datasette's Database, read through mode=ro connections, with every write path refused."""

    class ReadOnlyDatabase(base):  # type: ignore[misc, valid-type]
        def __init__(self, ds: Any, path: str) -> None:
            super().__init__(ds, path=path, is_mutable=True)

        async def execute_write_fn(self, fn: Any, block: bool = True) -> Any:
            raise LedgerError("cra-fw serve is read-only: nothing writes to the ledger through it")

    return ReadOnlyDatabase


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port, reported by the caller)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LedgerError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port or --host"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(ds: Any, sock: socket.socket, on_ready: Callable[[str], None]) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    async def main() -> None:
        await ds.invoke_startup()
        config = uvicorn.Config(ds.app(), log_level="warning", lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        on_ready(url)
        await server.serve(sockets=[sock])

    asyncio.run(main())
