"""Distro packages decide with their distribution's records; uncertain versions give possible matches.

Fixtures: fixtures/distro/debian-bookworm-armhf.sqfs (built by fixtures/distro/build_debian.py from
real bookworm packages: libexpat1 2.5.0-1+deb12u2, zlib1g 1:1.2.13.dfsg-1, libc6 2.36-9+deb12u14),
fixtures/images/*.sqfs|tar.gz (real Debian binaries), fixtures/feeds (provenance:
docs/vulns-fixture-provenance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cra_fw.identify.pkgdb import PackageRecord
from cra_fw.identify.purls import package_purl
from cra_fw.records import Component
from cra_fw.vulns import match_components

from .conftest import load_all

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = ROOT / "fixtures" / "distro" / "debian-bookworm-armhf.sqfs"
IMAGES = ROOT / "fixtures" / "images"
EXPAT_PURL = "pkg:deb/debian/libexpat1@2.5.0-1%2Bdeb12u2?arch=armhf&distro=debian-12&upstream=expat"


def _scan(image: Path, out: Path, db: Path, *extra: str) -> tuple[int, dict]:
    res = subprocess.run(
        [sys.executable, "-m", "cra_fw", "scan", str(image), "-o", str(out), "--db", str(db), "-q", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (out / "report.json").exists(), res.stderr
    return res.returncode, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def feeds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feeds") / "feeds.db"
    load_all(path).conn.close()
    return path


@pytest.fixture(scope="module")
def debian_scan(tmp_path_factory, feeds) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("debian")
    code, report = _scan(DEBIAN, out, feeds, "--fail-on-vuln", "kev", "--csaf")
    return code, report, out


def test_scan_writes_csaf_vex_that_validates(debian_scan) -> None:
    from .test_csaf import validate_csaf

    _, _, out = debian_scan
    doc = json.loads((out / "vex.csaf.json").read_text())
    validate_csaf(doc)
    statuses = {v["cve"]: sorted(v["product_status"]) for v in doc["vulnerabilities"]}
    assert statuses == {
        "CVE-2023-4911": ["fixed"],
        "CVE-2023-45853": ["known_affected"],
        "CVE-2024-28757": ["known_affected"],
        "CVE-2024-45490": ["fixed"],
    }


def test_dpkg_components_carry_the_debian_purl(debian_scan) -> None:
    _, report, _ = debian_scan
    purls = {c["name"]: c["purl"] for c in report["components"]}
    assert purls["expat"] == EXPAT_PURL
    assert purls["zlib"] == "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=armhf&distro=debian-12&upstream=zlib"
    assert (
        purls["glibc"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=armhf&distro=debian-12&upstream=glibc"
    )
    expat = next(c for c in report["components"] if c["name"] == "expat")
    assert (expat["version"], expat["version_certainty"]) == ("2.5.0", "exact")


def test_backport_is_fixed_and_later_fix_matches(debian_scan) -> None:
    code, report, out = debian_scan
    by = {(v["component_key"], v["advisory_id"]): v for v in report["vulnerabilities"]}
    # Debian fixed CVE-2024-45490 in 2.5.0-1+deb12u1, at or below the installed +deb12u2: fixed,
    # with Debian's record as the reason, although the NVD range (<2.6.3) covers expat 2.5.0
    fixed = by[("expat@2.5.0", "CVE-2024-45490")]
    assert fixed["triage"]["state"] == "resolved"
    assert fixed["triage"]["source"] == "distro:DEBIAN-CVE-2024-45490"
    assert "Debian:12/expat fixed this in 2.5.0-1+deb12u1" in fixed["triage"]["detail"]
    # CVE-2024-28757 was fixed in +deb12u4, after the installed revision: a match
    late = by[("expat@2.5.0", "CVE-2024-28757")]
    assert late["triage"] is None and late["fixed_version"] == "2.5.0-1+deb12u4"
    assert late["matched_range"] == "Debian:12/expat <2.5.0-1+deb12u4"
    # glibc (libc6 2.36-9+deb12u14): Looney Tunables fixed in +deb12u3; KEV-listed but fixed here
    glibc = by[("glibc@2.36", "CVE-2023-4911")]
    assert glibc["kev"] and glibc["triage"]["state"] == "resolved"
    # zlib: bookworm has no fix for CVE-2023-45853: a match
    assert by[("zlib@1.2.13", "CVE-2023-45853")]["triage"] is None
    assert set(by) == {
        ("expat@2.5.0", "CVE-2024-45490"),
        ("expat@2.5.0", "CVE-2024-28757"),
        ("glibc@2.36", "CVE-2023-4911"),
        ("zlib@1.2.13", "CVE-2023-45853"),
    }
    assert code == 0  # --fail-on-vuln kev: the only KEV entry is fixed by Debian
    vex = json.loads((out / "vex.cdx.json").read_text())
    entry = next(
        v
        for v in vex["vulnerabilities"]
        if v["id"] == "CVE-2024-45490" and v["affects"][0]["ref"] == EXPAT_PURL
    )
    assert entry["analysis"]["state"] == "resolved"
    assert entry["affects"][0]["versions"][0]["status"] == "unaffected"
    assert {"name": "cra-fw:analysis-source", "value": "distro:DEBIAN-CVE-2024-45490"} in entry["properties"]


def test_fixed_kev_entry_opens_no_article14_case(feeds, tmp_path) -> None:
    import shutil
    import sqlite3

    db = tmp_path / "ledger.db"
    shutil.copy(feeds, db)
    for args in (["product", "add", "router"], ["release", "add", "router", "1.0", str(DEBIAN)]):
        res = subprocess.run(
            [sys.executable, "-m", "cra_fw", *args, "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr + res.stdout
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0
    assert conn.execute("SELECT advisory_id FROM component_vulns WHERE kev = 1").fetchall() == []
    stored = {r[0] for r in conn.execute("SELECT advisory_id FROM component_vulns")}
    assert stored == {"CVE-2024-28757", "CVE-2023-45853"}  # open matches only


def test_alpine_backport_decides_with_apk_order(feeds) -> None:
    from cra_fw.feeddb import open_feed_db

    db = open_feed_db(feeds)

    def comp(version: str) -> Component:
        rec = PackageRecord(
            "busybox",
            version,
            "apk",
            "L1",
            "/lib/apk/db/installed",
            arch="x86_64",
            source="busybox",
            distro="alpine-3.9.4",
        )
        return Component("busybox", version.rsplit("-r", 1)[0], purl=package_purl(rec))

    fixed, older = comp("1.29.3-r10"), comp("1.29.3-r9")
    assert fixed.purl == "pkg:apk/alpine/busybox@1.29.3-r10?arch=x86_64&distro=alpine-3.9.4"
    by = {
        m.component_purl: m for m in match_components([fixed, older], db) if m.advisory_id == "CVE-2018-20679"
    }
    assert by[fixed.purl].triage.state == "resolved"  # r10 > r9 in apk order (a string sort says otherwise)
    assert by[older.purl].open and by[older.purl].matched_range == "Alpine:v3.9/busybox <1.29.3-r10"


def test_glibc_known_only_from_feature_markers_gives_possible_matches_only(feeds, tmp_path) -> None:
    # rootfs-armhf.tar.gz: a static busybox from Debian (glibc 2.36 linked in), no libc.so.6
    code, report = _scan(IMAGES / "rootfs-armhf.tar.gz", tmp_path / "out", feeds, "--fail-on-vuln", "kev")
    glibc = next(c for c in report["components"] if c["name"] == "glibc")
    assert (glibc["version"], glibc["version_certainty"], glibc["version_range"]) == (
        "2.36",
        "lower-bound",
        "vers:generic/>=2.36",
    )
    matches = [v for v in report["vulnerabilities"] if v["component_key"] == "glibc@2.36"]
    assert [(m["advisory_id"], m["possible"], m["kev"]) for m in matches] == [("CVE-2023-4911", True, True)]
    assert "known only as vers:generic/>=2.36" in matches[0]["settle"]
    assert code == 0  # the KEV gate stays green on a possible match
    possible = [f for f in report["findings"] if f["rule_id"] == "vuln.possible-vulnerability"]
    assert len(possible) == 1 and "not established for this component" in possible[0]["evidence"]
    assert not [f for f in report["findings"] if f["rule_id"] == "vuln.actively-exploited"]
    sbom = json.loads((tmp_path / "out" / "sbom.cdx.json").read_text())
    comp = next(c for c in sbom["components"] if c["name"] == "glibc")
    props = {p["name"]: p["value"] for p in comp.get("properties", [])}
    assert props["cra-fw:version-certainty"] == "lower-bound"
    assert props["cra-fw:version-range"] == "vers:generic/>=2.36"


def test_debian_glibc_banner_gives_the_distro_purl_and_the_fix(feeds, tmp_path) -> None:
    # sqfs-lzo-armhf.sqfs: libc.so.6 says "GNU C Library (Debian GLIBC 2.36-9+deb12u14)"; no dpkg database
    code, report = _scan(IMAGES / "sqfs-lzo-armhf.sqfs", tmp_path / "out", feeds, "--fail-on-vuln", "kev")
    glibc = next(c for c in report["components"] if c["name"] == "glibc")
    assert glibc["purl"] == "pkg:deb/debian/glibc@2.36-9%2Bdeb12u14?arch=armhf&distro=debian-12"
    looney = next(v for v in report["vulnerabilities"] if v["advisory_id"] == "CVE-2023-4911")
    assert looney["triage"]["state"] == "resolved" and not looney["possible"]
    assert code == 0


def test_possible_kev_match_is_not_actively_exploited_in_summaries(feeds) -> None:
    # the terminal summary, the HTML report and the CRA checklist count KEV by exploited_here
    import dataclasses

    from cra_fw.feeddb import open_feed_db

    (m,) = match_components([Component("glibc", "2.36")], open_feed_db(feeds))
    assert m.kev and m.exploited_here
    assert not dataclasses.replace(m, possible=True).exploited_here
