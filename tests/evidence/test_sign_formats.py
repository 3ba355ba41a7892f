"""`cra-fw sign --format openpgp|sigstore`: SBOMs and evidence packs checked by gpgv/sqv and by
sigstore-python's verifier, and accepted back by `cra-fw verify-evidence`."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.cli import main
from cra_fw.evidence.pack import write_pack
from cra_fw.jsonout import dumps
from cra_fw.report import cyclonedx
from cra_fw.vulns import vex

from ..bundles.test_sigstore import sigstore_cli
from .sample import sample_report


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """A scan's outputs (SBOM, VEX, report.json) from the real writers, and its evidence pack."""
    out = tmp_path_factory.mktemp("scan")
    report = sample_report()
    cyclonedx.write(report, out)
    vex.write(report, out)
    (out / "report.json").write_text(dumps(report))
    write_pack(out, report)
    return out


@pytest.fixture(scope="module")
def gpg_key(tmp_path_factory) -> dict[str, Path]:
    """An Ed25519 OpenPGP key made by gpg, protected by a password; its public part for gpgv."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = [
        _need("gpg"),
        "--homedir",
        str(home),
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "s3cret",
    ]
    subprocess.run(
        [*gpg, "--quick-gen-key", "Release Signing <release@example.org>", "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    secret = home / "secret.asc"
    secret.write_bytes(
        subprocess.run(
            [*gpg, "--armor", "--export-secret-keys", "release@example.org"], check=True, capture_output=True
        ).stdout
    )
    public = home / "public.gpg"
    public.write_bytes(
        subprocess.run([*gpg, "--export", "release@example.org"], check=True, capture_output=True).stdout
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)
    return {"secret": secret, "public": public, "home": home}


def _sign(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["sign", *args], env=env or {})


@pytest.mark.parametrize("member", ["sbom.cdx.json", "evidence.zip"])
def test_openpgp_signature_verifies_with_gpgv_sqv_and_verify_evidence(
    outputs, gpg_key, tmp_path, member
) -> None:
    target = tmp_path / member
    shutil.copy(outputs / member, target)
    res = _sign([str(target), "--key", str(gpg_key["secret"]), "--format", "openpgp"])
    assert res.exit_code == 2 and "--password-env" in res.output  # the key is protected
    res = _sign(
        [str(target), "--key", str(gpg_key["secret"]), "--format", "openpgp", "--password-env", "PW"],
        env={"PW": "s3cret"},
    )
    assert res.exit_code == 0, res.output
    sig = Path(str(target) + ".asc")
    assert sig.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    gpgv = subprocess.run(
        [_need("gpgv"), "--homedir", str(tmp_path), "--keyring", str(gpg_key["public"]), sig, target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        gpgv.returncode == 0 and 'Good signature from "Release Signing <release@example.org>"' in gpgv.stderr
    )
    sqv = subprocess.run(
        [_need("sqv"), "--keyring", str(gpg_key["public"]), sig, target], capture_output=True, check=False
    )
    assert sqv.returncode == 0
    res = CliRunner().invoke(
        main, ["verify-evidence", str(target), "--trust", str(gpg_key["public"]), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["verified"] and out["kind"] == ("evidence-pack" if member.endswith(".zip") else "file")
    # one changed byte: gpgv and cra-fw refuse
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    gpgv = subprocess.run(
        [_need("gpgv"), "--homedir", str(tmp_path), "--keyring", str(gpg_key["public"]), sig, target],
        capture_output=True,
        check=False,
    )
    assert gpgv.returncode != 0
    res = CliRunner().invoke(main, ["verify-evidence", str(target), "--trust", str(gpg_key["public"])])
    assert res.exit_code == 1 and "invalid_signature" in res.output


@pytest.fixture(scope="module")
def p256(tmp_path_factory) -> Path:
    key = tmp_path_factory.mktemp("ec") / "signer.pem"
    subprocess.run(
        [_need("openssl"), "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
        check=True,
    )
    return key


def _sigstore_python_accepts(artifact: Path, bundle: Path, root: Path, identity: str, issuer: str) -> bool:
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy

    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root)))
    try:
        verifier.verify_artifact(
            artifact.read_bytes(),
            Bundle.from_json(bundle.read_bytes()),
            policy.Identity(identity=identity, issuer=issuer),
        )
    except VerificationError:
        return False
    return True


@pytest.mark.parametrize("member", ["sbom.cdx.json", "evidence.zip"])
def test_sigstore_bundle_verifies_with_sigstore_python(outputs, p256, tmp_path, member) -> None:
    target = tmp_path / member
    shutil.copy(outputs / member, target)
    tlog = tmp_path / "tlog.jsonl"
    root = tmp_path / "trusted_root.json"
    ident, issuer = "release@example.org", "https://accounts.example.org"
    for i in range(5):  # earlier entries in the same log: the proof for the last one is a real path
        other = tmp_path / f"earlier-{i}.txt"
        other.write_text(f"earlier {i}\n")
        assert (
            _sign([str(other), "--key", str(p256), "--format", "sigstore", "--tlog", str(tlog)]).exit_code
            == 0
        )
    res = _sign(
        [
            str(target),
            "--key",
            str(p256),
            "--format",
            "sigstore",
            "--identity",
            ident,
            "--issuer",
            issuer,
            "--tlog",
            str(tlog),
            "--write-trust-root",
            str(root),
        ]
    )
    assert res.exit_code == 0, res.output
    bundle = Path(str(target) + ".sigstore.json")
    entry = json.loads(bundle.read_text())["verificationMaterial"]["tlogEntries"][0]
    assert entry["logIndex"] == "5" and entry["inclusionProof"]["treeSize"] == "6"
    assert len(entry["inclusionProof"]["hashes"]) == 2  # RFC 6962 path of leaf 5 in a 6-leaf tree
    assert _sigstore_python_accepts(target, bundle, root, ident, issuer)
    assert sigstore_cli(target, bundle, ident, issuer, root, tmp_path)
    assert not _sigstore_python_accepts(target, bundle, root, "mallory@example.org", issuer)
    res = CliRunner().invoke(main, ["verify-evidence", str(target), "--trust", str(root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["verified"]
    res = CliRunner().invoke(
        main,
        [
            "verify",
            str(target),
            "--trust-root",
            str(root),
            "--certificate-identity",
            ident,
            "--certificate-oidc-issuer",
            issuer,
        ],
    )
    assert res.exit_code == 0 and "valid (sigstore)" in res.output
    # changed after signing: every verifier refuses
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert not _sigstore_python_accepts(target, bundle, root, ident, issuer)
    res = CliRunner().invoke(main, ["verify-evidence", str(target), "--trust", str(root)])
    assert res.exit_code == 1 and "digest_mismatch" in res.output


def test_pack_member_changed_under_a_valid_openpgp_signature_is_caught(outputs, gpg_key, tmp_path) -> None:
    """verify-evidence still checks every member against the manifest after the signature."""
    pack = tmp_path / "evidence.zip"
    with zipfile.ZipFile(outputs / "evidence.zip") as src, zipfile.ZipFile(pack, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            # the pack holds exactly the outputs report.json lists (#13): here report.json itself
            if info.filename == "report.json":
                assert b"busybox" in data
                data = data.replace(b"busybox", b"BusyBox", 1)
            dst.writestr(info, data)
    res = _sign(
        [str(pack), "--key", str(gpg_key["secret"]), "--format", "openpgp", "--password-env", "PW"],
        env={"PW": "s3cret"},
    )
    assert res.exit_code == 0
    res = CliRunner().invoke(main, ["verify-evidence", str(pack), "--trust", str(gpg_key["public"])])
    assert res.exit_code == 1
    assert "ok   signature" in res.output and "FAIL member report.json" in res.output


def test_sigstore_needs_a_p256_key_and_options_need_the_format(outputs, tmp_path) -> None:
    ed = tmp_path / "ed.pem"
    subprocess.run([_need("openssl"), "genpkey", "-algorithm", "ed25519", "-out", str(ed)], check=True)
    res = _sign(
        [str(outputs / "sbom.cdx.json"), "--key", str(ed), "--format", "sigstore", "-o", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "P-256" in res.output
    res = _sign([str(outputs / "sbom.cdx.json"), "--key", str(ed), "--identity", "a@b.c"])
    assert res.exit_code == 2 and "--format sigstore" in res.output
