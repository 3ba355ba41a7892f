"""Exact match sets for components against the fixture feeds, and the versions just outside each range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cra_fw.records import Component, Severity
from cra_fw.vulns import ARTICLE14_NOTE, match_components

DEB12 = "arch=armhf&distro=debian-12"

# Each range is probed inside, at each bound and just outside it (facts: docs/vulns-fixture-provenance.md).
CASES = [
    # BusyBox: <=1.35.0 (28391), =1.35.0 (30065), <=1.36.1 (48174: the NVD's range, wider than its
    # text "before 1.35"), =1.36.1 (42363)
    (Component("busybox", "1.35.0"), {"CVE-2022-28391", "CVE-2022-30065", "CVE-2022-48174"}),
    (Component("busybox", "1.34.1"), {"CVE-2022-28391", "CVE-2022-48174"}),
    (Component("busybox", "1.35.1"), {"CVE-2022-48174"}),
    (Component("busybox", "1.36.1"), {"CVE-2022-48174", "CVE-2023-42363"}),
    (Component("busybox", "1.36.2"), set()),
    (Component("busybox", "1.19.4"), {"CVE-2022-28391", "CVE-2022-48174", "CVE-2018-20679"}),
    # OpenSSL letter releases against excluded ends 1.0.2zd / 1.0.2zg
    (Component("openssl", "1.0.2k"), {"CVE-2022-0778", "CVE-2023-0286"}),
    (Component("openssl", "1.0.2zc"), {"CVE-2022-0778", "CVE-2023-0286"}),
    (Component("openssl", "1.0.2zd"), {"CVE-2023-0286"}),
    (Component("openssl", "1.0.2zg"), set()),
    (Component("openssl", "1.0.1u"), set()),
    (Component("openssl", "1.1.0l"), {"CVE-2022-0778"}),
    (
        Component("libssl3", "3.0.1", cpe="cpe:2.3:a:openssl:openssl:3.0.1:*:*:*:*:*:*:*"),
        {"CVE-2022-0778", "CVE-2023-0286"},
    ),
    (Component("openssl", "3.0.2"), {"CVE-2023-0286"}),
    (Component("openssl", "3.0.8"), set()),
    # dnsmasq with the wrong vendor in common use: corrected to thekelleys
    (
        Component("dnsmasq", "2.89", cpe="cpe:2.3:a:dnsmasq:dnsmasq:2.89:*:*:*:*:*:*:*"),
        {"CVE-2023-28450", "CVE-2023-50387"},
    ),
    (Component("dnsmasq", "2.90"), set()),
    # dropbear: year.release versions; 0.52 through 2012.54 (0920), through 2022.83 (48795)
    (Component("dropbear", "2022.83"), {"CVE-2023-48795"}),
    (Component("dropbear", "2024.84"), set()),
    (Component("dropbear", "2012.54"), {"CVE-2023-48795", "CVE-2012-0920"}),
    (Component("dropbear", "2012.55"), {"CVE-2023-48795"}),
    (Component("dropbear", "0.52"), {"CVE-2023-48795", "CVE-2012-0920"}),
    (Component("dropbear", "0.51"), {"CVE-2023-48795"}),
    # Debian fixed Terrapin in 2022.83-1+deb12u1 (a backport): the upstream range must not report it
    (
        Component(
            "dropbear", "2022.83-1", purl=f"pkg:deb/debian/dropbear-bin@2022.83-1?{DEB12}&upstream=dropbear"
        ),
        {"CVE-2023-48795"},
    ),
    (
        Component(
            "dropbear",
            "2022.83-1+deb12u3",
            purl=f"pkg:deb/debian/dropbear-bin@2022.83-1%2Bdeb12u3?{DEB12}&upstream=dropbear",
        ),
        set(),
    ),
    # glibc: >=2.34 <2.39
    (Component("glibc", "2.36"), {"CVE-2023-4911"}),
    (Component("glibc", "2.34"), {"CVE-2023-4911"}),
    (Component("glibc", "2.38"), {"CVE-2023-4911"}),
    (Component("glibc", "2.33"), set()),
    (Component("glibc", "2.39"), set()),
    # Debian packages: the distribution's OSV record decides (backported fix in +deb12u3)
    (
        Component("glibc", "2.36-9+deb12u2", purl=f"pkg:deb/debian/libc6@2.36-9%2Bdeb12u2?{DEB12}"),
        {"CVE-2023-4911"},
    ),
    (Component("glibc", "2.36-9+deb12u3", purl=f"pkg:deb/debian/libc6@2.36-9%2Bdeb12u3?{DEB12}"), set()),
    # zlib: bookworm has no fix (every version affected); trixie is fixed in 1:1.3.dfsg-2, which the
    # NVD range (<=1.3 upstream) would still report
    (
        Component("zlib", "1:1.2.13.dfsg-1", purl=f"pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?{DEB12}"),
        {"CVE-2023-45853"},
    ),
    (
        Component(
            "zlib", "1:1.3.dfsg-1", purl="pkg:deb/debian/zlib1g@1:1.3.dfsg-1?arch=armhf&distro=debian-13"
        ),
        {"CVE-2023-45853"},
    ),
    (
        Component(
            "zlib", "1:1.3.dfsg-2", purl="pkg:deb/debian/zlib1g@1:1.3.dfsg-2?arch=armhf&distro=debian-13"
        ),
        set(),
    ),
    # zlib upstream: <=1.2.12 (37434), <=1.3 (45853)
    (Component("zlib", "1.2.12"), {"CVE-2022-37434", "CVE-2023-45853"}),
    (Component("zlib", "1.2.13"), {"CVE-2023-45853"}),
    (Component("zlib", "1.3"), {"CVE-2023-45853"}),
    (Component("zlib", "1.3.1"), set()),
    # kernel: 0847 5.8-5.10.101, 5.15-5.15.24, 5.16-5.16.10; 1086 3.15-5.15.148, 6.1-6.7.2 in
    # branches, and 6.8-rc1 named in the CPE update field; 26656 <6.9 (the NVD's range)
    (
        Component("linux", "5.10.0-rc1", kind="operating-system"),
        {"CVE-2022-0847", "CVE-2024-1086", "CVE-2024-26656"},
    ),
    (Component("linux", "5.10.101"), {"CVE-2022-0847", "CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "5.10.102"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "5.14.21"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "5.15.24"), {"CVE-2022-0847", "CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "5.15.25"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "5.15.149"), {"CVE-2024-26656"}),
    (Component("linux", "5.16.10"), {"CVE-2022-0847", "CVE-2024-26656"}),
    (Component("linux", "5.16.11"), {"CVE-2024-26656"}),
    (Component("linux", "5.17-rc3"), {"CVE-2024-26656"}),
    (Component("linux", "6.0.19"), {"CVE-2024-26656"}),
    (Component("linux", "6.1"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "6.1.76"), {"CVE-2024-26656"}),
    (Component("linux", "6.7.2"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "6.7.3"), {"CVE-2024-26656"}),
    (Component("linux", "6.8-rc1"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "6.8-rc2"), {"CVE-2024-26656"}),
    (Component("linux", "3.15"), {"CVE-2024-1086", "CVE-2024-26656"}),
    (Component("linux", "3.14.79"), {"CVE-2024-26656"}),
    (Component("linux", "6.8.12"), {"CVE-2024-26656"}),
    (Component("linux", "6.9"), set()),
    # uClibc <=0.9.33.2 (30295, 43523), =0.9.33.2 (9728); uClibc-ng <=1.0.40 (30295), <1.0.39 (43523)
    (Component("uclibc", "0.9.33.2"), {"CVE-2017-9728", "CVE-2021-43523", "CVE-2022-30295"}),
    (Component("uclibc", "0.9.33.1"), {"CVE-2021-43523", "CVE-2022-30295"}),
    (Component("uclibc", "0.9.33.3"), set()),
    (Component("uclibc-ng", "1.0.38"), {"CVE-2021-43523", "CVE-2022-30295"}),
    (Component("uclibc-ng", "1.0.39"), {"CVE-2022-30295"}),
    (Component("uclibc-ng", "1.0.40"), {"CVE-2022-30295"}),
    (Component("uclibc-ng", "1.0.41"), set()),
    # json-c: <0.15-20200726 (the release tag); lighttpd >=1.4.56 <1.4.67; libtommath <1.2.1;
    # libtomcrypt <=1.18.2; gmp <=6.2.1 (target_hw x86 in the NVD; a component without hw matches)
    (Component("json-c", "0.14"), {"CVE-2020-12762"}),
    (Component("json-c", "0.15-20200726"), set()),
    (Component("json-c", "0.16"), set()),
    (Component("lighttpd", "1.4.55"), set()),
    (Component("lighttpd", "1.4.56"), {"CVE-2022-41556"}),
    (Component("lighttpd", "1.4.66"), {"CVE-2022-41556"}),
    (Component("lighttpd", "1.4.67"), set()),
    (Component("libtommath", "1.2.0"), {"CVE-2023-36328"}),
    (Component("libtommath", "1.2.1"), set()),
    (Component("libtomcrypt", "1.18.2"), {"CVE-2019-17362"}),
    (Component("libtomcrypt", "1.18.3"), set()),
    (Component("gmp", "6.2.1"), {"CVE-2021-43618"}),
    (Component("gmp", "6.3.0"), set()),
    (Component("gmp", "6.2.1", cpe="cpe:2.3:a:gmplib:gmp:6.2.1:*:*:*:*:*:arm:*"), set()),
    # nothing known, or no usable version
    (Component("mystery-daemon", "1.0"), set()),
    (Component("busybox", ""), set()),
]


@pytest.mark.parametrize(("component", "expected"), CASES, ids=lambda v: getattr(v, "key", None))
def test_exact_match_set(feed_db, component: Component, expected: set[str]) -> None:
    # open matches: a distro record's "fixed" verdict is listed too, but resolved (see below)
    got = {m.advisory_id for m in match_components([component], feed_db) if m.open}
    assert got == expected


def test_distro_backport_is_resolved_with_the_distro_record_as_reason(feed_db) -> None:
    comp = Component(
        "dropbear",
        "2022.83-1+deb12u3",
        purl=f"pkg:deb/debian/dropbear-bin@2022.83-1%2Bdeb12u3?{DEB12}&upstream=dropbear",
    )
    (m,) = match_components([comp], feed_db)
    assert (m.advisory_id, m.open, m.triage.state) == ("CVE-2023-48795", False, "resolved")
    assert m.triage.source == "distro:DEBIAN-CVE-2023-48795"
    assert m.triage.detail == (
        "Debian:12/dropbear fixed this in 2022.83-1+deb12u1 (DEBIAN-CVE-2023-48795); "
        "the installed 2022.83-1+deb12u3 includes the fix"
    )
    assert m.matched_range.startswith("cpe:2.3:a:dropbear_ssh_project:dropbear_ssh ")  # what it overrules


def test_all_at_once_equals_one_by_one(feed_db) -> None:
    comps = [c for c, _ in CASES]
    got = {(m.component_key, m.advisory_id) for m in match_components(comps, feed_db) if m.open}
    want = {(c.key, cve) for c, exp in CASES for cve in exp}
    assert got == want


def test_kev_listed_match_is_flagged(feed_db) -> None:
    (m,) = match_components([Component("glibc", "2.36")], feed_db)
    assert m.kev and m.kev_date_added == "2023-11-21" and m.kev_due_date == "2023-12-12"
    assert m.actively_exploited == ARTICLE14_NOTE
    assert m.epss == pytest.approx(0.7)
    assert m.cvss_v31_vector == "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"
    assert m.cvss_v31_score == 7.8 and m.severity is Severity.HIGH
    assert m.match_method == "cpe" and m.matched_range == "cpe:2.3:a:gnu:glibc >=2.34 <2.39"
    assert m.fixed_version == "2.39"


def test_not_kev_listed_is_not_flagged(feed_db) -> None:
    matches = match_components([Component("openssl", "1.0.2k")], feed_db)
    assert matches and not any(m.kev or m.actively_exploited for m in matches)


def test_match_details_fixed_version_and_range(feed_db) -> None:
    by_id = {m.advisory_id: m for m in match_components([Component("openssl", "1.0.2k")], feed_db)}
    assert by_id["CVE-2022-0778"].fixed_version == "1.0.2zd"
    assert by_id["CVE-2022-0778"].matched_range == "cpe:2.3:a:openssl:openssl >=1.0.2 <1.0.2zd"
    assert by_id["CVE-2023-0286"].fixed_version == "1.0.2zg"
    assert by_id["CVE-2023-0286"].severity is Severity.HIGH and by_id["CVE-2023-0286"].cvss_v31_score == 7.4


def test_purl_match_carries_osv_alias_and_distro_fix(feed_db) -> None:
    comp = Component("glibc", "2.36-9+deb12u2", purl=f"pkg:deb/debian/libc6@2.36-9%2Bdeb12u2?{DEB12}")
    (m,) = match_components([comp], feed_db)
    assert (m.advisory_id, m.aliases, m.match_method) == ("CVE-2023-4911", ("DEBIAN-CVE-2023-4911",), "purl")
    assert m.fixed_version == "2.36-9+deb12u3"
    assert m.matched_range == "Debian:12/glibc <2.36-9+deb12u3"
    assert m.kev  # KEV looked up through the CVE alias


def test_cvss_v2_only_advisory_gets_v2_band_severity_or_none(feed_db) -> None:
    by_id = {m.advisory_id: m for m in match_components([Component("dropbear", "2012.54")], feed_db)}
    old = by_id["CVE-2012-0920"]
    assert old.cvss_v31_score is None and old.cvss_v31_vector == ""
    assert old.severity is Severity.HIGH  # CVSS v2 7.1


def test_cvss_30_record_keeps_its_vector_version(feed_db) -> None:
    by_id = {m.advisory_id: m for m in match_components([Component("uclibc", "0.9.33.2")], feed_db)}
    old = by_id["CVE-2017-9728"]  # the NVD scored it with CVSS 3.0 only
    assert old.cvss_v31_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert old.cvss_v31_score == 9.8 and old.severity is Severity.CRITICAL
    assert by_id["CVE-2022-30295"].cvss_v31_vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:L/A:N"


def test_debian_record_without_fix_reports_no_fixed_version(feed_db) -> None:
    comp = Component("zlib", "1:1.2.13.dfsg-1", purl=f"pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?{DEB12}")
    (m,) = match_components([comp], feed_db)
    assert (m.advisory_id, m.match_method, m.fixed_version) == ("CVE-2023-45853", "purl", "")
    assert m.matched_range == "Debian:12/zlib all versions"


# --- end to end against the fixture images' ground truth (fixtures/images/ground-truth.json) ---

GROUND_TRUTH = Path(__file__).resolve().parents[2] / "fixtures" / "images" / "ground-truth.json"

# what the fixture feeds say about each component version in the fixture images
IMAGE_EXPECTED = {
    "busybox@1.35.0": {"CVE-2022-28391", "CVE-2022-30065", "CVE-2022-48174"},  # 48174: <=1.36.1 in the NVD
    "dnsmasq@2.90": set(),  # first fixed release for CVE-2023-28450 and CVE-2023-50387
    "glibc@2.36": {"CVE-2023-4911"},
    "json-c@0.16": set(),  # CVE-2020-12762 is through 0.14
    "zlib@1.2.13": {"CVE-2023-45853"},  # not CVE-2022-37434 (through 1.2.12)
    "dropbear@2022.83": {"CVE-2023-48795"},
    "gmp@6.2.1": {"CVE-2021-43618"},
    "libtomcrypt@1.18.2": {"CVE-2019-17362"},
    "libtommath@1.2.0": {"CVE-2023-36328"},  # fixed in 1.2.1
    "lighttpd@1.4.69": set(),  # CVE-2022-41556 is 1.4.56 through 1.4.66
    "linux@6.1.176": {"CVE-2024-26656"},  # CVE-2024-1086 is fixed in 6.1.76; 26656 is <6.9
}


def _images() -> list[dict]:
    if not GROUND_TRUTH.exists():
        return []
    return json.loads(GROUND_TRUTH.read_text()).get("images", [])


@pytest.mark.skipif(not GROUND_TRUTH.exists(), reason="fixtures/images/ground-truth.json not built")
@pytest.mark.parametrize("image", _images(), ids=lambda im: im["name"])
def test_fixture_image_expected_matches(feed_db, image: dict) -> None:
    comps = [
        Component(c["name"], c["version"], files=tuple(c.get("files", ())))
        for c in image.get("components", [])
    ]
    got: dict[str, set[str]] = {c.key: set() for c in comps}
    for m in match_components(comps, feed_db):
        got[m.component_key].add(m.advisory_id)
    # a component the table does not know must not match anything in the fixture feeds
    want = {c.key: IMAGE_EXPECTED.get(c.key, set()) for c in comps}
    assert got == want
    kev = {m.advisory_id for m in match_components(comps, feed_db) if m.kev}
    assert kev == ({"CVE-2023-4911"} if "glibc@2.36" in got else set())
