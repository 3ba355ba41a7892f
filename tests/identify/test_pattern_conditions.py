"""Signature pattern features for vendor layouts: file-level conditions (requires/unless), whole-file
patterns gated by an anchor, version prefixes, match offsets, and the kernel release from a module's
vermagic."""

from __future__ import annotations

import pytest

from cra_fw.errors import SignatureDataError
from cra_fw.identify import kernel
from cra_fw.identify.matcher import Matcher
from cra_fw.identify.signatures import SignatureSet, parse_signature

BASE = {"name": "x", "cpe": "a:b", "purl": "pkg:generic/x@{version}", "supplier": "s"}


def _matcher(*patterns: dict) -> Matcher:
    return Matcher(SignatureSet((parse_signature({**BASE, "pattern": list(patterns)}, "t"),), "d"))


def _found(m: Matcher, data: bytes) -> set[tuple[str, str]]:
    return {(h.name, h.version) for h in m.scan(data, "/usr/bin/x")}


def test_unless_and_requires_decide_per_file():
    m = _matcher(
        {
            "anchor": "XVER ",
            "regex": r"XVER (?P<version>\d+\.\d+)\x00",
            "unless": ["fork-of-x version"],
            "requires": ["x-copyright"],
        }
    )
    assert _found(m, b"x-copyright\x00XVER 6.2\x00") == {("x", "6.2")}
    assert _found(m, b"XVER 6.2\x00") == set()  # the required literal is missing
    assert _found(m, b"x-copyright\x00fork-of-x version 2.1\x00XVER 6.2\x00") == set()


def test_whole_file_pattern_is_gated_by_its_anchor_and_prefixed():
    m = _matcher(
        {
            "anchor": "tool, xsuite-ss%s",
            "regex": r"\x00{8}(?P<version>\d{6})\x00{4}",
            "scope": "file",
            "version_prefix": "ss",
        }
    )
    far = b"\x00" * 8 + b"100224" + b"\x00" * 4
    data = b"tool, xsuite-ss%s\n" + b"\xff" * 20000 + far
    hits = m.scan(data, "/usr/sbin/ip")
    assert [(h.version, h.offset) for h in hits] == [("ss100224", data.index(far))]
    assert _found(m, b"\xff" * 100 + far) == set()  # no banner, no search


def test_offsets_are_file_offsets_of_the_matched_text():
    m = _matcher({"anchor": "XVER ", "regex": r"\x00XVER (?P<version>\d+\.\d+)\x00", "before": 1})
    data = b"\x7fELF" + b"\x01" * 300 + b"\x00XVER 1.4\x00"
    (hit,) = m.scan(data, "/usr/bin/x")
    assert data[hit.offset : hit.offset + 10] == b"\x00XVER 1.4\x00"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"anchor": "XVER", "regex": r"XVER(?P<version>\d)", "scope": "anywhere"}, "scope must be"),
        ({"anchor": "XVER", "regex": r"XVER(?P<version>\d)", "scope": "file"}, "8\\+ characters"),
        ({"anchor": "XVER", "regex": r"XVER(?P<version>\d)", "unless": ["ab"]}, "4 characters"),
        ({"anchor": "XVER", "regex": r"XVER(?P<version>\d)", "version_prefix": "S S"}, "version_prefix"),
    ],
)
def test_loader_rejects_bad_conditions(bad, why):
    with pytest.raises(SignatureDataError, match=why):
        parse_signature({**BASE, "pattern": [bad]}, "t")


@pytest.mark.parametrize(
    ("modinfo", "version"),
    [
        # D-Link DIR-300 rev B5 (shared/firmware-more/linux): /lib/modules/rt2860v2_ap.ko
        (b"\x00vermagic=2.6.21 mod_unload MIPS32_R2 32BIT \x00", "2.6.21"),
        # Broadcom BCM63xx rootfs (shared/firmware/binwalk/squashfs_v2.bin): ip_tables.ko
        (b"\x00vermagic=2.6.8.1 gcc-3.4\x00", "2.6.8.1"),
        # OpenWrt 12.09 ar71xx kernel modules
        (b"\x00vermagic=3.3.8 mod_unload MIPS32_R2 32BIT \x00", "3.3.8"),
        # Debian bookworm: the ABI name, not the release (the banner wins when both are seen)
        (b"\x00vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions \x00", "6.1.0"),
    ],
)
def test_vermagic(modinfo, version):
    data = b"\x7fELF" + b"\x00" * 64 + b"license=GPL" + modinfo
    hit = kernel.vermagic(data)
    assert hit is not None and (hit.name, hit.version, hit.method) == ("linux", version, "vermagic")
    assert data[hit.offset :].startswith(b"vermagic=")


def test_vermagic_absent():
    assert kernel.vermagic(b"\x7fELF\x00description=vermagic checker\x00") is None
