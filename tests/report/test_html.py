"""report.html: self-contained, hostile-input safe, readable; rendered in headless Chromium.

The browser tests load the page through the DevTools protocol, record every
network request and console/CSP message, check the checklist, tables and charts
in the live DOM, and keep a screenshot per report under
``$CRA_FW_ARTIFACTS`` (default: ``<tmp>/cra-fw-artifacts/html``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import tempfile
from pathlib import Path

import pytest

from cra_fw.records import Severity
from cra_fw.report import annex1, html
from tests.evidence.sample import HOSTILE, sample_report
from tests.report._chromium import Chromium, chromium_path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "images"
ARTIFACTS = (
    Path(os.environ.get("CRA_FW_ARTIFACTS", Path(tempfile.gettempdir()) / "cra-fw-artifacts")) / "html"
)

needs_chromium = pytest.mark.skipif(
    chromium_path() is None, reason="chromium not installed (Debian `chromium`)"
)


# ---- the page as text -------------------------------------------------------------------------


def test_esc_neutralises_markup_controls_and_surrogates():
    assert html.esc('<a href="x">&</a>') == "&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;"
    assert html.esc("it's") == "it&#39;s"
    out = html.esc("a\x00b\x1b[31mc\udcffd\x7f")
    assert "\x00" not in out and "\x1b" not in out and "\x7f" not in out
    out.encode("utf-8")  # no lone surrogate left
    assert html.esc("x" * 50, limit=10).startswith("x" * 10 + "\u2026 [40 more")


def test_page_loads_nothing_from_outside():
    page = html.render(sample_report())
    attrs = re.findall(r"\b(src|href|action|xlink:href|srcset|poster|data)\s*=\s*\"([^\"]*)\"", page, re.I)
    assert attrs and all(value.startswith("#") for _name, value in attrs), attrs
    assert page.count("<script") == 1 and "<link" not in page and "<img" not in page
    assert "<iframe" not in page and "<base" not in page
    assert "@import" not in html.CSS and "url(" not in html.CSS
    # what the firmware said is there, as text
    assert html.esc(HOSTILE, 5000) in page


def test_csp_names_exactly_the_inline_style_and_script():
    page = html.render(sample_report())
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    for body in (style, script):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert ' style="' not in page  # inline style attributes would need 'unsafe-inline'


def test_absent_stages_say_not_assessed():
    report = sample_report(with_vulns=False, with_checks=False, with_bundles=False)
    page = html.render(report)
    assert "not assessed: the vulnerability stage did not run" in page
    assert "not assessed: the checks stage did not run" in page
    assert "not assessed: the bundle verification stage did not run" in page
    assert "not assessed: no support period known" in page
    assert 'id="vulnerabilities"' not in page and 'id="chart-hardening"' not in page


def test_write_is_one_file(tmp_path):
    path = html.write(sample_report(), tmp_path)
    assert path == tmp_path / "report.html" and sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_large_report_is_bounded():
    report = sample_report()
    base = report.findings[3]
    from cra_fw.records import Location

    report.findings = [
        dataclasses.replace(base, location=Location(("L0:raw",), f"/usr/bin/p{i}"), evidence="E" * 5000)
        for i in range(html.MAX_FINDING_ROWS + 1000)
    ]
    page = html.render(report)
    assert page.count('<tr data-sev="low"') == html.MAX_FINDING_ROWS
    assert "1000 more findings are in report.json" in page
    assert len(page.encode()) < 5 * 1024 * 1024


# ---- the page in a browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        pytest.skip("chromium not installed (Debian `chromium`)")
    pytest.importorskip("websocket", reason="websocket-client not installed (pip install -e '.[test]')")
    with Chromium() as b:
        yield b


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def assert_no_network(load) -> None:
    assert load.requests == [load.url], f"the page made requests: {load.requests}"
    security = [e for e in load.log if e.get("source") == "security" or e.get("level") == "error"]
    assert security == [], security
    assert load.exceptions == [] and load.dialogs == []


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 600 and len(data) > 20_000


@needs_chromium
def test_network_detector_catches_a_request(browser, tmp_path):
    """Control: the same harness sees a page that does try to load something."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/leak.png"></body></html>')
    load = browser.load(page)
    assert "http://127.0.0.1:9/leak.png" in load.requests


