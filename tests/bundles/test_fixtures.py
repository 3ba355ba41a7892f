"""Every fixture made by fixtures/bundles/build.py gets exactly its expected verdict."""

from __future__ import annotations

import json

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle

from .helpers import OUT, ROOT, case_id, cases

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_fixture_verdict(case: dict) -> None:
    trust = TrustStore.load([OUT / t for t in case["trust"]])
    sig = OUT / case["signature"] if case["signature"] else None
    result = verify_bundle(OUT / case["path"], trust, signature=sig)
    assert result.verdict.value == case["verdict"], result.reason
    assert result.format == case["format"]
    if result.verdict is Verdict.VALID:
        assert result.ok
        assert result.key_fingerprint.startswith("sha256:") and len(result.key_fingerprint) == 71
        assert result.signer
        assert result.algorithms
        assert result.covered
        assert result.uncovered == ()
    else:
        assert not result.ok
        assert result.reason


def test_every_verdict_is_exercised() -> None:
    openpgp = ROOT / "fixtures" / "openpgp" / "out" / "expected.json"  # revoked, signature_expired
    seen = {c["verdict"] for c in CASES} | {c["verdict"] for c in json.loads(openpgp.read_text())}
    # a RAUC crypt bundle encrypted for recipients is built with the real rauc by tests/bundles/test_verdicts.py
    seen.add("encrypted")
    assert seen == {v.value for v in Verdict}


def test_a_plain_file_is_unsigned_only_when_named_detached() -> None:
    """No signature beside an unknown file: `unsupported_format`; `--format detached`: `unsigned`."""
    path = OUT / "detached" / "unsigned.bin"
    trust = TrustStore.load([OUT / "keys" / "ca.crt"])
    assert verify_bundle(path, trust).verdict is Verdict.UNSUPPORTED_FORMAT
    named = verify_bundle(path, trust, fmt="detached")
    assert (named.verdict, named.format) == (Verdict.UNSIGNED, "detached")


def test_every_format_has_tampering_variants() -> None:
    for fmt in ("fit", "rauc", "mender", "swupdate", "detached"):
        verdicts = {c["verdict"] for c in CASES if c["format"] == fmt or c["path"].startswith(f"{fmt}/")}
        untouched = "unsupported_format" if fmt == "detached" else "unsigned"  # a plain file is no format
        assert {"valid", "invalid_signature", untouched} <= verdicts, fmt
        assert verdicts & {"digest_mismatch", "invalid_signature"}, fmt
        assert verdicts & {"malformed", "invalid_signature"}, fmt


def test_fit_reports_uncovered_image() -> None:
    trust = TrustStore.load([OUT / "fit" / "ctl-rsa.dtb"])
    result = verify_bundle(OUT / "fit" / "image-outside-config.itb", trust)
    assert result.verdict is Verdict.PARTIALLY_SIGNED
    assert result.uncovered == (f"image ramdisk-1 ({_size('ramdisk-1')} bytes)",)
    assert any(c.startswith("image kernel-1") for c in result.covered)
    assert any(c.startswith("image fdt-1") for c in result.covered)


def _size(image: str) -> int:
    from cra_fw.parsers.fdt import Fdt

    with open(OUT / "fit" / "image-outside-config.itb", "rb") as fh:
        node = Fdt(fh).node(f"/images/{image}")
        assert node is not None
        return node.props["data"].size


def test_fit_unsigned_second_config_is_named() -> None:
    trust = TrustStore.load([OUT / "fit" / "ctl-rsa.dtb"])
    result = verify_bundle(OUT / "fit" / "unsigned-second-config.itb", trust)
    assert result.verdict is Verdict.PARTIALLY_SIGNED
    assert "configuration conf-2" in result.uncovered
    assert "configuration conf-1" in result.covered
    assert not any("kernel-1" in u for u in result.uncovered)  # conf-1 covers it


def test_fit_algorithm_mismatch_is_rejected_with_reason() -> None:
    trust = TrustStore.load([OUT / "fit" / "ctl-rsa.dtb"])
    result = verify_bundle(OUT / "fit" / "algo-mismatch.itb", trust)
    assert result.verdict is Verdict.INVALID_SIGNATURE
    assert "sha512,rsa2048" in result.reason and "sha256,rsa2048" in result.reason


def test_rauc_details() -> None:
    trust = TrustStore.load([OUT / "keys" / "ca.crt"])
    result = verify_bundle(OUT / "rauc" / "verity-rsa.raucb", trust)
    assert result.verdict is Verdict.VALID
    assert result.signer == "CN=signer-rsa,O=cra-fw test"
    assert "rauc-verity-sha256" in result.algorithms
    assert result.signed_at and result.cert_not_after.startswith("2098")
    assert "image rootfs: rootfs.ext4" in result.covered
    expired = verify_bundle(OUT / "rauc" / "expired.raucb", trust)
    assert expired.signer == "CN=expired signer,O=cra-fw test"
    assert expired.cert_not_after.startswith("2016-01-01")


def test_nothing_is_valid_without_trust() -> None:
    empty = TrustStore()
    for case in CASES:
        if case["verdict"] != "valid":
            continue
        sig = OUT / case["signature"] if case["signature"] else None
        result = verify_bundle(OUT / case["path"], empty, signature=sig)
        assert result.verdict is not Verdict.VALID, case["path"]
        assert not result.trusted
