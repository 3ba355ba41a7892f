"""`cra-fw serve`: browse the ledger in a web browser (Datasette, read-only)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from cra_fw.cli.common import echo
from cra_fw.cli.ledger import db_option


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port (0: any free port)."
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low"], case_sensitive=False),
    default="high",
    show_default=True,
    help="Portfolio gate: an unsuppressed finding of this severity or higher in the latest release fails it.",
)
@click.option(
    "--fail-on-vuln",
    multiple=True,
    metavar="critical|high|medium|low|kev",
    default=("high",),
    show_default=True,
    help="Portfolio gate: an open vulnerability of this severity or higher (KEV always counts) fails "
    "it; repeatable or comma-separated, as for `cra-fw scan`.",
)
def serve(db_path: Path | None, host: str, port: int, fail_on: str, fail_on_vuln: tuple[str, ...]) -> None:
    """Browse the ledger in a web browser: products, releases, cases, clocks, charts.

    Starts Datasette on the ledger (read-only: nothing can be written through it,
    and it shows what cra-fw commands record while it runs), with views for the
    portfolio, Article 14 clocks, support periods, release diffs and component
    search, and a dashboard.  Listens on 127.0.0.1 unless --host says otherwise.
    Ctrl-C stops it.
    """
    from cra_fw.db import default_path
    from cra_fw.serve import app

    target = Path(db_path) if db_path else default_path()
    ds = app.build(target, fail_on=fail_on, fail_on_vuln=",".join(fail_on_vuln))
    sock = app.bind(host, port)
    if not _loopback(host):
        echo(
            f"cra-fw: warning: listening on {host}: anyone who can reach this address can read the whole "
            "ledger (there is no login)",
            err=True,
        )

    def ready(url: str) -> None:
        echo(f"serving the ledger {target} at {url} (read-only; Ctrl-C stops)", err=False)

    try:
        app.serve(ds, sock, ready)
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has already shut down cleanly
        pass
    echo("stopped", err=True)