@needs_chromium
def test_sample_report_in_chromium(browser, tmp_path):
    report = sample_report()
    load = browser.load(html.write(report, tmp_path))
    assert_no_network(load)
    ev = browser.evaluate
    # checklist: one row per point, statuses as assessed
    expected = {r.point.key: r.status for r in annex1.assess(report).results}
    rows = ev(
        "Array.from(document.querySelectorAll('#checklist tbody tr')).map("
        "r => [r.dataset.point, r.dataset.status])"
    )
    assert dict(rows) == expected and len(rows) == len(annex1.POINTS)
    assert expected["I.2.a"] == "fail" and expected["I.2.k"] == "fail" and expected["II.1"] == "pass"
    assert expected["I.2.c"] == "not assessed" and expected["Art.13(8)"] == "not assessed"
    # charts
    assert ev("document.querySelectorAll('#chart-severity rect.bar').length") == 5
    assert ev("document.querySelectorAll('#chart-checklist rect.bar').length") == 3
    assert ev("document.querySelectorAll('#chart-hardening rect.bar').length") == 10  # 2 arches x 5
    # tables
    counts = ev(
        "Object.fromEntries(['findings','vulnerabilities','components','services','credentials',"
        "'hardening'].map(id => [id, document.querySelectorAll('#' + id + ' tbody tr').length]))"
    )
    assert counts == {
        "findings": len(report.findings),
        "vulnerabilities": 3,
        "components": 3,
        "services": 2,
        "credentials": 2,
        "hardening": 2,
    }
    # KEV first, then by severity; the triaged match last
    order = ev(
        "Array.from(document.querySelectorAll('#vulnerabilities tbody tr')).map("
        "r => r.cells[1].querySelector('b').textContent)"
    )
    assert order == ["CVE-2021-3449", "CVE-2021-3711", "CVE-2021-23840"]
    # hostile strings are text, never markup
    assert ev("document.querySelectorAll('script').length") == 1
    assert (
        ev("document.querySelectorAll('img,iframe,base,object,embed,link,meta[http-equiv=refresh]').length")
        == 0
    )
    assert ev("document.body.textContent.includes('<script>alert(\"x\")</script>')") is True
    assert_png(browser.screenshot(artifact("sample-report")))


@needs_chromium
def test_tables_sort_and_filter(browser, tmp_path):
    browser.load(html.write(sample_report(), tmp_path))
    ev = browser.evaluate
    rules = "Array.from(document.querySelectorAll('#findings tbody tr')).map(r => r.cells[2].textContent)"
    ev("document.querySelectorAll('#findings th')[2].click()")
    ascending = ev(rules)
    assert ascending == sorted(ascending)
    ev("document.querySelectorAll('#findings th')[2].click()")
    assert ev(rules) == sorted(ascending, reverse=True)
    shown = (
        "Array.from(document.querySelectorAll('#findings tbody tr')).filter(r => "
        "getComputedStyle(r).display !== 'none').length"
    )
    ev(
        "var s = document.querySelector('select.sevfilter[data-for=findings]'); s.value = 'high';"
        "s.dispatchEvent(new Event('input'))"
    )
    high = sum(1 for f in sample_report().findings if f.severity == Severity.HIGH)
    assert ev(shown) == high == 2
    ev(
        "var s = document.querySelector('select.sevfilter[data-for=findings]'); s.value = '';"
        "s.dispatchEvent(new Event('input'));"
        "var i = document.querySelector('input.filter[data-for=findings]'); i.value = 'telnetd';"
        "i.dispatchEvent(new Event('input'))"
    )
    assert ev(shown) == 1
    assert ev("document.querySelector('.count[data-for=findings]').textContent") == "1 shown"


@needs_chromium
def test_print_stylesheet(browser, tmp_path):
    browser.load(html.write(sample_report(), tmp_path))
    browser.call("Emulation.setEmulatedMedia", session=True, media="print")
    try:
        assert browser.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
        assert browser.evaluate("getComputedStyle(document.querySelector('.tools')).display") == "none"
        pdf = base64.b64decode(browser.call("Page.printToPDF", session=True)["data"])
        assert pdf[:5] == b"%PDF-" and len(pdf) > 10_000
    finally:
        browser.call("Emulation.setEmulatedMedia", session=True, media="")


@needs_chromium
def test_not_assessed_report_in_chromium(browser, tmp_path):
    report = sample_report(with_vulns=False, with_checks=False, with_bundles=False)
    load = browser.load(html.write(report, tmp_path))
    assert_no_network(load)
    statuses = dict(
        browser.evaluate(
            "Array.from(document.querySelectorAll('#checklist tbody tr')).map("
            "r => [r.dataset.point, r.dataset.status])"
        )
    )
    # findings still fail their points; the points only the missing stages decide are not assessed
    assert statuses["I.2.b"] == "fail" and statuses["I.2.a"] == "not assessed"
    assert statuses["II.2"] == "not assessed" and statuses["I.2.c"] == "not assessed"


def _fixture_images() -> list[Path]:
    if not FIXTURES.is_dir():
        return []
    return sorted(p for p in FIXTURES.iterdir() if p.is_file() and p.suffix != ".json")


def _largest() -> list[Path]:
    images = _fixture_images()
    return [max(images, key=lambda p: p.stat().st_size)] if images else []


def _render_fixture(browser, image: Path, tmp_path: Path) -> None:
    from cra_fw.context import ScanOptions
    from cra_fw.pipeline import scan

    outdir = tmp_path / image.name
    report = scan(image, outdir, ScanOptions(progress=False, workers=1))
    page = outdir / "report.html"
    if not page.exists():  # the pipeline may not call the writer yet
        html.write(report, outdir)
    load = browser.load(page)
    assert_no_network(load)
    ev = browser.evaluate
    assert ev("document.querySelectorAll('#checklist tbody tr').length") == len(annex1.POINTS)
    assert ev("document.querySelectorAll('#chart-severity rect.bar').length") == 5
    assert ev("document.querySelector('#image td.mono').textContent") == report.image.sha256
    assert ev("document.querySelectorAll('#layers li').length") == min(
        len(report.layers), html.MAX_LAYER_ROWS
    )
    assert ev("document.querySelectorAll('#findings tbody tr[data-sev]').length") == min(
        len(report.findings), html.MAX_FINDING_ROWS
    )
    if report.hardening:
        assert ev("document.querySelectorAll('#chart-hardening rect.bar').length") > 0
    assert_png(browser.screenshot(artifact(f"fixture-{image.name}")))


