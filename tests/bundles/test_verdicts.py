"""Verdicts an auditor can write down (issue 13): each built here with the real tool, and where
the tool can judge, the tool is the referee.

- a file no verifier knows is `unsupported_format` (exit 1), saying what it looks like;
- RAUC crypt bundles: signed (payload verified encrypted, before any decryption) and
  encrypted for recipients (`encrypted` without --decrypt-key, verified with it);
- an RSA-1024 / SHA-1 chain that rauc and swupdate accept is `weak_algorithm` with the
  chain reported complete;
- a .swu whose first member is not sw-description is `malformed` (swupdate rejects it);
- a Mender artifact cut inside its end-of-archive blocks is `malformed` exactly when
  `mender-artifact validate` fails;
- `verify --json` gives the bundle's SHA-256 and the anchor; several bundles, one verdict each.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

from .helpers import OUT, need, run


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A strong CA and signer, a recipient, and an RSA-1024 CA that signs with SHA-1."""
    need("openssl")
    d = tmp_path_factory.mktemp("pki")
    for name, bits, md in (("ca", 2048, "sha256"), ("weak-ca", 1024, "sha1")):
        _openssl(
            "req",
            "-x509",
            "-newkey",
            f"rsa:{bits}",
            f"-{md}",
            "-nodes",
            "-keyout",
            d / f"{name}.key",
            "-out",
            d / f"{name}.pem",
            "-days",
            "3650",
            "-subj",
            f"/CN={name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign",
        )
    for name, ca, bits, md in (("signer", "ca", 2048, "sha256"), ("weak", "weak-ca", 1024, "sha1")):
        _openssl(
            "req",
            "-newkey",
            f"rsa:{bits}",
            "-nodes",
            "-keyout",
            d / f"{name}.key",
            "-out",
            d / f"{name}.csr",
            "-subj",
            f"/CN={name} signer",
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            d / f"{name}.csr",
            "-CA",
            d / f"{ca}.pem",
            "-CAkey",
            d / f"{ca}.key",
            "-CAcreateserial",
            f"-{md}",
            "-days",
            "3650",
            "-out",
            d / f"{name}.pem",
        )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        d / "recipient.key",
        "-out",
        d / "recipient.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=recipient",
    )
    (d / "recipient-both.pem").write_bytes(
        (d / "recipient.key").read_bytes() + (d / "recipient.pem").read_bytes()
    )
    return d


def verify(*args: str | Path) -> tuple[int, str, str]:
    proc = run_cli("verify", *map(str, args))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def verdict(*args: str | Path) -> dict:
    code, out, _err = verify("--json", *args)
    doc = json.loads(out)
    doc["_exit"] = code
    return doc


# ---------------------------------------------------------------- unsupported_format


@pytest.mark.parametrize(
    ("make", "looks"),
    [
        (lambda p: p.write_bytes(b"PK\x03\x04" + bytes(200)), "a zip archive"),
        (lambda p: p.write_bytes(bytes(range(256)) * 64), "binary data of no known update format"),
        (lambda p: p.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(100)), "an ELF executable"),
    ],
)
def test_a_format_no_verifier_knows_is_unsupported_not_unsigned(tmp_path, pki, make, looks):
    image = tmp_path / "firmware.bin"
    make(image)
    doc = verdict(image, "--trust", pki / "ca.pem")
    assert doc["verdict"] == "unsupported_format" and doc["_exit"] == 1
    assert looks in doc["reason"] and "unsigned" not in doc["reason"]


def test_a_detached_signature_beside_an_unknown_file_is_still_checked(tmp_path, pki):
    image = tmp_path / "firmware.bin"
    image.write_bytes(bytes(range(256)) * 64)
    _openssl("dgst", "-sha256", "-sign", pki / "signer.key", "-out", tmp_path / "firmware.bin.sig", image)
    _openssl("x509", "-in", pki / "signer.pem", "-pubkey", "-noout", "-out", tmp_path / "signer.pub")
    doc = verdict(image, "--trust", tmp_path / "signer.pub")
    assert doc["verdict"] == "valid" and doc["format"] == "detached"


# ---------------------------------------------------------------- RAUC crypt bundles


