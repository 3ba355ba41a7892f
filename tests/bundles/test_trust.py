"""Trust anchors in every accepted form, and refusal of unusable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, TrustStoreError, Verdict, verify_bundle

from .helpers import OUT, need, run


def test_pem_certificate_bundle_and_der(tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes((OUT / "keys/ca.crt").read_bytes() + (OUT / "keys/other-ca.crt").read_bytes())
    assert len(TrustStore.load([both]).certificates) == 2
    der = tmp_path / "ca.der"
    run(need("openssl"), "x509", "-in", OUT / "keys/ca.crt", "-outform", "DER", "-out", der)
    store = TrustStore.load([der])
    assert len(store.certificates) == 1
    assert verify_bundle(OUT / "rauc/plain-rsa.raucb", store).verdict is Verdict.VALID


def test_openssh_key(tmp_path: Path) -> None:
    pub = tmp_path / "id.pub"
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key((OUT / "keys/signer-ed25519.pub.pem").read_bytes())
    pub.write_bytes(
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        + b" release@vendor\n"
    )
    store = TrustStore.load([pub])
    assert len(store.keys) == 1
    sig = OUT / "detached/payload.bin.ed25519.sig"
    assert verify_bundle(OUT / "detached/payload.bin", store, signature=sig).verdict is Verdict.VALID


def test_minisign_and_signify_keys_carry_key_ids() -> None:
    ms = TrustStore.load([OUT / "keys/minisign.pub"]).keys[0]
    sf = TrustStore.load([OUT / "keys/signify.pub"]).keys[0]
    assert len(ms.key_id) == 8 and len(sf.key_id) == 8 and ms.key_id != sf.key_id


def test_uboot_dtb_keys() -> None:
    keys = TrustStore.load([OUT / "fit/ctl-rsa.dtb"]).keys
    assert [(k.name, k.uboot_algo, k.uboot_required) for k in keys] == [("dev", "sha256,rsa2048", "conf")]
    rsa = TrustStore.load([OUT / "keys/signer-rsa.pub.pem"]).keys[0]
    assert keys[0].fingerprint == rsa.fingerprint
    ec = TrustStore.load([OUT / "fit/ctl-ec.dtb"]).keys
    assert ec[0].fingerprint == TrustStore.load([OUT / "keys/signer-ec.pub.pem"]).keys[0].fingerprint


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "holds no certificate"),
        (b"garbage\x00\x01", "holds no certificate"),
        (b"\xd0\x0d\xfe\xed" + b"\0" * 60, "unreadable device tree"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "t"
    f.write_bytes(content)
    with pytest.raises(TrustStoreError, match=message):
        TrustStore.load([f])


def test_private_key_is_refused() -> None:
    with pytest.raises(TrustStoreError, match="PRIVATE key"):
        TrustStore.load([OUT / "keys/signer-rsa.key"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="cannot read"):
        TrustStore.load([tmp_path / "nope.pem"])
