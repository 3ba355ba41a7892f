"""The Datasette plugin `cra-fw serve` registers: SQL functions, cell rendering, report links.

Only the database named :data:`cra_fw.serve.metadata.DATABASE` is touched; the hooks
return None for anything else, so Datasette's own rendering applies there.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import AsgiFileDownload, NotFound
from markupsafe import Markup

from cra_fw.ledger.clocks import STAGES
from cra_fw.serve import sql
from cra_fw.serve.charts import SLUG
from cra_fw.serve.metadata import DATABASE, PLUGIN

# Files of a scan's output folder that a release links to (report.json sits there too).
REPORT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "evidence.zip": "application/zip",
    "evidence.zip.sig": "application/octet-stream",
}
# report.html is written from hostile firmware (escaped, with its own CSP); served here it also
# gets an opaque origin, so even a flaw in it could not act as the ledger's pages
REPORT_HEADERS = {
    "content-security-policy": "sandbox allow-scripts allow-modals",
    "x-content-type-options": "nosniff",
}

_STATE_CLASS = {
    "overdue": "cra-overdue",
    "running": "cra-running",
    "filed": "cra-filed",
    "not-started": "cra-muted",
    "awaiting-fix": "cra-muted",
    "closed": "cra-filed",
    "tracking": "cra-muted",
}
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # how the ledger stores times
_LABEL_COLUMNS = {"state", "early_warning_state", "notification_state", "final_state"}


def policy(datasette: Any) -> sql.GatePolicy:
    config = datasette.plugin_config(PLUGIN) or {}
    return sql.GatePolicy.parse(config.get("fail_on"), config.get("fail_on_vuln"))


@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    if database == DATABASE:
        sql.register(conn, policy(datasette))


def _ledger_dir(datasette: Any) -> Path:
    return Path(datasette.get_database(DATABASE).path).resolve().parent


def report_folder(datasette: Any, report_path: str) -> Path | None:
    """The folder of a scan's report.json (relative paths: beside the ledger)."""
    if not report_path:
        return None
    path = Path(report_path)
    if not path.is_absolute():
        path = _ledger_dir(datasette) / path
    return path.parent


def _scan_links(datasette: Any, scan_id: int, report_path: str, names: tuple[str, ...]) -> Markup:
    folder = report_folder(datasette, report_path)
    links = []
    for name in names:
        if folder is not None and (folder / name).is_file():
            url = _url(datasette, f"/-/cra-fw/scans/{scan_id}/{name}")
            links.append(f'<a class="cra-file" href="{html.escape(url)}">{html.escape(name)}</a>')
    return Markup(" ".join(links) or '<span class="cra-muted">none stored</span>')


async def _report_path(datasette: Any, scan_id: int) -> str | None:
    rows = await datasette.get_database(DATABASE).execute(
        "SELECT report_path FROM scans WHERE id = ?", [scan_id]
    )
    row = rows.first()
    return row[0] if row else None


def _url(datasette: Any, path: str) -> str:
    # a plain str: Datasette's URL strings look up dir(str) on every method call, which costs
    # seconds over the thousands of cells of a large view
    return str(datasette.urls.path(path))


def _link(datasette: Any, path: str, text: object, css: str = "") -> Markup:
    url = _url(datasette, path)
    cls = f' class="{css}"' if css else ""
    return Markup(f'<a href="{html.escape(url)}"{cls}>{html.escape(str(text))}</a>')


def _badge(value: str, css: str) -> Markup:
    return Markup(f'<span class="cra-badge {css}">{html.escape(value)}</span>')


def _has(row: Any, column: str) -> bool:
    """The row has a non-null ``column`` (rows of canned queries are sqlite3.Row)."""
    try:
        return row[column] is not None
    except (IndexError, KeyError, TypeError):
        return False