@pytest.fixture(scope="module")
def crypt(pki, tmp_path_factory) -> dict[str, Path]:
    need("rauc")
    d = tmp_path_factory.mktemp("crypt")
    content = d / "content"
    content.mkdir()
    (content / "rootfs.img").write_bytes(os.urandom(100_000))  # squashfs must exceed 4 KiB
    (content / "manifest.raucm").write_text(
        "[update]\ncompatible=cra-fw-test\nversion=1.0\n\n[bundle]\nformat=crypt\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n"
    )
    signed, encrypted = d / "signed.raucb", d / "encrypted.raucb"
    run("rauc", "bundle", "--cert", pki / "signer.pem", "--key", pki / "signer.key", content, signed)
    run("rauc", "encrypt", "--keyring", pki / "ca.pem", "--to", pki / "recipient.pem", signed, encrypted)
    assert signed.exists() and encrypted.exists()
    tampered = d / "tampered.raucb"
    data = bytearray(signed.read_bytes())
    data[5000] ^= 1  # inside the encrypted payload
    tampered.write_bytes(bytes(data))
    return {"signed": signed, "encrypted": encrypted, "tampered": tampered}


def test_rauc_crypt_bundle_is_verified_without_decrypting(crypt, pki):
    doc = verdict(crypt["signed"], "--trust", pki / "ca.pem")
    assert doc["verdict"] == "valid", doc["reason"]
    assert "encrypted squashfs payload" in " ".join(doc["covered"])
    assert run("rauc", "info", "--keyring", pki / "ca.pem", crypt["signed"]).returncode == 0  # referee
    bad = verdict(crypt["tampered"], "--trust", pki / "ca.pem")
    assert bad["verdict"] == "digest_mismatch"


def test_rauc_bundle_encrypted_for_recipients(crypt, pki):
    doc = verdict(crypt["encrypted"], "--trust", pki / "ca.pem")
    assert doc["verdict"] == "encrypted" and doc["_exit"] == 1
    assert "--decrypt-key" in doc["reason"]
    # rauc itself cannot read it without the key either
    assert run("rauc", "info", "--keyring", pki / "ca.pem", crypt["encrypted"]).returncode != 0
    doc = verdict(crypt["encrypted"], "--trust", pki / "ca.pem", "--decrypt-key", pki / "recipient-both.pem")
    assert doc["verdict"] == "valid", doc["reason"]
    assert doc["anchor"].startswith(str(pki / "ca.pem"))


# ---------------------------------------------------------------- weak chains


def test_rsa1024_sha1_chain_is_weak_and_complete_for_rauc(pki, tmp_path):
    need("rauc")
    content = tmp_path / "content"
    content.mkdir()
    (content / "rootfs.img").write_bytes(os.urandom(20_000))
    (content / "manifest.raucm").write_text(
        "[update]\ncompatible=cra-fw-test\nversion=1.0\n\n[bundle]\nformat=verity\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n"
    )
    bundle = tmp_path / "weak.raucb"
    run("rauc", "bundle", "--cert", pki / "weak.pem", "--key", pki / "weak.key", content, bundle)
    assert run("rauc", "info", "--keyring", pki / "weak-ca.pem", bundle).returncode == 0  # rauc accepts it
    doc = verdict(bundle, "--trust", pki / "weak-ca.pem")
    assert doc["verdict"] == "weak_algorithm", doc["reason"]
    assert "the chain is complete: CN=weak signer -> CN=weak-ca" in doc["reason"]
    assert doc["anchor"].startswith(str(pki / "weak-ca.pem"))


def _swu(d: Path, members: list[str]) -> Path:
    out = d / "update.swu"
    listing = "".join(f"{m}\n" for m in members)
    with open(out, "wb") as fh:
        subprocess.run(
            ["cpio", "-o", "-H", "crc", "--quiet"], input=listing.encode(), cwd=d, stdout=fh, check=True
        )
    return out


def _sw_description(d: Path) -> None:
    image = d / "image.bin"
    image.write_bytes(b"payload\n" * 100)
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    (d / "sw-description").write_text(
        f'software =\n{{\n\tversion = "1.0";\n\timages: (\n\t\t{{\n\t\t\tfilename = "image.bin";\n'
        f'\t\t\tdevice = "/dev/null";\n\t\t\tsha256 = "{sha}";\n\t\t}}\n\t);\n}}\n'
    )


def _signed_sw_description(d: Path, pki: Path, signer: str) -> None:
    """sw-description and its CMS signature (sw-description.sig) by ``signer``."""
    _sw_description(d)
    _openssl(
        "cms",
        "-sign",
        "-in",
        d / "sw-description",
        "-out",
        d / "sw-description.sig",
        "-signer",
        pki / f"{signer}.pem",
        "-inkey",
        pki / f"{signer}.key",
        "-outform",
        "DER",
        "-binary",
        "-nosmimecap",
        "-md",
        "sha256",
    )


