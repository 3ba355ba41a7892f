"""Version ordering: every pair is (lower, higher) unless marked equal."""

from __future__ import annotations

import pytest

from cra_fw.versions import compare, debian_compare, generic_compare, upstream_of_debian

LOWER_HIGHER = [
    # OpenSSL letter releases
    ("1.0.2k", "1.0.2u"),
    ("1.0.2", "1.0.2a"),
    ("1.0.2u", "1.0.2za"),
    ("1.0.2z", "1.0.2za"),
    ("1.0.2zc", "1.0.2zd"),
    ("1.0.2zg", "1.1.0"),
    ("1.1.1n", "1.1.1t"),
    ("1.1.1w", "3.0.0"),
    ("3.0.2", "3.0.11"),
    # dropbear year.release
    ("2020.81", "2022.82"),
    ("2022.82", "2022.83"),
    ("2022.83", "2024.84"),
    ("2012.54", "2012.55"),
    ("0.52", "2011.54"),
    # busybox
    ("1.19.4", "1.35.0"),
    ("1.35.0", "1.36.0"),
    ("1.36.0", "1.36.1"),
    ("1.9.2", "1.10.0"),
    # kernel release candidates come before the release
    ("5.10.0-rc1", "5.10.0"),
    ("5.10.0-rc1", "5.10.0-rc2"),
    ("5.10.0", "5.10.1"),
    ("5.10.101", "5.10.102"),
    ("5.16.11", "5.17-rc1"),
    ("5.17-rc5", "5.17"),
    ("6.1.75", "6.1.76"),
    ("4.19", "5.4.1"),
    # pre-release words
    ("2.0-beta1", "2.0"),
    ("2.0alpha", "2.0beta"),
    ("2.0rc1", "2.0"),
    # OpenSSH portable
    ("9.3p1", "9.3p2"),
    ("9.3p2", "9.4p1"),
    ("9.3", "9.3p1"),
    # dates
    ("2023-01-05", "2023-01-06"),
    ("2022-12-31", "2023-01-01"),
    ("20230105", "20230106"),
    # uClibc
    ("0.9.33.2", "0.9.33.3"),
    ("0.9.32", "0.9.33.2"),
    ("1.0.39", "1.0.40"),
]

EQUAL = [
    ("1.0", "1.0.0"),
    ("5.10.0-rc1", "5.10-rc1"),
    ("6.8.0-rc1", "6.8-rc1"),
    ("v1.2.3", "1.2.3"),
    ("2.89", "2.89"),
]

DEBIAN_LOWER_HIGHER = [
    ("2.36-9+deb12u3", "2.36-9+deb12u4"),
    ("2.36-9", "2.36-9+deb12u1"),
    ("1.0~rc1-1", "1.0-1"),
    ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1"),
    ("1.2.13.dfsg-1", "1:0.1"),
    ("2.89-1", "2.90-4~deb12u1"),
    ("1.35.0-4", "1:1.35.0-4+b3"),
    ("3.0.11-1~deb12u2", "3.0.11-1"),
    ("1.0a", "1.0b"),
    ("1.0", "1.0a"),
    ("2022.83-1", "2022.83-1+deb12u1"),
    ("1.0-1", "1.0-1.1"),
]


@pytest.mark.parametrize(("low", "high"), LOWER_HIGHER)
def test_generic_order(low: str, high: str) -> None:
    assert generic_compare(low, high) == -1
    assert generic_compare(high, low) == 1


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_generic_equal(a: str, b: str) -> None:
    assert generic_compare(a, b) == 0


@pytest.mark.parametrize(("low", "high"), DEBIAN_LOWER_HIGHER)
def test_debian_order(low: str, high: str) -> None:
    assert debian_compare(low, high) == -1
    assert debian_compare(high, low) == 1
    assert compare(low, high, "debian") == -1


def test_debian_equal_and_epoch_zero() -> None:
    assert debian_compare("0:1.2-1", "1.2-1") == 0
    assert debian_compare("1.2-01", "1.2-1") == 0


def test_sorting_a_mixed_openssl_list() -> None:
    from cra_fw.versions import sort_key

    versions = ["1.0.2za", "1.0.2k", "1.0.2", "1.1.1", "1.0.2u", "3.0.0", "1.0.2zd", "1.1.0l"]
    assert sorted(versions, key=sort_key()) == [
        "1.0.2",
        "1.0.2k",
        "1.0.2u",
        "1.0.2za",
        "1.0.2zd",
        "1.1.0l",
        "1.1.1",
        "3.0.0",
    ]


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [
        ("1:1.2.13.dfsg-1", "1.2.13"),
        ("2.36-9+deb12u4", "2.36"),
        ("1:1.35.0-4+b3", "1.35.0"),
        ("3.0.15-1~deb12u1", "3.0.15"),
        ("2.89-1", "2.89"),
        ("2022.83-1+deb12u2", "2022.83"),
        ("5.2.5+ds-1", "5.2.5"),
    ],
)
def test_upstream_of_debian(debian: str, upstream: str) -> None:
    assert upstream_of_debian(debian) == upstream


@pytest.mark.parametrize(("low", "high"), LOWER_HIGHER)
def test_sortable_string_keeps_the_order(low: str, high: str) -> None:
    from cra_fw.versions import sortable

    assert sortable(low) < sortable(high)


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_sortable_string_keeps_equality(a: str, b: str) -> None:
    from cra_fw.versions import sortable

    assert sortable(a) == sortable(b)
