"""`cra-fw serve` on the fixture ledger (tests/serve/conftest.py), driven by headless Chromium.

One server and one browser for the module.  Screenshots of the main pages go to
``$CRA_FW_ARTIFACTS/serve`` (default ``<tmp>/cra-fw-artifacts/serve``); the one in
docs/serve.md is the portfolio shot from here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.report._chromium import Chromium, chromium_path
from tests.serve.conftest import NOW, Ledger, get_json, private_copy, start_server

pytestmark = [
    pytest.mark.slow,  # the fixture ledger records seven real scans
    pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (Debian `chromium`)"),
]

ARTIFACTS = (
    Path(os.environ.get("CRA_FW_ARTIFACTS", Path(tempfile.gettempdir()) / "cra-fw-artifacts")) / "serve"
)
VIEWS = (
    "portfolio",
    "article14_clocks",
    "support_review",
    "release_list",
    "release_diff",
    "component_search",
)
ROWS_JS = """[...document.querySelectorAll('table.rows-and-columns tbody tr')].map(tr =>
  Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.className.split(' ')[0].slice(4),
     td.innerText.trim()])))"""


@pytest.fixture(scope="module")
def served(built_ledger: Ledger):
    server = start_server(built_ledger)
    yield server
    log = server.stop()
    # refused writes and bad SQL are answered on the page, not dumped on the terminal
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def browser():
    with Chromium(loopback=True) as chromium:
        yield chromium


def _clean(load, base: str) -> None:
    """The page answered 200, logged no error, threw nothing and asked nothing of the internet."""
    assert load.statuses.get(load.url) == 200, (load.url, load.statuses)
    assert load.console_errors == [], (load.url, load.console_errors)
    assert load.exceptions == [], (load.url, load.exceptions)
    errors = [e for e in load.log if e.get("level") == "error"]
    assert errors == [], (load.url, errors)
    outside = [u for u in load.requests if not u.startswith((base, "data:"))]
    assert outside == [], (load.url, outside)
    assert all(status < 400 for status in load.statuses.values()), (load.url, load.statuses)


def _view_json(base: str, view: str, **params: str) -> list[dict]:
    query = urllib.parse.urlencode({**params, "_shape": "array"})
    return get_json(f"{base}ledger/{view}.json?{query}")  # type: ignore[return-value]


def test_home_links_every_view_and_every_view_loads_cleanly(served, browser):
    base = served.url
    load = browser.load(base)
    _clean(load, base)
    links = browser.evaluate("[...document.querySelectorAll('.cra-views a')].map(a => a.href)")
    assert links == [f"{base}ledger/{view}" for view in VIEWS] + [f"{base}-/dashboards/overview"]
    browser.screenshot(ARTIFACTS / "home.png", max_height=1400)

    pages = {
        "portfolio": "ledger/portfolio",
        "article14_clocks": "ledger/article14_clocks",
        "support_review": "ledger/support_review",
        "release_list": "ledger/release_list",
        "release_diff": "ledger/release_diff?old=router%401.0&new=router%401.1",
        "component_search": "ledger/component_search?component=glibc&versions=%3E%3D2.34%2C+%3C2.39",
        "database": "ledger",
        "cases table": "ledger/cases",
        "releases table": "ledger/releases",
        "release row": "ledger/releases/6",
        "scans table": "ledger/scans",
        "dashboards": "-/dashboards",
    }
    for name, path in pages.items():
        load = browser.load(base + path)
        _clean(load, base)
        assert browser.evaluate("document.querySelector('h1').innerText"), name
        if name in VIEWS:
            assert (
                browser.evaluate("document.querySelectorAll('table.rows-and-columns tbody tr').length") > 0
            ), name
            browser.screenshot(ARTIFACTS / f"{name}.png", max_height=1400)

    # the dashboard draws its charts after load, from the ledger's JSON
    load = browser.load(base + "-/dashboards/overview")
    drawn = browser.wait_for(
        "document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 4 && "
        "[...document.querySelectorAll('.dashboard-card-chart')].every(c => c.innerText.trim() || c.querySelector('svg, canvas'))",
        timeout=30,
    )
    assert drawn, "the dashboard's charts were not drawn"
    browser.drain(0.5)
    browser.collect(load)
    _clean(load, base)
    metrics = browser.evaluate(
        "Object.fromEntries(['products','on-market','open-cases','overdue-cases'].map(k => "
        "[k, document.querySelector('#chart-' + k).innerText.trim()]))"
    )
    # ground truth (conftest): 5 products; on the market: every release but the withdrawn router@1.0;
    # open cases: router, gateway, camera, sensor; overdue: router
    assert metrics == {"products": "5", "on-market": "6", "open-cases": "4", "overdue-cases": "1"}
    browser.screenshot(ARTIFACTS / "dashboard.png", max_height=1600)


def test_overdue_case_first_and_marked_in_red(served, built_ledger: Ledger, browser):
    base = served.url
    _clean(browser.load(base + "ledger/article14_clocks"), base)
    rows = browser.evaluate(ROWS_JS)
    # ground truth (conftest): router is the only overdue case, by 51 hours
    assert rows[0]["product"] == "router" and rows[0]["state"] == "overdue" and rows[0]["hours_left"] == "-51"
    marked = browser.evaluate(
        "[...document.querySelectorAll('table.rows-and-columns tbody tr')].map(tr => "
        "[getComputedStyle(tr.querySelector('td')).backgroundColor, "
        "getComputedStyle(tr.querySelector('td.col-state .cra-badge')).backgroundColor])"
    )
    assert marked[0] == ["rgb(253, 236, 234)", "rgb(198, 40, 40)"]  # the row tinted, the state red
    assert all(bg != "rgb(253, 236, 234)" for bg, _state in marked[1:])
    assert [r["state"] for r in rows[1:]] == ["running"] * 3

    # the same cases, order and clocks as `cra-fw cases --open --json` at the same "now"
    cli_cases = built_ledger.json("cases", "--open")
    served_rows = _view_json(base, "article14_clocks")
    assert [r["case_id"] for r in served_rows] == [c["id"] for c in cli_cases]
    assert [r["product"] for r in served_rows] == ["router", "camera", "gateway", "sensor"]
    for row, case in zip(served_rows, cli_cases, strict=True):
        assert row["stage"] == case["stage"]
        for clock in case["clocks"]:
            col = clock["stage"].replace("-", "_")
            assert (row[f"{col}_due"] or "", row[f"{col}_state"], row[f"{col}_filed"] or "") == (
                clock["due"],
                clock["state"],
                clock["filed_at"],
            )
            left = clock["seconds_left"]
            assert row[f"{col}_hours_left"] == (None if left is None else round(left / 3600, 1))
    # hand-computed: camera aware 11-20 04:05, early warning due 11-21 04:05 (16.1 h left);
    # gateway's early warning was filed late, its notification is due 11-21 12:05
    camera = next(r for r in served_rows if r["product"] == "camera")
    assert (camera["early_warning_due"], camera["early_warning_hours_left"]) == ("2026-11-21T04:05:00Z", 16.1)
    gateway = next(r for r in served_rows if r["product"] == "gateway")
    assert gateway["early_warning_filed"] == "2026-11-19T15:00:00Z"
    assert gateway["notification_due"] == "2026-11-21T12:05:00Z"
    sensor = next(r for r in served_rows if r["product"] == "sensor")
    assert (sensor["final_due"], sensor["final_hours_left"]) == ("2026-11-24T12:00:00Z", 96.0)


def test_portfolio_numbers_equal_the_cli_listings(served, built_ledger: Ledger, browser):
    base = served.url
    _clean(browser.load(base + "ledger/portfolio"), base)
    shown = {r["product"]: r for r in browser.evaluate(ROWS_JS)}
    browser.screenshot(ARTIFACTS / "portfolio.png", max_height=900)
    served_rows = {r["product"]: r for r in _view_json(base, "portfolio")}

    products = built_ledger.json("product", "list")
    releases = built_ledger.json("release", "list")
    support = built_ledger.json("support", "status")
    open_cases = built_ledger.json("cases", "--open")
    assert sorted(served_rows) == sorted(shown) == sorted(p["name"] for p in products)
    ends = {p["product"]: p["end"] for p in support["products"]}
    for product in products:
        name = product["name"]
        row = served_rows[name]
        own = [r for r in releases if r["product"] == name]  # ordered by release date, then id
        latest = own[-1]
        cases = [c for c in open_cases if c["product"] == name]
        overdue = [c for c in cases if any(k["state"] == "overdue" for k in c["clocks"])]
        assert (row["manufacturer"], row["releases"], row["latest_release"]) == (
            product["manufacturer"],
            len(own),
            latest["version"],
        )
        assert (row["open_vulns"], row["kev"]) == (latest["vulnerabilities"], latest["kev"])
        assert (
            row["critical"] + row["high"] + row["medium"] + row["low"] + row["unscored"] == row["open_vulns"]
        )
        assert (row["support_end"] or "") == ends[name]
        assert (row["open_cases"], row["overdue_cases"]) == (len(cases), len(overdue))
        # what the browser shows is what the JSON says
        for column in ("latest_release", "open_vulns", "kev", "open_cases", "overdue_cases"):
            assert shown[name][column] == str(row[column]), (name, column)
    # ground truth: CVE-2023-4911 (high, KEV-listed) is in every latest release but sensor@4.1's
    # (no glibc), so the gate (--fail-on-vuln high) fails on them; sensor's support is undeclared
    assert {n: r["kev"] for n, r in served_rows.items()} == {
        "camera": 1, "gateway": 1, "hub": 1, "router": 1, "sensor": 0,
    }  # fmt: skip
    assert all(r["gate"] == "fail" for n, r in served_rows.items() if n != "sensor")
    assert served_rows["sensor"]["latest_release"] == "4.1" and served_rows["sensor"]["support_end"] is None
    # months left at 2026-11-20: router to 2031-12 -> 61, camera to 2027-06 -> 7, hub ended 2026-09
    assert {n: served_rows[n]["months_left"] for n in ("router", "camera", "hub")} == {
        "router": 61, "camera": 7, "hub": -2,
    }  # fmt: skip


def _run_sql_in_the_box(browser: Chromium, base: str, sql: str) -> str:
    """Type SQL into the database page's editor and press Run SQL, as a user does; the page's text."""
    _clean(browser.load(base + "ledger"), base)
    browser.evaluate(f"document.querySelector('.CodeMirror').CodeMirror.setValue({json.dumps(sql)})")
    browser.events.clear()
    browser.evaluate("document.querySelector('form.sql input[type=submit]').click()")
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("location.search").startswith("?sql=")
    return browser.evaluate("document.querySelector('section.content').innerText")


def test_a_write_through_the_sql_box_is_refused(served, built_ledger: Ledger, browser):
    base = served.url
    before = hashlib.sha256(built_ledger.db.read_bytes()).hexdigest()
    products = built_ledger.json("product", "list")
    # Datasette's own check stops plain writes before SQLite sees them ...
    assert "Statement must be a SELECT" in _run_sql_in_the_box(
        browser, base, "UPDATE products SET name = 'x'"
    )
    assert "Statement must be a SELECT" in _run_sql_in_the_box(browser, base, "ATTACH DATABASE 'x.db' AS x")
    # ... a write dressed as a WITH query gets past that check, and SQLite refuses it: read-only file
    refused = _run_sql_in_the_box(browser, base, "WITH doomed AS (SELECT 1) DELETE FROM products")
    assert "attempt to write a readonly database" in refused
    # a query that reads still runs
    shown = _run_sql_in_the_box(browser, base, "SELECT name FROM products ORDER BY name")
    assert "error" not in shown.lower() and "Statement must" not in shown
    assert browser.evaluate(ROWS_JS) == [
        {"name": p["name"]} for p in sorted(products, key=lambda p: p["name"])
    ]
    assert built_ledger.json("product", "list") == products
    assert hashlib.sha256(built_ledger.db.read_bytes()).hexdigest() == before


def test_each_release_links_its_report_and_evidence_pack(served, browser):
    base = served.url
    _clean(browser.load(base + "ledger/release_list"), base)
    links = browser.evaluate(
        "[...document.querySelectorAll('table.rows-and-columns tbody tr')].map(tr => ["
        "tr.querySelector('td.col-product').innerText + '@' + tr.querySelector('td.col-version').innerText, "
        "[...tr.querySelectorAll('a.cra-file')].map(a => a.innerText)])"
    )
    # every release was recorded by `release add` (report.html written); only router@1.1 was packed
    assert dict(links) == {
        label: ["report.html", "evidence.zip"] if label == "router@1.1" else ["report.html"]
        for label in (
            "camera@2.0",
            "gateway@3.0",
            "hub@1.0",
            "router@1.1",
            "router@1.0",
            "sensor@4.1",
            "sensor@4.0",
        )
    }
    report = browser.evaluate(
        "[...document.querySelectorAll('tr')].find(tr => tr.innerText.includes('router') && "
        "tr.innerText.includes('1.1')).querySelector('a.cra-file').href"
    )
    load = browser.load(report)
    _clean(load, base)
    assert "sqfs-gzip-arm64.sqfs" in browser.evaluate("document.body.innerText")
    evidence = report.replace("report.html", "evidence.zip")
    with urllib.request.urlopen(evidence, timeout=30) as resp:
        body = resp.read()
        assert resp.headers["content-type"] == "application/zip" and body[:2] == b"PK"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "-/cra-fw/scans/9999/report.html", timeout=30)
    assert missing.value.code == 404


def test_release_diff_is_cra_fw_diff(served, built_ledger: Ledger):
    rows = _view_json(served.url, "release_diff", old="router@1.0", new="router@1.1")
    cli = json.loads(built_ledger.cli("diff", "router@1.0", "router@1.1", "--json"))

    def items(kind: str, change: str) -> set[str]:
        return {r["item"] for r in rows if (r["kind"], r["change"]) == (kind, change)}

    changed_old = {f"{c['name']}@{c['old_version']}" for c in cli["components_changed"]}
    changed_new = {f"{c['name']}@{c['new_version']}" for c in cli["components_changed"]}
    assert items("component", "added") == set(cli["components_added"]) | changed_new
    assert items("component", "removed") == set(cli["components_removed"]) | changed_old
    vulns = {
        f"{r['item'].removesuffix(' [KEV]')} {r['detail']}": r["change"]
        for r in rows
        if r["kind"] == "vulnerability"
    }
    assert vulns == {v: "fixed" for v in cli["vulnerabilities_fixed"]} | {
        v: "introduced" for v in cli["vulnerabilities_introduced"]
    }
    assert items("finding", "fixed") == set(cli["findings_fixed"])
    assert items("finding", "introduced") == set(cli["findings_introduced"])
    # ground truth (fixtures/images/ground-truth.json): the arm64 image adds lighttpd, drops json-c
    assert "lighttpd@1.4.69" in items("component", "added")
    assert "json-c@0.16" in items("component", "removed")


def test_component_search_answers_are_we_affected(served, built_ledger: Ledger):
    truth = json.loads(
        (Path(__file__).resolve().parents[2] / "fixtures/images/ground-truth.json").read_text()
    )
    shipped = {i["file"]: {(c["name"], c["version"]) for c in i["components"]} for i in truth["images"]}
    from tests.serve.conftest import RELEASES

    def expected(name: str, accept) -> dict[str, set[str]]:  # noqa: ANN001
        out: dict[str, set[str]] = {}
        for product, version, image, _date, _at in RELEASES:
            if any(n == name and accept(v) for n, v in shipped[image]):
                out.setdefault(product, set()).add(version)
        return out

    def found(component: str, versions: str) -> dict[str, set[str]]:
        rows = _view_json(served.url, "component_search", component=component, versions=versions)
        return {r["product"]: set(r["release_versions"].split(", ")) for r in rows}

    # CVE-2023-4911: glibc 2.34 <= v < 2.39
    assert found("glibc", ">=2.34, <2.39") == expected("glibc", lambda v: v == "2.36")
    assert found("glibc", ">=2.34, <2.39") == {
        "hub": {"1.0"}, "sensor": {"4.0"}, "router": {"1.0", "1.1"}, "gateway": {"3.0"}, "camera": {"2.0"},
    }  # fmt: skip
    # CVE-2023-48795 in dropbear up to 2022.83: only the router ships dropbear
    assert found("dropbear", "<=2022.83") == {"router": {"1.0", "1.1"}}
    assert found("zlib", ">=1.3") == {}  # the images carry 1.2.13
    assert found("GLIBC", "2.36") == found("glibc", "")  # names ignore case; a bare version is '='
    rows = _view_json(served.url, "component_search", component="glibc", versions="")
    router = next(r for r in rows if r["product"] == "router")
    assert (router["release_versions"], router["on_market"]) == ("1.1, 1.0", 1)  # 1.0 was withdrawn


def test_support_view_flags_article_13_8(served):
    rows = {r["product"]: r for r in _view_json(served.url, "support_review")}
    # ground truth (conftest): router 2026-11..2031-12 (62 months, 61 left) is fine and not listed
    assert set(rows) == {"camera", "gateway", "hub", "sensor"}
    assert (rows["camera"]["months"], rows["camera"]["length"], rows["camera"]["ending"]) == (
        8,
        "under 5 years, no justification",
        "ending soon",
    )
    assert (rows["gateway"]["months"], rows["gateway"]["length"], rows["gateway"]["ending"]) == (
        36,
        "under 5 years, justified",
        "",
    )
    assert (rows["hub"]["ending"], rows["hub"]["releases_on_market"]) == ("ended", 1)
    assert rows["sensor"]["ending"] == "not declared"
    # a wider horizon brings gateway (35 months left) in as ending soon; router stays out at 36
    wider = {r["product"]: r for r in _view_json(served.url, "support_review", within_months="36")}
    assert wider["gateway"]["ending"] == "ending soon" and "router" not in wider


def test_serve_shows_what_cra_fw_writes_while_it_runs(built_ledger: Ledger, tmp_path: Path):
    """Read-only is not immutable: commands that record something show up on the next page."""
    ledger = private_copy(built_ledger, tmp_path / "live")
    server = start_server(ledger)
    try:
        assert "drone" not in {r["product"] for r in _view_json(server.url, "portfolio")}
        ledger.cli("product", "add", "drone", "--manufacturer", "Example GmbH")
        assert "drone" in {r["product"] for r in _view_json(server.url, "portfolio")}
        camera = next(r for r in _view_json(server.url, "article14_clocks") if r["product"] == "camera")
        ledger.cli("case", "file", str(camera["case_id"]), "--stage", "early-warning", "--at", NOW)
        after = next(r for r in _view_json(server.url, "article14_clocks") if r["product"] == "camera")
        assert (after["early_warning_state"], after["early_warning_filed"], after["stage"]) == (
            "filed",
            NOW,
            "notification",
        )
    finally:
        server.stop()