def _swupdate_accepts_signature(swu: Path, ca: Path) -> bool:
    """swupdate -c checks the signature first; whatever fails later (no hardware file), a bad
    signature says so."""
    proc = run(need("swupdate"), "-c", "-i", swu, "-k", ca)
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return "Authentication of all signatures failed" not in text


def test_rsa1024_sha1_chain_is_weak_and_complete_for_swupdate(pki, tmp_path):
    need("cpio")
    _signed_sw_description(tmp_path, pki, "weak")
    swu = _swu(tmp_path, ["sw-description", "sw-description.sig", "image.bin"])
    assert _swupdate_accepts_signature(swu, pki / "weak-ca.pem")  # the referee takes the chain
    assert not _swupdate_accepts_signature(swu, pki / "ca.pem")  # and would say so if it did not
    doc = verdict(swu, "--trust", pki / "weak-ca.pem")
    assert doc["verdict"] == "weak_algorithm", doc["reason"]
    assert "chain is complete" in doc["reason"]


def test_swu_whose_first_member_is_not_sw_description_is_malformed(pki, tmp_path):
    need("cpio")
    _signed_sw_description(tmp_path, pki, "signer")
    swu = _swu(tmp_path, ["image.bin", "sw-description", "sw-description.sig"])
    renamed = swu.rename(tmp_path / "update.bin")  # no help from the file name
    doc = verdict(renamed, "--trust", pki / "ca.pem")
    assert doc["verdict"] == "malformed" and "first member" in doc["reason"]
    proc = run(need("swupdate"), "-c", "-i", renamed, "-k", pki / "ca.pem")
    assert proc.returncode != 0  # swupdate rejects it too


# ---------------------------------------------------------------- Mender end-of-archive


@pytest.mark.parametrize("cut", [1, 200, 511, 512, 513, 1023, 1024])
def test_mender_artifact_cut_in_its_end_blocks_agrees_with_mender_artifact(tmp_path, cut):
    src = OUT / "mender" / "valid-rsa.mender"
    key = OUT / "keys" / "signer-rsa.pub.pem"
    if not src.exists():
        pytest.skip("fixtures/bundles/out is missing")
    artifact = tmp_path / "cut.mender"
    artifact.write_bytes(src.read_bytes()[:-cut])
    theirs = run(need("mender-artifact"), "validate", "-k", key, artifact).returncode == 0
    doc = verdict(artifact, "--trust", key)
    assert theirs == (doc["verdict"] == "valid"), (cut, doc["verdict"], doc["reason"])
    if cut % 512:
        assert doc["verdict"] == "malformed" and "truncated" in doc["reason"]


# ---------------------------------------------------------------- --json, several bundles, terminal


def test_json_gives_sha256_and_anchor_and_one_verdict_per_bundle(crypt, pki, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"\x01" * 1000)
    code, out, _ = verify("--json", crypt["signed"], other, "--trust", pki / "ca.pem")
    docs = json.loads(out)
    assert [d["verdict"] for d in docs] == ["valid", "unsupported_format"]
    assert code == 1  # one bundle is not valid
    assert docs[0]["sha256"] == hashlib.sha256(crypt["signed"].read_bytes()).hexdigest()
    assert docs[0]["anchor"] == (
        f"{pki / 'ca.pem'}: certificate CN=ca (key {docs[0]['anchor'].rsplit('key ', 1)[1]}"
    )
    code, out, _ = verify(crypt["signed"], "--trust", pki / "ca.pem")
    assert code == 0 and "anchor:" in out and "sha256:" in out


def test_member_names_cannot_drive_the_terminal(tmp_path):
    """An OSC sequence in a Mender member name set the terminal's title."""
    import io
    import tarfile

    src = OUT / "mender" / "valid-rsa.mender"
    if not src.exists():
        pytest.skip("fixtures/bundles/out is missing")
    artifact = tmp_path / "evil.mender"
    with tarfile.open(src) as old, tarfile.open(artifact, "w", format=tarfile.GNU_FORMAT) as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member))
        extra = tarfile.TarInfo("x\x1b]0;pwned\x07")
        extra.size = 3
        new.addfile(extra, io.BytesIO(b"abc"))
    code, out, err = verify(artifact, "--trust", OUT / "keys" / "signer-rsa.pub.pem")
    assert code == 1
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "x?]0;pwned?" in out
