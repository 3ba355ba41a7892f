"""Sigstore bundles: real public ones and tampered variants, each verdict next to `sigstore verify`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle
from cra_fw.bundles.sigstore import public_good_root

from .helpers import ROOT

PUBLIC = ROOT / "fixtures" / "sigstore" / "public"
STAGING_ROOT = PUBLIC / "staging-trusted_root.json"
GITHUB = "https://github.com/login/oauth"


def _signing_config(instance: str) -> dict:
    import sigstore

    store = Path(sigstore.__file__).parent / "_store" / instance
    return json.loads((store / "signing_config.v0.2.json").read_text())


def trust_config(root: Path, tmp: Path) -> Path:
    """A sigstore --trust-config file around ``root`` (the CLI takes no bare trusted root)."""
    cfg = tmp / f"{root.stem}-config.json"
    cfg.write_text(
        json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                "trustedRoot": json.loads(root.read_text()),
                "signingConfig": _signing_config("https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"),
            }
        )
    )
    return cfg


def sigstore_cli(
    artifact: Path, bundle: Path, identity: str, issuer: str, root: Path | None, tmp: Path
) -> bool:
    """`sigstore verify identity --offline`: True when it accepts."""
    cli = Path(sys.executable).with_name("sigstore")
    if not cli.exists():
        pytest.skip("the sigstore CLI is not installed (pip install sigstore)")
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    pre = ["--trust-config", str(trust_config(root, tmp))] if root else []
    proc = subprocess.run(
        [
            cli,
            *pre,
            "verify",
            "identity",
            "--offline",
            "--bundle",
            bundle,
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            issuer,
            artifact,
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CACHE_HOME": str(home)},
    )
    return proc.returncode == 0


def ours(artifact: Path, bundle: Path, identity: str, issuer: str, root: Path | None) -> Verdict:
    store = TrustStore.load([root] if root else [])
    store.identities = [(identity, issuer)] if identity else []
    return verify_bundle(artifact, store, signature=bundle).verdict


# name, artifact, bundle, identity, issuer, root (None = public-good)
REAL = [
    (
        "v0.3-rekor-v1-staging",
        "bundle_v3.txt",
        "bundle_v3.txt.sigstore",
        "william@yossarian.net",
        STAGING_ROOT,
    ),
    (
        "v0.3-rekor-v2-tsa-staging",
        "staging-rekor-v2.txt",
        "staging-rekor-v2.txt.sigstore.json",
        "jku@goto.fi",
        STAGING_ROOT,
    ),
    ("v0.3-public-good", "new_bundle.txt", "new_bundle.txt.sigstore.json", "aryadeeptade@gmail.com", None),
]


def _variant(kind: str, case: tuple, tmp: Path) -> tuple[Path, Path, str, str, Path | None, str]:
    """A tampered copy of a real bundle case; returns inputs and the verdict construction implies."""
    _name, artifact, bundle, identity, root = case
    art, bun = tmp / artifact, tmp / bundle
    shutil.copy(PUBLIC / artifact, art)
    shutil.copy(PUBLIC / bundle, bun)
    expect = "valid"
    if kind == "artifact-changed":
        art.write_bytes(art.read_bytes() + b"x")
        expect = "digest_mismatch"
    elif kind == "other-identity":
        identity = "mallory@example.com"
        expect = "untrusted_signer"
    elif kind == "other-root":  # the staging bundle against the public-good root, and vice versa
        root = None if root is not None else STAGING_ROOT
        expect = "untrusted_signer"
    elif kind == "signature-changed":
        doc = json.loads(bun.read_text())
        sig = bytearray(base64.b64decode(doc["messageSignature"]["signature"]))
        sig[-3] ^= 0x01
        doc["messageSignature"]["signature"] = base64.b64encode(bytes(sig)).decode()
        bun.write_text(json.dumps(doc))
        expect = "invalid_signature"
    elif kind == "proof-hash-changed":
        doc = json.loads(bun.read_text())
        proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        first = bytearray(base64.b64decode(proof["hashes"][0]))
        first[0] ^= 0x01
        proof["hashes"][0] = base64.b64encode(bytes(first)).decode()
        bun.write_text(json.dumps(doc))
        expect = "invalid_signature"
    elif kind == "checkpoint-changed":
        doc = json.loads(bun.read_text())
        proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        lines = proof["checkpoint"]["envelope"].split("\n")
        lines[1] = str(int(lines[1]) + 1)  # the signed tree size
        proof["checkpoint"]["envelope"] = "\n".join(lines)
        bun.write_text(json.dumps(doc))
        expect = "invalid_signature"
    return art, bun, identity, GITHUB, root, expect


KINDS = [
    "as-published",
    "artifact-changed",
    "other-identity",
    "other-root",
    "signature-changed",
    "proof-hash-changed",
    "checkpoint-changed",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", REAL, ids=[c[0] for c in REAL])
def test_real_bundle_verdicts_equal_sigstore_verify(case, kind, tmp_path: Path) -> None:
    art, bun, identity, issuer, root, expect = _variant(kind, case, tmp_path)
    verdict = ours(art, bun, identity, issuer, root)
    assert verdict.value == expect
    assert sigstore_cli(art, bun, identity, issuer, root, tmp_path) == (verdict is Verdict.VALID)


def test_public_good_root_without_identity_is_not_valid(tmp_path: Path) -> None:
    v = verify_bundle(
        PUBLIC / "new_bundle.txt", TrustStore(), signature=PUBLIC / "new_bundle.txt.sigstore.json"
    )
    assert v.verdict is Verdict.UNTRUSTED_SIGNER
    assert "--certificate-identity" in v.reason and "aryadeeptade@gmail.com" in v.reason


def test_sidecar_is_found_and_details_reported() -> None:
    store = TrustStore.load([STAGING_ROOT])
    store.identities = [("william@yossarian.net", GITHUB)]
    v = verify_bundle(PUBLIC / "bundle_v3.txt", store)  # bundle_v3.txt.sigstore next to it
    assert v.format == "sigstore" and v.verdict is Verdict.VALID
    assert v.signer == "william@yossarian.net (issuer https://github.com/login/oauth)"
    assert v.signed_at == "2024-04-02T19:19:09+00:00"  # integratedTime 1712085549
    assert v.covered == ("bundle_v3.txt (109 bytes, sha256 5e6ae9de58c1177b...)",)


def test_shipped_public_good_root_is_the_package_file() -> None:
    doc = json.loads(public_good_root())
    assert doc["mediaType"].startswith("application/vnd.dev.sigstore.trustedroot")
    assert any("rekor.sigstore.dev" in t["baseUrl"] for t in doc["tlogs"])


@pytest.mark.parametrize(
    ("content", "verdict"),
    [
        (b"{}", "malformed"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', "malformed"),
        (b"\x00" * 10, "malformed"),
    ],
)
def test_hostile_bundles_are_malformed_not_tracebacks(tmp_path: Path, content: bytes, verdict: str) -> None:
    art = tmp_path / "a.txt"
    art.write_text("x")
    bun = tmp_path / "a.txt.sigstore.json"
    bun.write_bytes(content)
    v = verify_bundle(art, TrustStore.load([STAGING_ROOT]), signature=bun, fmt="sigstore")
    assert v.verdict.value == verdict


def test_key_based_bundle_checked_against_the_trusted_key(tmp_path: Path) -> None:
    """cosign-style key bundle (publicKey hint, no certificate): sigstore-python cannot verify these."""
    import hashlib

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    art = tmp_path / "fw.bin"
    shutil.copy("/usr/share/common-licenses/Apache-2.0", art)
    digest = hashlib.sha256(art.read_bytes()).digest()
    sig = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "release-key"}, "tlogEntries": []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(digest).decode()},
            "signature": base64.b64encode(sig).decode(),
        },
    }
    bun = tmp_path / "fw.bin.sigstore.json"
    bun.write_text(json.dumps(bundle))
    v = verify_bundle(art, TrustStore.load([pub]))
    assert v.verdict is Verdict.VALID and "no transparency-log entry" in " ".join(v.notes)
    other = tmp_path / "other.pub"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert verify_bundle(art, TrustStore.load([other])).verdict is Verdict.INVALID_SIGNATURE
    art.write_bytes(art.read_bytes() + b"\n")
    assert verify_bundle(art, TrustStore.load([pub])).verdict is Verdict.DIGEST_MISMATCH