def _state(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    if not isinstance(value, str) or value not in _STATE_CLASS:
        return None
    # a case that is overdue marks its whole row (cra-fw.css)
    row_mark = " cra-case-overdue" if column == "state" and value == "overdue" else ""
    return _badge(value, _STATE_CLASS[value] + row_mark)


def _gate(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    if not isinstance(value, str):
        return None
    css = "cra-overdue" if value.startswith("fail") else "cra-filed" if value == "pass" else "cra-muted"
    return _badge(value, css)


def _reports(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    if not isinstance(value, int) or not _has(row, "report_path"):
        return None
    return _scan_links(ds, value, row["report_path"], ("report.html", "evidence.zip"))


def _product(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    return (
        _link(ds, f"/{DATABASE}/products/{row['product_id']}", value)
        if value and _has(row, "product_id")
        else None
    )


def _latest(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    return (
        _link(ds, f"/{DATABASE}/releases/{row['release_id']}", value)
        if value and _has(row, "release_id")
        else None
    )


def _row_link(table: str) -> Callable[[Any, Any, str, Any], Markup | None]:
    def link(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
        return _link(ds, f"/{DATABASE}/{table}/{value}", value) if isinstance(value, int) else None

    return link


def _diff_from(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    if not value or not (_has(row, "product") and _has(row, "version")):
        return None
    query = urllib.parse.urlencode({"old": value, "new": f"{row['product']}@{row['version']}"})
    return _link(ds, f"/{DATABASE}/release_diff?{query}", f"diff from {value.split('@', 1)[1]}")


def _alarm_count(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    return _badge(str(value), "cra-overdue") if isinstance(value, int) and value > 0 else None


def _hours_left(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    return _badge(f"{value:g}", "cra-overdue") if isinstance(value, int | float) and value < 0 else None


def _months_left(value: Any, row: Any, column: str, ds: Any) -> Markup | None:
    if not isinstance(value, int):
        return None
    if value < 0:
        return _badge(f"{value} (ended)", "cra-overdue")
    return _badge(str(value), "cra-running") if value < 12 else None


# Columns of the views, by name (any SQL that names its columns the same way gets the same marks).
# A dict, not a chain of tests: Datasette calls this hook for every cell of a 1,000-row page.
_CELLS: dict[str, Callable[[Any, Any, str, Any], Markup | None]] = {
    **dict.fromkeys(_LABEL_COLUMNS, _state),
    "gate": _gate,
    "reports": _reports,
    "product": _product,
    "latest_release": _latest,
    "release_id": _row_link("releases"),
    "case_id": _row_link("cases"),
    "diff_from": _diff_from,
    "kev": _alarm_count,
    "overdue_cases": _alarm_count,
    "hours_left": _hours_left,
    **{f"{str(stage).replace('-', '_')}_hours_left": _hours_left for stage in STAGES},
    "months_left": _months_left,
}


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    if database != DATABASE:
        return None
    if table is not None:
        if table == "scans" and column == "report_path" and value:
            return _scan_links(datasette, row["id"], value, ("report.html", "evidence.zip"))
        return None
    handler = _CELLS.get(column)
    if handler is not None:
        return handler(value, row, column, datasette)
    if type(value) is str and len(value) == 20 and _ISO_UTC.fullmatch(value):
        return Markup(f'<time datetime="{value}" title="{value}">{value[:10]} {value[11:16]}</time>')
    return None


async def serve_scan_file(request: Any, datasette: Any) -> Any:
    """One stored file of a scan: report.html, evidence.zip or its signature."""
    scan_id, name = int(request.url_vars["scan_id"]), request.url_vars["name"]
    report_path = await _report_path(datasette, scan_id)
    if report_path is None:
        raise NotFound(f"no scan {scan_id} in the ledger")
    folder = report_folder(datasette, report_path)
    target = folder / name if folder is not None else None
    if target is None or not target.is_file():
        raise NotFound(f"scan {scan_id} has no stored {name} (looked in {folder})")
    headers = dict(REPORT_HEADERS) if name == "report.html" else {"x-content-type-options": "nosniff"}
    return AsgiFileDownload(
        target,
        filename=None if name == "report.html" else f"scan-{scan_id}-{name}",
        content_type=REPORT_FILES[name],
        headers=headers,
    )


@hookimpl
def register_routes(datasette: Any) -> Any:
    return [
        (r"^/-/cra-fw/scans/(?P<scan_id>\d+)/(?P<name>report\.html|evidence\.zip(\.sig)?)$", serve_scan_file)
    ]


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path("/-/cra-fw/static/cra-fw.css")]


@hookimpl
def extra_template_vars(template: str, datasette: Any) -> dict[str, Any]:
    if template != "index.html":
        return {}
    queries = datasette.metadata("queries", database=DATABASE) or {}
    views = [
        {
            "title": q["title"],
            "description_html": Markup(q.get("description_html", "")),
            "url": datasette.urls.path(f"/{DATABASE}/{name}"),
        }
        for name, q in queries.items()
    ]
    docs = datasette.metadata("tables", database=DATABASE) or {}
    tables = [
        {"name": name, "title": doc["title"], "description": doc.get("description", "")}
        for name, doc in docs.items()
        if not doc.get("hidden")
    ]
    return {
        "cra_views": views,
        "cra_tables": tables,
        "cra_dashboard_url": datasette.urls.path(f"/-/dashboards/{SLUG}"),
        "cra_ledger_path": datasette.get_database(DATABASE).path,
    }