@needs_chromium
@pytest.mark.parametrize("image", _largest(), ids=lambda p: p.name)
def test_largest_fixture_in_chromium(browser, image, tmp_path):
    _render_fixture(browser, image, tmp_path)


@needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("image", [p for p in _fixture_images() if p not in _largest()], ids=lambda p: p.name)
def test_fixture_in_chromium(browser, image, tmp_path):
    _render_fixture(browser, image, tmp_path)


def test_hardening_table_shows_the_checks_summary():
    """The page shows the summary the checks stage made (report.hardening_summary), not its own count."""
    import re as _re

    report = sample_report()
    mips = report.hardening_summary[1]
    assert (mips.arch, mips.total, mips.executables, mips.relro_partial) == ("mips", 3, 2, 2)
    page = html.render(report)
    table = page[page.index('<table id="hardening"') :]
    table = table[table.index("<tbody>") : table.index("</table>")]
    rows = _re.findall(r"<tr>(.*?)</tr>", table)
    cells = [_re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert [c[:4] for c in cells] == [["arm/32l", "2", "1", "0"], ["mips/32l", "3", "2", "0"]]
    assert cells[1][7] == "2 (67%)"  # partial RELRO of 3 files
    # a changed summary changes the page: nothing is recomputed from the per-file verdicts
    report.hardening_summary = [dataclasses.replace(mips, relro_partial=1)]
    page = html.render(report)
    assert "1 (33%)" in page and "arm/32l" not in page


@needs_chromium
def test_update_signature_verdicts_in_chromium(browser, tmp_path):
    from cra_fw.bundles.interface import BundleVerdict, Verdict

    report = sample_report()
    report.bundles = [
        BundleVerdict(
            "/boot/fit.itb",
            "fit",
            Verdict.VALID,
            signer="CN=Vendor",
            key_fingerprint="sha256:ab12",
            algorithms=("sha256", "rsa2048"),
            covered=("kernel-1", "fdt-1"),
        ),
        BundleVerdict(
            "/tmp/" + HOSTILE,
            "swupdate",
            Verdict.PARTIALLY_SIGNED,
            reason="rootfs not covered",
            uncovered=("rootfs.ext4",),
        ),
    ]
    load = browser.load(html.write(report, tmp_path))
    assert_no_network(load)
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#bundles tbody tr')).map("
        "r => [r.dataset.verdict, r.cells[2].querySelector('.st').className])"
    )
    assert rows == [["valid", "st st-pass"], ["partially_signed", "st st-fail"]]
    statuses = dict(
        browser.evaluate(
            "Array.from(document.querySelectorAll('#checklist tbody tr')).map("
            "r => [r.dataset.point, r.dataset.status])"
        )
    )
    # a partially signed bundle fails the update points by its verdict alone
    assert statuses["I.2.c"] == statuses["I.2.f"] == statuses["II.7"] == "fail"
    assert browser.evaluate("document.querySelectorAll('img,iframe,base').length") == 0
    # only valid bundles (or unverifiable ones, no trust anchor given): assessed and pass
    report.bundles = [
        report.bundles[0],
        BundleVerdict("/fw.raucb", "rauc", Verdict.UNTRUSTED_SIGNER, trusted=False),
    ]
    got = {r.point.key: r.status for r in annex1.assess(report).results}
    assert got["I.2.c"] == got["I.2.f"] == got["II.7"] == "pass"
    report.bundles[1] = dataclasses.replace(report.bundles[1], trusted=True)
    got = {r.point.key: r.status for r in annex1.assess(report).results}
    assert got["I.2.c"] == "fail"


def test_layer_tree_survives_loops_and_deep_chains():
    from cra_fw.records import Layer, LayerStatus

    report = sample_report()
    deep = [Layer("L0", None, "raw", 0, 10, "00", LayerStatus.EXTRACTED, 0)]
    deep += [
        Layer(f"L{i}", f"L{i - 1}", "gzip", 0, 10, "00", LayerStatus.EXTRACTED, i) for i in range(1, 500)
    ]
    deep += [
        Layer("X1", "X2", "loop", 0, 1, "00", LayerStatus.UNKNOWN, 1),
        Layer("X2", "X1", "loop", 0, 1, "00", LayerStatus.UNKNOWN, 1),
    ]
    report.layers = deep
    page = html.render(report)
    # every layer once: the chain is cut into nested lists of at most 101 levels, the loop is listed too
    assert page.count('<li data-layer="') == 502
    assert page.count('<li data-layer="X1"') == page.count('<li data-layer="L499"') == 1
