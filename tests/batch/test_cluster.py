"""`cra-fw batch` on a real Dask cluster: `dask scheduler` and two `dask worker` processes on localhost.

Ground truth is `cra-fw scan` of each image, run separately: the batch's per-image
outputs must be the same bytes apart from what scripts/report_snapshot.py calls
volatile (timestamps, timings, serial numbers, the output folder).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.conftest import snapshot_module
from tests.conftest import FIXTURE_IMAGES, run_cli

# small and quick, and between them: squashfs with libraries (components, no match in the fixture
# feeds), an initramfs whose busybox/openssl match the feeds (KEV included), and a raw image with an
# encrypted-looking gap (nothing identified)
IMAGES = ("sqfs-xz-armhf-libs.sqfs", "initramfs-armel.cpio.gz", "raw-encrypted-gap.bin")
HOSTILE_PRODUCT = '<img src=x onerror="alert(1)">Router'


def batch(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cli("batch", *args, timeout=timeout)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def portfolio_run(dask_cluster, feeds_db, tmp_path_factory):
    """One batch over a manifest (two releases of two products, one a duplicate image) and a loose file."""
    work = tmp_path_factory.mktemp("batch-run")
    images = work / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(FIXTURE_IMAGES / name, images / name)
    shutil.copy(FIXTURE_IMAGES / IMAGES[0], images / "same-bytes-again.sqfs")
    manifest = work / "releases.csv"
    quoted = '"' + HOSTILE_PRODUCT.replace('"', '""') + '"'  # CSV quoting
    manifest.write_text(
        "path,product,version,manufacturer,release_date\n"
        f"images/{IMAGES[0]},{quoted},1.0,ACME,2026-01-15\n"
        f"images/same-bytes-again.sqfs,Gateway,2.0,ACME,2026-02-01\n"
        f"images/{IMAGES[1]},Gateway,2.1,ACME,2026-03-01\n"
    )
    ledger = work / "ledger.db"
    shutil.copy(feeds_db, ledger)  # feeds and ledger in one file, as a user's default database is
    out = work / "out"
    proc = batch(
        str(manifest),
        str(images / IMAGES[2]),
        "-o",
        str(out),
        "--scheduler",
        dask_cluster.address,
        "--db",
        str(ledger),
        "--json",
    )
    return work, out, ledger, proc


def test_batch_outputs_equal_scan_of_each_image(portfolio_run, feeds_db, dask_cluster, tmp_path):
    work, out, ledger, proc = portfolio_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = events(proc.stdout)
    planned = next(e for e in lines if e["event"] == "planned")
    assert planned == {"event": "planned", "inputs": 4, "to_scan": 3, "resumed": 0, "duplicates": 1}
    cluster = next(e for e in lines if e["event"] == "cluster")
    assert cluster["scheduler"] == dask_cluster.address and cluster["workers"] == 2
    done = [e for e in lines if e["event"] == "image"]
    assert sorted(e["name"] for e in done) == sorted(IMAGES)
    workers = set(dask_cluster.alive_workers())
    assert {e["worker"] for e in done} <= workers  # ran on the external workers, not in the client
    assert all(e["status"] == "analysed" for e in done)

    snap = snapshot_module()
    for name in IMAGES:
        image = work / "images" / name
        digest = sha256(image)
        batch_dir = out / digest
        scan_dir = tmp_path / name
        scan = run_cli("scan", str(image), "-o", str(scan_dir), "-q", "--db", str(feeds_db))
        assert scan.returncode == 0, scan.stderr
        assert sorted(p.name for p in batch_dir.iterdir()) == sorted(p.name for p in scan_dir.iterdir())
        for filename in snap.OUTPUTS.values():
            if not (scan_dir / filename).exists():
                assert not (batch_dir / filename).exists()
                continue
            a = snap.normalise(json.loads((batch_dir / filename).read_text()), str(batch_dir))
            b = snap.normalise(json.loads((scan_dir / filename).read_text()), str(scan_dir))
            problems: list[str] = []
            snap._diff(b, a, "", problems)
            assert not problems, f"{name} {filename}: {problems}"
    # nothing half-written left behind, and the feed snapshot the nodes copied is gone
    assert not (out / ".partial").exists() and not (out / ".batch" / "feeds").exists()
    notes = [e["message"] for e in lines if e["event"] == "note"]
    assert any(n.startswith("feeds: scans read a snapshot of") for n in notes), notes


def test_ledger_rows_and_portfolio(portfolio_run):
    work, out, ledger, proc = portfolio_run
    releases = json.loads(run_cli("release", "list", "--json", "--db", str(ledger)).stdout)
    got = {(r["product"], r["version"], r["image_sha256"]) for r in releases}
    sqfs = sha256(work / "images" / IMAGES[0])
    initramfs = sha256(work / "images" / IMAGES[1])
    assert got == {(HOSTILE_PRODUCT, "1.0", sqfs), ("Gateway", "2.0", sqfs), ("Gateway", "2.1", initramfs)}
    gw21 = next(r for r in releases if r["version"] == "2.1")
    assert gw21["released_at"].startswith("2026-03-01")
    # the initramfs' glibc is known only from symbol versions (2.36 as a lower bound), so its
    # KEV-listed CVE-2023-4911 is a possible match: in the report, never counted as KEV (#17)
    report = json.loads((out / initramfs / "report.json").read_text())
    possible_kev = [v for v in report["vulnerabilities"] if v["kev"] and v["possible"]]
    assert [v["advisory_id"] for v in possible_kev] == ["CVE-2023-4911"]
    assert gw21["kev"] == 0

    summary = json.loads((out / "batch-summary.json").read_text())
    assert summary["counts"]["inputs"] == 4 and summary["counts"]["images"] == 3
    assert summary["counts"]["analysed"] == 3 and summary["failures"] == []
    rows = {(r["product"], r["version"], r["image"]): r for r in summary["releases"]}
    assert set(rows) == {
        (HOSTILE_PRODUCT, "1.0", IMAGES[0]),
        ("Gateway", "2.0", "same-bytes-again.sqfs"),
        ("Gateway", "2.1", IMAGES[1]),
        ("", "", IMAGES[2]),
    }
    report = json.loads((out / initramfs / "report.json").read_text())
    row = rows[("Gateway", "2.1", IMAGES[1])]
    assert row["components"] == len(report["components"])
    assert row["vulnerabilities"] == len(report["vulnerabilities"]) and row["kev"] == 0
    assert row["ledger"] == "recorded" and row["support_end"] == "not declared"
    assert rows[("", "", IMAGES[2])]["ledger"] == ""

    # a rerun resumes: nothing is scanned again, the ledger is not written twice
    again = batch(
        str(work / "releases.csv"),
        str(work / "images" / IMAGES[2]),
        "-o",
        str(out),
        "--db",
        str(ledger),
        "--json",
        "--workers",
        "1",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    planned = next(e for e in events(again.stdout) if e["event"] == "planned")
    assert planned["to_scan"] == 0 and planned["resumed"] == 3
    assert "cluster" not in {e["event"] for e in events(again.stdout)}  # no cluster needed
    summary = json.loads((out / "batch-summary.json").read_text())
    assert [r["ledger"] for r in summary["releases"]] == ["already recorded"] * 3 + [""]


def test_portfolio_html_in_chromium(portfolio_run, tmp_path):
    from tests.report._chromium import Chromium, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium not installed (Debian `chromium`)")
    _work, out, _ledger, _proc = portfolio_run
    page = (out / "portfolio.html").read_text()
    assert HOSTILE_PRODUCT not in page and "&lt;img src=x" in page
    with Chromium() as browser:
        load = browser.load(out / "portfolio.html")
        assert load.requests == [load.url], load.requests  # the page itself, nothing else
        assert not load.exceptions and not load.dialogs
        assert not [e for e in load.log if "Content Security Policy" in e.get("text", "")], load.log
        assert browser.evaluate("document.querySelectorAll('#releases tbody tr').length") == 4
        assert browser.evaluate("document.querySelectorAll('img').length") == 0
        # the sort script runs (allowed by its CSP hash): a second click sorts releases descending
        column = "Array.from(document.querySelectorAll('#releases tbody tr td:nth-child(2)')).map(c => c.textContent)"
        assert browser.evaluate(column) == ["1.0", "2.0", "2.1", "-"]  # manifest order
        browser.evaluate("document.querySelectorAll('#releases th')[1].click()")
        browser.evaluate("document.querySelectorAll('#releases th')[1].click()")
        assert browser.evaluate(column) == ["-", "2.1", "2.0", "1.0"]


def test_not_assessed_is_never_zero(dask_cluster, tmp_path):
    """Without a feed database the vulnerability counts are 'not assessed', in JSON, table and page."""
    image = tmp_path / IMAGES[1]
    shutil.copy(FIXTURE_IMAGES / IMAGES[1], image)
    out = tmp_path / "out"
    proc = batch(
        str(image), "-o", str(out), "--scheduler", dask_cluster.address, "--db", str(tmp_path / "none.db")
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "batch-summary.json").read_text())
    (row,) = summary["releases"]
    assert row["status"] == "analysed" and row["components"] == 2
    assert row["vulnerabilities"] is None and row["kev"] is None
    assert "vulnerability database" in row["vulns_not_assessed_reason"].lower()
    table_line = next(line for line in proc.stdout.splitlines() if line.startswith(IMAGES[1]))
    assert table_line.count("not assessed") == 2
    page = (out / "portfolio.html").read_text()
    assert page.count('class="na"') >= 2


def test_timeout_and_unreadable_are_failures_with_reasons(dask_cluster, tmp_path):
    slow = tmp_path / "flash.bin"
    shutil.copy(FIXTURE_IMAGES / "flash-armel-uimage-squashfs.bin", slow)
    out = tmp_path / "out"
    proc = batch(
        str(slow),
        "-o",
        str(out),
        "--scheduler",
        dask_cluster.address,
        "--timeout",
        "1",
        "--db",
        "/nonexistent",
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    summary = json.loads((out / "batch-summary.json").read_text())
    (failure,) = summary["failures"]
    assert failure["status"] == "failed" and "timed out after 1 s" in failure["reason"]
    (row,) = summary["releases"]
    assert row["components"] is None and row["vulnerabilities"] is None and row["findings"] is None
    assert not (out / sha256(slow)).exists()  # no half-written outputs under the content address
    assert f"FAILED: {slow}: timed out" in proc.stdout


def test_worker_killed_mid_batch_every_image_accounted_for(dask_cluster, feeds_db, tmp_path):
    """SIGKILL one of the two workers while it runs a scan: the task is retried on the other one."""
    images = tmp_path / "images"
    images.mkdir()
    names = []
    for i in range(4):  # distinct bytes: the same squashfs with a different trailer
        path = images / f"fw-{i}.bin"
        path.write_bytes((FIXTURE_IMAGES / "flash-armel-uimage-squashfs.bin").read_bytes() + bytes([i]) * 512)
        names.append(path.name)
    out = tmp_path / "out"
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cra_fw", "batch", str(images), "-o", str(out), "--scheduler",
         dask_cluster.address, "--db", str(feeds_db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    from distributed import Client

    victim = None
    with Client(dask_cluster.address, timeout="20s") as client:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            busy = {addr: keys for addr, keys in client.processing().items() if keys}
            for addr, keys in busy.items():
                if any(str(k).startswith("cra-fw-scan-") for k in keys):
                    victim = addr
                    break
            time.sleep(0.2)
        assert victim is not None, "no scan task ever ran"
        time.sleep(1.0)  # well inside the scan: the runner has forked the child
        pid = client.run(os.getpid, workers=[victim])[victim]
    import psutil

    orphans = psutil.Process(pid).children(recursive=True)  # its runner and the scan in progress
    assert orphans, "the worker had no runner"
    os.kill(pid, signal.SIGKILL)
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        dead = [w for w in dask_cluster.workers if w.pid == pid]
        for w in dead:
            w.wait(10)
            dask_cluster.workers.remove(w)
        dask_cluster.start_worker(f"w-replacement-{pid}")  # later tests keep two workers
    assert proc.returncode == 0, stderr[-3000:]
    done = [e for e in events(stdout) if e["event"] == "image"]
    assert sorted(e["name"] for e in done) == sorted(names)
    assert all(e["status"] == "analysed" for e in done)
    for name in names:
        assert (out / sha256(images / name) / "report.json").is_file()
    # the killed worker's runner and scan died with it
    _gone, alive = psutil.wait_procs(orphans, timeout=20)
    assert not alive, alive


def test_monitor_matches_in_the_pool_as_in_process(portfolio_run, dask_cluster, tmp_path):
    """`monitor --scheduler` stores the same changes as the in-process matching."""
    import sqlite3

    _work, _out, ledger, _proc = portfolio_run
    outputs = []
    for mode in ("pool", "here"):
        db = tmp_path / f"{mode}.db"
        shutil.copy(ledger, db)
        with sqlite3.connect(db) as conn:  # forget the stored matches: every one is "new" again
            conn.execute("DELETE FROM component_vulns")
        extra = ("--scheduler", dask_cluster.address) if mode == "pool" else ()
        proc = run_cli(
            "monitor", "--json", "--db", str(db), *extra, env={"CRA_FW_NOW": "2026-06-01T00:00:00Z"}
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        outputs.append((result["components_matched"], result["changes"]))
    assert outputs[0] == outputs[1]
    assert outputs[0][1] and {c["kind"] for c in outputs[0][1]} == {"new"}


def test_ctrl_c_stops_cleanly_and_keeps_finished_work(dask_cluster, feeds_db, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        (images / f"fw-{i}.bin").write_bytes((FIXTURE_IMAGES / IMAGES[1]).read_bytes() + bytes([i]) * 64)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cra_fw", "batch", str(images), "-o", str(out), "--scheduler",
         dask_cluster.address, "--db", str(feeds_db), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # wait for the first finished image, then press Ctrl-C
        seen.append(json.loads(line))
        if seen[-1]["event"] == "image":
            proc.send_signal(signal.SIGINT)
            break
    rest, stderr = proc.communicate(timeout=300)
    seen += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    assert proc.returncode == 130, stderr[-2000:]
    summary = json.loads((out / "batch-summary.json").read_text())
    assert summary["interrupted"] is True
    counts = summary["counts"]
    assert counts["analysed"] >= 1 and counts["analysed"] + counts["interrupted"] == 6
    assert counts["interrupted"] >= 1
    for row in summary["releases"]:
        digest = row["sha256"]
        if row["status"] == "analysed":
            assert (out / digest / "report.json").is_file()
        else:
            assert (
                row["status"] == "interrupted" and row["reason"] == "not scanned: the batch was interrupted"
            )
            assert not (out / digest).exists()
    # nothing of ours keeps running on the workers, and a rerun finishes the rest
    again = batch(
        str(images), "-o", str(out), "--scheduler", dask_cluster.address, "--db", str(feeds_db), "--json"
    )
    assert again.returncode == 0, again.stderr[-2000:]
    planned = next(e for e in events(again.stdout) if e["event"] == "planned")
    assert planned["resumed"] == counts["analysed"] and planned["to_scan"] == counts["interrupted"]
