"""`cra-fw verify` as a real subprocess: exit status, JSON, sidecars, errors without tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ..conftest import run_cli
from .helpers import OUT

pytestmark = pytest.mark.skipif(not (OUT / "expected.json").exists(), reason="bundle fixtures not built")


def test_valid_exits_zero_with_json() -> None:
    proc = run_cli("verify", str(OUT / "rauc/verity-ec.raucb"), "--trust", str(OUT / "keys/ca.crt"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["verdict"] == "valid"
    assert out["format"] == "rauc"
    assert out["signer"] == "CN=signer-ec,O=cra-fw test"
    assert "ecdsa-secp256r1" in out["algorithms"]
    assert out["uncovered"] == []


@pytest.mark.parametrize(
    "bundle,trust,verdict",
    [
        ("rauc/expired.raucb", "keys/ca.crt", "certificate_expired"),
        ("fit/image-outside-config.itb", "fit/ctl-rsa.dtb", "partially_signed"),
        ("mender/unsigned.mender", "keys/signer-rsa.pub.pem", "unsigned"),
        ("swupdate/truncated.swu", "keys/signer-rsa.pub.pem", "malformed"),
    ],
)
def test_not_valid_exits_one(bundle: str, trust: str, verdict: str) -> None:
    proc = run_cli("verify", str(OUT / bundle), "--trust", str(OUT / trust))
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].endswith(f": {verdict} ({bundle.split('/', maxsplit=1)[0]})")
    assert "Traceback" not in proc.stderr


def test_sidecar_signature_is_found_and_missing_means_unknown_not_unsigned(tmp_path: Path) -> None:
    f = tmp_path / "firmware.bin"
    shutil.copy(OUT / "detached/ms.bin", f)
    proc = run_cli("verify", str(f), "--trust", str(OUT / "keys/minisign.pub"), "--json")
    # a file of no known format without a signature beside it may carry one inside: not "unsigned"
    assert json.loads(proc.stdout)["verdict"] == "unsupported_format" and proc.returncode == 1
    proc = run_cli(
        "verify", str(f), "--format", "detached", "--trust", str(OUT / "keys/minisign.pub"), "--json"
    )
    assert json.loads(proc.stdout)["verdict"] == "unsigned" and proc.returncode == 1
    shutil.copy(OUT / "detached/ms.bin.minisig", tmp_path / "firmware.bin.minisig")
    proc = run_cli("verify", str(f), "--trust", str(OUT / "keys/minisign.pub"), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["verdict"] == "valid"


def test_explicit_signature_and_format() -> None:
    proc = run_cli(
        "verify",
        str(OUT / "detached/payload.bin"),
        "--signature",
        str(OUT / "detached/payload.bin.ecdsa-p384-sha384.sig"),
        "--trust",
        str(OUT / "keys/signer-ec384.pub.pem"),
        "--json",
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["algorithms"] == ["ecdsa-secp384r1-sha384"]
    # forcing the wrong format is malformed, never valid
    proc = run_cli(
        "verify",
        str(OUT / "rauc/plain-rsa.raucb"),
        "--format",
        "mender",
        "--trust",
        str(OUT / "keys/ca.crt"),
        "--json",
    )
    assert proc.returncode == 1 and json.loads(proc.stdout)["verdict"] == "malformed"


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    for args in (
        ["verify", str(tmp_path / "missing.bin"), "--trust", str(OUT / "keys/ca.crt")],
        ["verify", str(OUT / "rauc/plain-rsa.raucb"), "--trust", str(junk)],
        ["verify", str(OUT / "rauc/plain-rsa.raucb"), "--trust", str(OUT / "keys/ca.key")],
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2
        assert proc.stderr.startswith("cra-fw: error: ") and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr
