"""The Datasette plugin `cra-fw serve` registers: SQL functions, cell rendering, report links.

Only the database named :data:`cra_fw.serve.metadata.DATABASE` is touched; the hooks
return None for anything else, so Datasette's own rendering applies there.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import AsgiFileDownload, NotFound
from markupsafe import Markup

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
            url = datasette.urls.path(f"/-/cra-fw/scans/{scan_id}/{name}")
            links.append(f'<a class="cra-file" href="{html.escape(url)}">{html.escape(name)}</a>')
    return Markup(" ".join(links) or '<span class="cra-muted">none stored</span>')


async def _report_path(datasette: Any, scan_id: int) -> str | None:
    rows = await datasette.get_database(DATABASE).execute(
        "SELECT report_path FROM scans WHERE id = ?", [scan_id]
    )
    row = rows.first()
    return row[0] if row else None


def _link(datasette: Any, path: str, text: object, css: str = "") -> Markup:
    url = datasette.urls.path(path)
    cls = f' class="{css}"' if css else ""
    return Markup(f'<a href="{html.escape(url)}"{cls}>{html.escape(str(text))}</a>')


def _badge(value: str, css: str) -> Markup:
    return Markup(f'<span class="cra-badge {css}">{html.escape(value)}</span>')


def _keys(row: Any) -> set[str]:
    try:
        return set(row.keys())
    except AttributeError:
        return set()


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any) -> Any:
    if database != DATABASE:
        return None
    keys = _keys(row)
    if table == "scans" and column == "report_path" and value:
        return _scan_links(datasette, row["id"], value, tuple(REPORT_FILES)[:2])
    if table is not None:
        return None
    # --- the canned views (and any SQL that names its columns the same way)
    if column in ("report_html", "evidence_pack") and value is not None:
        name = "report.html" if column == "report_html" else "evidence.zip"

        async def scan_link() -> Markup:
            return _scan_links(
                datasette, int(value), await _report_path(datasette, int(value)) or "", (name,)
            )

        return scan_link()
    if column in _LABEL_COLUMNS and isinstance(value, str) and value in _STATE_CLASS:
        # a case that is overdue marks its whole row (cra-fw.css)
        row_mark = " cra-case-overdue" if column == "state" and value == "overdue" else ""
        return _badge(value, _STATE_CLASS[value] + row_mark)
    if column == "gate" and isinstance(value, str):
        css = "cra-overdue" if value.startswith("fail") else "cra-filed" if value == "pass" else "cra-muted"
        return _badge(value, css)
    if column == "product" and "product_id" in keys and row["product_id"] is not None and value:
        return _link(datasette, f"/{DATABASE}/products/{row['product_id']}", value)
    if column == "latest_release" and "release_id" in keys and row["release_id"] is not None:
        return _link(datasette, f"/{DATABASE}/releases/{row['release_id']}", value)
    if column == "release_id" and isinstance(value, int):
        return _link(datasette, f"/{DATABASE}/releases/{value}", value)
    if column == "case_id" and value is not None:
        return _link(datasette, f"/{DATABASE}/cases/{value}", value)
    if column == "diff_from" and value and {"product", "version"} <= keys:
        query = urllib.parse.urlencode({"old": value, "new": f"{row['product']}@{row['version']}"})
        return _link(datasette, f"/{DATABASE}/release_diff?{query}", f"diff from {value.split('@', 1)[1]}")
    if isinstance(value, str) and _ISO_UTC.fullmatch(value):
        return Markup(f'<time datetime="{value}">{value[:10]} {value[11:16]}</time>')
    if column in ("kev", "overdue_cases") and isinstance(value, int) and value > 0:
        return _badge(str(value), "cra-overdue")
    if column.endswith("hours_left") and isinstance(value, int | float) and value < 0:
        return _badge(f"{value:g}", "cra-overdue")
    if column == "months_left" and isinstance(value, int):
        if value < 0:
            return _badge(f"{value} (ended)", "cra-overdue")
        if value < 12:
            return _badge(str(value), "cra-running")
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
