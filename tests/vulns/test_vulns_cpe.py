"""CPE 2.3 parsing and matching against NVD criteria, incl. the update field."""

from __future__ import annotations

import pytest

from cra_fw.records import Component
from cra_fw.vulns.cpe import CpeCriterion, CpeError, matches, parse
from cra_fw.vulns.mapping import load_mapping, mapping_tests
from cra_fw.vulns.match import component_cpes


def test_parse_full_and_short_forms() -> None:
    full = parse("cpe:2.3:o:linux:linux_kernel:6.8:rc1:*:*:*:*:*:*")
    assert (full.part, full.vendor, full.product, full.version, full.update) == (
        "o",
        "linux",
        "linux_kernel",
        "6.8",
        "rc1",
    )
    assert full.effective_version == "6.8-rc1"
    short = parse("cpe:2.3:a:gnu:glibc:2.36")
    assert (short.version, short.update, short.other) == ("2.36", "*", "*")


def test_parse_escapes_and_round_trip() -> None:
    cpe = parse(r"cpe:2.3:a:w1.fi:hostapd:2.10\:beta:*:*:*:*:*:*:*")
    assert cpe.vendor == "w1.fi"
    assert cpe.version == "2.10:beta"
    assert parse(cpe.to_string()) == cpe


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "cpe:/a:openssl:openssl:1.0.2",
        "cpe:2.3:x:a:b:1",
        "cpe:2.3:a",
        "cpe:2.3:a:b:c:d:e:f:g:h:i:j:k:l:m",
        "openssl 1.0.2",
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(CpeError):
        parse(bad)


def crit(cpe: str, **kw: str) -> CpeCriterion:
    return CpeCriterion(parse(cpe), **kw)


ANY_OPENSSL = "cpe:2.3:a:openssl:openssl:*:*:*:*:*:*:*:*"


@pytest.mark.parametrize(
    ("target", "criterion", "expected"),
    [
        # excluded end: 1.0.2zd is fixed, 1.0.2zc is not
        ("1.0.2zc", crit(ANY_OPENSSL, start_including="1.0.2", end_excluding="1.0.2zd"), True),
        ("1.0.2zd", crit(ANY_OPENSSL, start_including="1.0.2", end_excluding="1.0.2zd"), False),
        ("1.0.2", crit(ANY_OPENSSL, start_including="1.0.2", end_excluding="1.0.2zd"), True),
        ("1.0.1u", crit(ANY_OPENSSL, start_including="1.0.2", end_excluding="1.0.2zd"), False),
        # included end
        ("1.35.0", crit("cpe:2.3:a:busybox:busybox:*:*:*:*:*:*:*:*", end_including="1.35.0"), True),
        ("1.35.1", crit("cpe:2.3:a:busybox:busybox:*:*:*:*:*:*:*:*", end_including="1.35.0"), False),
        # excluded start
        ("1.0", crit(ANY_OPENSSL, start_excluding="1.0"), False),
        ("1.0a", crit(ANY_OPENSSL, start_excluding="1.0"), True),
        # exact version; "1.0.2:*" names release 1.0.2 only, not its letter releases
        ("1.0.2", crit("cpe:2.3:a:openssl:openssl:1.0.2:*:*:*:*:*:*:*"), True),
        ("1.0.2k", crit("cpe:2.3:a:openssl:openssl:1.0.2:*:*:*:*:*:*:*"), False),
        # the update field carries the letter release
        ("1.0.2k", crit("cpe:2.3:a:openssl:openssl:1.0.2:k:*:*:*:*:*:*"), True),
        ("1.0.2l", crit("cpe:2.3:a:openssl:openssl:1.0.2:k:*:*:*:*:*:*"), False),
        # no version in the criterion and no range: every version
        ("0.9.28", crit("cpe:2.3:a:uclibc:uclibc:*:*:*:*:*:*:*:*"), True),
    ],
)
def test_matches_openssl_style(target: str, criterion: CpeCriterion, expected: bool) -> None:
    cpe = criterion.criteria.with_version(target)
    assert matches(criterion, cpe) is expected


def test_kernel_rc_in_update_field() -> None:
    rc1 = crit("cpe:2.3:o:linux:linux_kernel:6.8:rc1:*:*:*:*:*:*")
    assert matches(rc1, parse("cpe:2.3:o:linux:linux_kernel:6.8:rc1:*:*:*:*:*:*"))
    assert matches(rc1, parse("cpe:2.3:o:linux:linux_kernel:6.8.0-rc1:*:*:*:*:*:*:*"))
    assert not matches(rc1, parse("cpe:2.3:o:linux:linux_kernel:6.8:rc3:*:*:*:*:*:*"))
    assert not matches(rc1, parse("cpe:2.3:o:linux:linux_kernel:6.8:*:*:*:*:*:*:*"))


def test_vendor_product_and_target_sw_must_agree() -> None:
    c = crit("cpe:2.3:a:thekelleys:dnsmasq:*:*:*:*:*:*:*:*", end_excluding="2.90")
    assert matches(c, parse("cpe:2.3:a:thekelleys:dnsmasq:2.89"))
    assert not matches(c, parse("cpe:2.3:a:dnsmasq:dnsmasq:2.89"))
    node = crit("cpe:2.3:a:foo:bar:*:*:*:*:*:node.js:*:*")
    assert not matches(node, parse("cpe:2.3:a:foo:bar:1.0:*:*:*:*:python:*:*"))
    assert matches(node, parse("cpe:2.3:a:foo:bar:1.0"))


def test_unknown_component_version_never_matches() -> None:
    c = crit("cpe:2.3:a:uclibc:uclibc:*:*:*:*:*:*:*:*")
    assert not matches(c, parse("cpe:2.3:a:uclibc:uclibc:*"))
    assert not matches(c, parse("cpe:2.3:a:uclibc:uclibc:-"))


@pytest.mark.parametrize("vector", mapping_tests(), ids=lambda v: v["name"])
def test_mapping_vectors(vector: dict) -> None:
    comp = Component(vector["name"], "1.0", cpe=vector["cpe"])
    pairs = [f"{c.vendor}:{c.product}" for c in component_cpes(comp, load_mapping())]
    assert pairs == vector["expect"]


def test_kernel_packaging_version_is_trimmed() -> None:
    comp = Component("kernel", "5.15.167-1-92569b1c", purl="pkg:openwrt/kernel@5.15.167-1-92569b1c")
    cpes = component_cpes(comp)
    assert [(c.part, c.vendor, c.product, c.version) for c in cpes] == [
        ("o", "linux", "linux_kernel", "5.15.167")
    ]


def test_debian_version_becomes_upstream_for_cpe() -> None:
    comp = Component("zlib", "1:1.2.13.dfsg-1", purl="pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=arm64")
    assert [c.version for c in component_cpes(comp)] == ["1.2.13"]
