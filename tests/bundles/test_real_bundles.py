"""Third-party bundles from /work/shared/firmware (skipped when absent), and RAUC-built bundles
large enough to need a multi-level dm-verity tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle

from .helpers import OUT, SHARED, need, run

RAUC = SHARED / "rauc"
MENDER = SHARED / "mender"


def _need_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


@pytest.mark.parametrize("name", ["good-bundle.raucb", "good-verity-bundle.raucb"])
def test_upstream_rauc_bundles_valid_and_rauc_agrees(name: str) -> None:
    bundle = _need_file(RAUC / name)
    keyring = _need_file(RAUC / "keys" / "dev-ca.pem")
    result = verify_bundle(bundle, TrustStore.load([keyring]))
    assert result.verdict is Verdict.VALID, result.reason
    assert result.format == "rauc"
    assert result.signer == "CN=Test Org Release-1,O=Test Org"
    assert run(need("rauc"), "info", "--keyring", keyring, bundle).returncode == 0


@pytest.mark.parametrize("name", ["good-bundle.raucb", "good-verity-bundle.raucb"])
def test_upstream_rauc_bundles_untrusted_with_our_ca(name: str) -> None:
    bundle = _need_file(RAUC / name)
    result = verify_bundle(bundle, TrustStore.load([OUT / "keys" / "ca.crt"]))
    assert result.verdict is Verdict.UNTRUSTED_SIGNER
    assert run(need("rauc"), "info", "--keyring", OUT / "keys" / "ca.crt", bundle).returncode != 0


def test_upstream_rauc_verity_tampered(tmp_path: Path) -> None:
    bundle = _need_file(RAUC / "good-verity-bundle.raucb")
    data = bytearray(bundle.read_bytes())
    data[5000] ^= 0x40
    bad = tmp_path / "bad.raucb"
    bad.write_bytes(bytes(data))
    result = verify_bundle(bad, TrustStore.load([RAUC / "keys" / "dev-ca.pem"]))
    assert result.verdict is Verdict.DIGEST_MISMATCH


def test_upstream_mender_artifact() -> None:
    artifact = _need_file(MENDER / "a0-signed-nitro.mender")
    key = _need_file(MENDER / "ec.pem")
    result = verify_bundle(artifact, TrustStore.load([key]))
    # Signed through a PKCS#11 HSM, which yields an ASN.1 DER ECDSA signature; newer
    # mender-artifact accepts both encodings (Debian's 3.9 only raw r||s).
    assert result.verdict is Verdict.VALID, result.reason
    assert result.algorithms == ("ecdsa-secp256r1-sha256-der",)
    assert set(result.covered) == {"manifest", "version", "header.tar.gz", "data/0000/empty-file"}
    other = verify_bundle(artifact, TrustStore.load([OUT / "keys" / "signer-ec.pub.pem"]))
    assert other.verdict is Verdict.INVALID_SIGNATURE


def test_multilevel_verity_tree_from_rauc(tmp_path: Path) -> None:
    """1.5 MiB of incompressible payload: 3 levels of hash blocks, checked against rauc's own tree."""
    need("rauc")
    need("mksquashfs")
    src = tmp_path / "in"
    src.mkdir()
    run("dd", "if=/dev/urandom", f"of={src / 'rootfs.img'}", "bs=1024", "count=1536")
    (src / "manifest.raucm").write_text(
        "[update]\ncompatible=cra-fw-test\nversion=2\n\n[bundle]\nformat=verity\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n"
    )
    keys = OUT / "keys"
    bundle = tmp_path / "big.raucb"
    proc = run(
        "rauc", "bundle", "--cert", keys / "signer-rsa.crt", "--key", keys / "signer-rsa.key", src, bundle
    )
    assert proc.returncode == 0, proc.stderr
    trust = TrustStore.load([keys / "ca.crt"])
    result = verify_bundle(bundle, trust)
    assert result.verdict is Verdict.VALID, result.reason
    tree = [c for c in result.covered if c.startswith("dm-verity hash tree")]
    assert tree and int(tree[0].split("(")[1].split()[0]) > 4096 * 3  # more than one level
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "bad.raucb"
    bad.write_bytes(bytes(data))
    assert verify_bundle(bad, trust).verdict is Verdict.DIGEST_MISMATCH
    shutil.rmtree(src)
