"""OpenPGP verification: fixtures made by gpg, refereed by Debian's gpgv and sqv."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.bundles import TrustStore, TrustStoreError, Verdict, verify_bundle
from cra_fw.cli import main

from .helpers import ROOT, need

OUT = ROOT / "fixtures" / "openpgp" / "out"


def cases() -> list[dict]:
    path = OUT / "expected.json"
    return json.loads(path.read_text()) if path.exists() else []


CASES = cases()
IDS = [c["case"] for c in CASES]


def ours(case: dict) -> Verdict:
    store = TrustStore.load([OUT / t for t in case["trust"]])
    sig = OUT / case["signature"] if case["signature"] else None
    return verify_bundle(OUT / case["data"], store, signature=sig).verdict


def test_every_construction_case_is_present() -> None:
    # the list: valid, tampered, wrong key, expired key, revoked key, expired signature,
    # SHA-1, subkey without signing flag (+ weak keys, inline and clear-signed forms)
    assert set(IDS) >= {
        "valid-detached-binary",
        "valid-inline",
        "valid-cleartext",
        "tampered",
        "wrong-key",
        "expired-key",
        "revoked-key",
        "expired-signature",
        "sha1",
        "rsa1024",
        "dsa1024",
        "nosign-subkey",
    }


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_verdict_matches_construction(case: dict) -> None:
    assert ours(case).value == case["verdict"], case["why"]


# ---- referees ---------------------------------------------------------------------------------

# gpgv's status line -> the verdict it means (gpgv has no weak-algorithm policy: GOODSIG on SHA-1)
_GPGV = {
    "GOODSIG": "valid",
    "BADSIG": "invalid_signature",
    "EXPSIG": "signature_expired",
    "EXPKEYSIG": "certificate_expired",
    "REVKEYSIG": "revoked",
    "NO_PUBKEY": "untrusted_signer",
}


def _keyring(case: dict, tmp: Path) -> Path:
    ring = tmp / "ring.gpg"
    with open(ring, "wb") as out:
        for t in case["trust"]:
            data = (OUT / t).read_bytes()
            if data.startswith(b"-----"):
                data = subprocess.run(
                    ["gpg", "--dearmor"], input=data, capture_output=True, check=True
                ).stdout
            out.write(data)
    return ring


def gpgv_verdict(case: dict, tmp: Path) -> str:
    args = [OUT / case["signature"], OUT / case["data"]] if case["signature"] else [OUT / case["data"]]
    proc = subprocess.run(
        [need("gpgv"), "--homedir", tmp, "--status-fd", "1", "--keyring", _keyring(case, tmp), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    status = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("[GNUPG:] ")]
    for word in ("BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY", "GOODSIG"):
        if word in status:
            return _GPGV[word]
    if "ERRSIG" in status and "Wrong key usage" in proc.stderr:
        return "untrusted_signer"  # the key may not sign: the certificate does not vouch for it
    return "error"


def sqv_accepts(case: dict, tmp: Path) -> bool | None:
    if not case["signature"]:
        return None  # sqv checks detached signatures only
    proc = subprocess.run(
        [need("sqv"), "--keyring", _keyring(case, tmp), OUT / case["signature"], OUT / case["data"]],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_referees_agree(case: dict, tmp_path: Path) -> None:
    verdict = ours(case).value
    gpgv = gpgv_verdict(case, tmp_path)
    sqv = sqv_accepts(case, tmp_path)
    # never valid where a referee refuses
    if verdict == "valid":
        assert gpgv == "valid" and sqv in (True, None)
    if sqv is not None:
        assert sqv == (verdict == "valid")
    if verdict == "weak_algorithm":
        # gpgv applies no algorithm policy; sqv (Sequoia's standard policy) refuses
        assert gpgv == "valid" and sqv is False
    else:
        assert gpgv == verdict


def test_sidecar_found_next_to_the_file_and_cli_exit(tmp_path: Path) -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing: run python fixtures/openpgp/build.py")
    firmware = tmp_path / "firmware.bin"
    shutil.copy(OUT / "data.txt", firmware)
    runner = CliRunner()
    res = runner.invoke(main, ["verify", str(firmware), "--trust", str(OUT / "keys/release.asc")])
    # no signature next to it and no format that carries one inside: not known to be signed
    assert res.exit_code == 1 and "unsupported_format" in res.output
    shutil.copy(OUT / "data.txt.sig", tmp_path / "firmware.bin.sig")  # gpg binary, named like minisign's
    res = runner.invoke(main, ["verify", str(firmware), "--trust", str(OUT / "keys/release.asc"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["format"] == "openpgp" and out["verdict"] == "valid"
    assert out["key_fingerprint"] == "openpgp:" + _primary_fpr(OUT / "keys/release.asc")
    assert out["signer"] == "Example Release <release@example.org>"
    res = runner.invoke(main, ["verify", str(firmware), "--trust", str(OUT / "keys/other.asc")])
    assert res.exit_code == 1 and "untrusted_signer" in res.output


def _primary_fpr(key: Path) -> str:
    out = subprocess.run(
        ["gpg", "--with-colons", "--show-keys", key], capture_output=True, text=True, check=True
    ).stdout
    return next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr:"))


def test_malformed_and_empty_signatures(tmp_path: Path) -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing")
    store = TrustStore.load([OUT / "keys/release.asc"])
    trunc = tmp_path / "trunc.asc"
    trunc.write_bytes((OUT / "data.txt.asc").read_bytes()[:200])
    v = verify_bundle(OUT / "data.txt", store, signature=trunc, fmt="openpgp")
    assert v.verdict is Verdict.MALFORMED
    flipped = tmp_path / "flipped.sig"
    raw = bytearray((OUT / "data.txt.sig").read_bytes())
    raw[-5] ^= 0xFF  # inside the RSA signature value
    flipped.write_bytes(bytes(raw))
    v = verify_bundle(OUT / "data.txt", store, signature=flipped)
    assert v.format == "openpgp" and v.verdict is Verdict.INVALID_SIGNATURE
    empty = tmp_path / "empty.asc"
    empty.write_bytes(b"")
    assert verify_bundle(OUT / "data.txt", store, signature=empty, fmt="openpgp").verdict is Verdict.UNSIGNED


def test_trust_store_reads_keyrings_and_refuses_secret_keys(tmp_path: Path) -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing")
    store = TrustStore.load([OUT / "keys/keyring.gpg"])
    assert len(store.openpgp) == 3 and not store.empty
    secret = tmp_path / "secret.asc"
    secret.write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n")
    with pytest.raises(TrustStoreError, match="PRIVATE"):
        TrustStore.load([secret])
    broken = tmp_path / "broken.asc"
    broken.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n")
    with pytest.raises(TrustStoreError):
        TrustStore.load([broken])


def test_no_openpgp_anchor_is_untrusted_not_valid() -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing")
    store = TrustStore.load([ROOT / "fixtures/generated/ca.crt"])  # an X.509 anchor only
    v = verify_bundle(OUT / "data.txt", store, signature=OUT / "data.txt.asc")
    assert v.verdict is Verdict.UNTRUSTED_SIGNER and "no OpenPGP certificate" in v.reason


def test_scan_verifies_signatures_shipped_next_to_files(tmp_path: Path) -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing")
    from cra_fw.bundles import scan_embedded

    from .test_embedded import tree_context

    root = tmp_path / "rootfs"
    (root / "opt/fw").mkdir(parents=True)
    shutil.copy(OUT / "data.txt", root / "opt/fw/modem.bin")
    shutil.copy(OUT / "data.txt.asc", root / "opt/fw/modem.bin.asc")
    shutil.copy(OUT / "data-tampered.txt", root / "opt/fw/radio.bin")
    shutil.copy(OUT / "data.txt.sig", root / "opt/fw/radio.bin.sig")
    shutil.copy(OUT / "data.txt", root / "opt/fw/plain.bin")  # no signature: not a bundle, no verdict
    result = scan_embedded(tree_context(root, trust=(OUT / "keys/release.asc",)))
    got = {v.path.split(":", 1)[1]: (v.format, v.verdict.value) for v in result.verdicts}
    assert got == {
        "/opt/fw/modem.bin": ("openpgp", "valid"),
        "/opt/fw/radio.bin": ("openpgp", "invalid_signature"),
    }
    bad = [f for f in result.findings if f.rule_id == "update.bundle-invalid-signature"]
    assert [f.location.path for f in bad] == ["/opt/fw/radio.bin"]


def test_a_detached_signature_named_gpg_is_not_taken_for_a_signed_message(tmp_path: Path) -> None:
    if not CASES:
        pytest.skip("fixtures/openpgp/out is missing")
    from cra_fw.bundles.detect import read_head_tail, sniff_bytes

    sig = tmp_path / "fw.bin.gpg"
    shutil.copy(OUT / "data.txt.sig", sig)  # binary detached signature, gpg's other suffix
    head, tail, size = read_head_tail(sig)
    assert sniff_bytes(head, tail, size, sig) is None
    shutil.copy(OUT / "data.txt", tmp_path / "fw.bin")  # ... but it makes fw.bin an OpenPGP-signed file
    head, tail, size = read_head_tail(tmp_path / "fw.bin")
    assert sniff_bytes(head, tail, size, tmp_path / "fw.bin") == "openpgp"
    v = verify_bundle(tmp_path / "fw.bin", TrustStore.load([OUT / "keys/release.asc"]))
    assert v.verdict is Verdict.VALID and "signature file: fw.bin.gpg" in v.notes
