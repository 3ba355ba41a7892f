"""Every component signature: loads, has real vectors, matches its positives with the right version,
and matches none of its negatives (and no other signature fires on its vectors)."""

from __future__ import annotations

import pytest

from cra_fw.errors import SignatureDataError
from cra_fw.identify.matcher import Matcher
from cra_fw.identify.signatures import default_signatures, load_signatures, parse_signature

SIGS = default_signatures()
MATCHER = Matcher(SIGS)
BY_NAME = SIGS.by_name()


def _path(sig, vec) -> str:
    return vec.path or "/usr/lib/libtest.so"


def test_coverage_at_least_250_components():
    assert len(SIGS.signatures) >= 250
    for required in (
        # what vendor router firmware carries (issue 15)
        "ebtables",
        "iproute2",
        "ppp",
        "rp-pppoe",
        "udhcp",
        "xl2tpd",
        "pptpd",
        "libupnp",
        "miniupnpd",
        "igmpproxy",
        "radvd",
        "wide-dhcpv6",
        "wireless-tools",
        "boa",
        "goahead",
        "mini-httpd",
        "thttpd",
        "samba",
        "vsftpd",
        "proftpd",
        "pure-ftpd",
        "inadyn",
        "polarssl",
        "sqlite",
        "libjpeg",
        "lua",
        "mathopd",
        "busybox",
        "glibc",
        "musl",
        "uclibc-ng",
        "linux",
        "u-boot",
        "openssl",
        "wolfssl",
        "mbedtls",
        "gnutls",
        "dropbear",
        "openssh",
        "curl",
        "dnsmasq",
        "hostapd",
        "zlib",
        "xz",
        "sqlite",
        "expat",
        "json-c",
        "lighttpd",
        "nginx",
        "libssh",
        "libssh2",
        "c-ares",
        "nghttp2",
        "icu",
    ):
        assert required in BY_NAME, required


@pytest.mark.parametrize("sig", SIGS.signatures, ids=lambda s: s.name)
def test_signature_has_real_vectors(sig):
    assert len(sig.vectors) >= 2, f"{sig.name}: needs positive vectors from at least two real builds"
    assert len({v.source for v in sig.vectors}) >= 2
    versions = {v.version for v in sig.vectors}
    if len(versions) < 2:
        # only allowed with a recorded reason (upstream has one release in every distribution we can reach)
        assert sig.source_file and "note" in open(sig.source_file).read(), sig.name
    assert sig.negatives, f"{sig.name}: needs negative vectors"
    for v in sig.vectors + sig.negatives:
        assert v.source.strip()
        if sig.files:
            assert v.path, f"{sig.name}: signature is restricted by file globs, vectors need a path"


@pytest.mark.parametrize("sig", SIGS.signatures, ids=lambda s: s.name)
def test_positive_vectors_match_with_their_version(sig):
    for vec in sig.vectors:
        hits = MATCHER.scan(vec.text.encode("latin-1"), _path(sig, vec), static=vec.static)
        got = {(h.name, h.version) for h in hits}
        assert (sig.name, vec.version) in got, f"{sig.name}: {vec.text[:80]!r} ({vec.source}) gave {got}"
        # exactly this component and this version: nothing else fires on a real string of it
        assert got == {(sig.name, vec.version)} or all(n == sig.name for n, _ in got) and len(got) == 1, got


@pytest.mark.parametrize("sig", SIGS.signatures, ids=lambda s: s.name)
def test_negative_vectors_do_not_match(sig):
    for vec in sig.negatives:
        hits = MATCHER.scan(vec.text.encode("latin-1"), _path(sig, vec))
        assert not [h for h in hits if h.name == sig.name], f"{sig.name}: negative {vec.text[:80]!r} matched"


def test_loader_rejects_bad_data(tmp_path):
    good = {
        "name": "x",
        "cpe": "a:b",
        "purl": "pkg:generic/x@{version}",
        "supplier": "s",
        "pattern": [{"anchor": "abcd", "regex": "abcd(?P<version>\\d+)"}],
    }
    assert parse_signature(good, "t").name == "x"
    for bad, why in [
        ({**good, "pattern": [{"anchor": "abcd", "regex": "abcd(\\d+)"}]}, "named group"),
        ({**good, "pattern": [{"anchor": "abcd", "regex": "abcd("}]}, "does not compile"),
        ({**good, "cpe": "NoColon"}, "vendor:product"),
        ({**good, "purl": "pkg:generic/x"}, "{version}"),
        ({**good, "pattern": [{"anchor": "", "regex": "(?P<version>1)"}]}, "files. globs"),
        ({**good, "colour": 1}, "unknown field"),
        ({**good, "pattern": []}, "at least one"),
        (
            {
                **good,
                "files": ["*/libx.so*"],
                "pattern": [{"anchor": "abcd", "versionless": True, "regex": "a"}],
            },
            "versionless pattern has",
        ),
        ({**good, "pattern": [{"anchor": "abcd", "versionless": True}]}, "restricted with 'files'"),
        (
            {**good, "files": ["*/libx.so*"], "pattern": [{"anchor": "abc", "versionless": True}]},
            "versionless pattern has",
        ),
    ]:
        with pytest.raises(SignatureDataError, match=why.replace("{", "\\{").replace("}", "\\}")):
            parse_signature(bad, "t")
    # a versionless signature's positive vectors say version = "" and match without a version
    vsig = parse_signature(
        {
            **good,
            "files": ["*/libx.so*"],
            "pattern": [{"anchor": "\0XV_1\0", "versionless": True}],
            "vector": [{"text": "\0XV_1\0", "version": "", "source": "s", "path": "/lib/libx.so.1"}],
        },
        "t",
    )
    assert vsig.vectors[0].version == "" and vsig.patterns[0].versionless
    with pytest.raises(SignatureDataError, match="'version' must be"):
        parse_signature({**good, "vector": [{"text": "abcd1", "version": "", "source": "s"}]}, "t")
    (tmp_path / "a.toml").write_text(
        'name = "x"\ncpe = "a:b"\npurl = "pkg:generic/x@{version}"\n[[pattern]]\n'
    )
    with pytest.raises(SignatureDataError, match="a.toml"):
        load_signatures(tmp_path)
    (tmp_path / "a.toml").write_text("name = [")
    with pytest.raises(SignatureDataError, match="not valid TOML"):
        load_signatures(tmp_path)


def test_versionless_hit_gives_way_to_a_versioned_one_in_the_same_file():
    from cra_fw.identify.signatures import SignatureSet

    sig = parse_signature(
        {
            "name": "x",
            "cpe": "a:b",
            "purl": "pkg:generic/x@{version}",
            "supplier": "s",
            "files": ["*/libx.so*"],
            "pattern": [
                {"anchor": "\0XV_1\0", "versionless": True},
                {"anchor": "libx ", "regex": r"libx (?P<version>\d+\.\d+)"},
            ],
        },
        "t",
    )
    matcher = Matcher(SignatureSet((sig,), "d"))
    scan = matcher.scan
    assert [(h.name, h.version, h.method) for h in scan(b"\0XV_1\0", "/lib/libx.so.1")] == [
        ("x", "", "symbol")
    ]
    assert [(h.name, h.version) for h in scan(b"\0XV_1\0libx 1.4\0", "/lib/libx.so.1")] == [("x", "1.4")]
    assert scan(b"\0XV_1\0", "/usr/bin/prog") == []  # outside the signature's files
