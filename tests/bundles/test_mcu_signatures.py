"""MCUboot and ESP secure boot verdicts against the real tools (`imgtool verify`, `espsecure verify-signature`).

Every scheme gets five fixtures built at test time with the real tools: valid, tampered
(one payload byte flipped after signing), wrong key (signed with a second key, the first
one trusted), hash-only (no signature: `imgtool sign` without a key, an `esptool
elf2image` image without a signature sector) and truncated (last 100 bytes cut).  The
expected verdicts come from that construction; the referee must accept exactly the
images whose signature cra-fw finds verifying.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle
from tests.mcu_tools import esp32c3_app, imgtool_key, mcuboot_image, tool

# a real third-party binary as the MCUboot payload (Debian coreutils), as the bundle fixtures use
PAYLOAD = Path("/usr/bin/true").read_bytes()
MCUBOOT_SCHEMES = ("rsa-2048", "rsa-3072", "ecdsa-p256", "ecdsa-p384", "ed25519")
ESP_V2_SCHEMES = ("rsa3072", "ecdsa256", "ecdsa192", "ecdsa384")
VARIANTS = ("valid", "tampered", "wrong-key", "hash-only", "truncated")
# the signature verifies: the referee accepts; cra-fw says valid, or weak_algorithm for P-192
VERIFIES = {Verdict.VALID, Verdict.WEAK_ALGORITHM}


@dataclass(frozen=True)
class Case:
    scheme: str  # "mcuboot:rsa-2048", "esp-v2:ecdsa256", "esp-v1:ecdsa256"
    variant: str
    image: Path
    trust: Path  # public key (PEM) the referee and cra-fw are given
    expected: Verdict


def _run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=120, check=False)


def _ok(*cmd: str | Path) -> None:
    proc = _run(*cmd)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-500:]!r} {proc.stderr[-500:]!r}"


def _flip(src: Path, dst: Path, offset: int) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def _truncate(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[:-100])
    return dst


def _mcuboot_cases(root: Path, kind: str) -> list[Case]:
    work = root / f"mcuboot-{kind}"
    key, other = imgtool_key(work, kind), imgtool_key(work / "other", kind)
    pub = work / f"{kind}.pub.pem"
    proc = _run(tool("imgtool"), "getpub", "-k", key, "-e", "pem")
    assert proc.returncode == 0
    pub.write_bytes(proc.stdout)
    args = ("-v", "1.2.3+4", "-s", "7")
    valid = mcuboot_image(work, PAYLOAD, *args, "-k", str(key), name="valid.bin")
    wrong = mcuboot_image(work, PAYLOAD, *args, "-k", str(other), name="wrong-key.bin")
    hash_only = mcuboot_image(work, PAYLOAD, *args, name="hash-only.bin")
    s = f"mcuboot:{kind}"
    return [
        Case(s, "valid", valid, pub, Verdict.VALID),
        Case(s, "tampered", _flip(valid, work / "tampered.bin", 0x200 + 100), pub, Verdict.DIGEST_MISMATCH),
        Case(s, "wrong-key", wrong, pub, Verdict.UNTRUSTED_SIGNER),
        Case(s, "hash-only", hash_only, pub, Verdict.UNSIGNED),
        Case(s, "truncated", _truncate(valid, work / "truncated.bin"), pub, Verdict.MALFORMED),
    ]


def _esp_key(work: Path, version: str, scheme: str, name: str) -> tuple[Path, Path]:
    key, pub = work / f"{name}.pem", work / f"{name}.pub.pem"
    if not key.exists():
        args = ["--scheme", scheme] if version == "2" else []
        _ok(tool("espsecure"), "generate-signing-key", "--version", version, *args, key)
        _ok(tool("espsecure"), "extract-public-key", "--version", "2", "--keyfile", key, pub)
    return key, pub


def _esp_cases(root: Path, app: Path, version: str, scheme: str) -> list[Case]:
    work = root / f"esp-v{version}-{scheme}"
    work.mkdir(parents=True, exist_ok=True)
    key, pub = _esp_key(work, version, scheme, "key")
    other, _ = _esp_key(work, version, scheme, "other")

    def sign(with_key: Path, name: str) -> Path:
        out = work / name
        _ok(tool("espsecure"), "sign-data", "--version", version, "--keyfile", with_key, "--output", out, app)
        return out

    valid, wrong = sign(key, "valid.bin"), sign(other, "wrong-key.bin")
    s = f"esp-v{version}:{scheme}"
    signed = Verdict.WEAK_ALGORITHM if scheme == "ecdsa192" else Verdict.VALID
    # Secure Boot v1 names no key: a signature by another key does not verify (as raw signatures)
    wrong_verdict = Verdict.UNTRUSTED_SIGNER if version == "2" else Verdict.INVALID_SIGNATURE
    return [
        Case(s, "valid", valid, pub, signed),
        Case(s, "tampered", _flip(valid, work / "tampered.bin", 24 + 8 + 40), pub, Verdict.DIGEST_MISMATCH),
        Case(s, "wrong-key", wrong, pub, wrong_verdict),
        Case(s, "hash-only", app, pub, Verdict.UNSIGNED),
        Case(s, "truncated", _truncate(valid, work / "truncated.bin"), pub, Verdict.MALFORMED),
    ]


def build(root: Path, scheme: str) -> list[Case]:
    prefix, kind = scheme.split(":")
    if prefix == "mcuboot":
        return _mcuboot_cases(root, kind)
    app = esp32c3_app(root / "esp-app", ("cra-fw secure boot fixture",))
    return _esp_cases(root, app, prefix.removeprefix("esp-v"), kind)


def referee_accepts(case: Case) -> bool:
    if case.scheme.startswith("mcuboot:"):
        return _run(tool("imgtool"), "verify", "-k", case.trust, case.image).returncode == 0
    version = "2" if case.scheme.startswith("esp-v2:") else "1"
    proc = _run(
        tool("espsecure"), "verify-signature", "--version", version, "--keyfile", case.trust, case.image
    )
    return proc.returncode == 0


SCHEMES = (
    *(f"mcuboot:{k}" for k in MCUBOOT_SCHEMES),
    *(f"esp-v2:{k}" for k in ESP_V2_SCHEMES),
    "esp-v1:ecdsa256",
)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_verdicts_match_referee(tmp_path: Path, scheme: str) -> None:
    """One scheme, its five variants (built once per scheme: tests run in parallel workers)."""
    cases = build(tmp_path, scheme)
    assert [c.variant for c in cases] == list(VARIANTS)
    rows = []
    for case in cases:
        verdict = verify_bundle(case.image, TrustStore.load([case.trust]))
        referee = referee_accepts(case)
        rows.append((case.variant, referee, verdict.verdict, case.expected, verdict.reason))
        assert verdict.format == ("mcuboot" if case.scheme.startswith("mcuboot") else "esp-secure-boot")
        assert not verdict.known_key  # fresh keys are nobody else's
    wrong = [r for r in rows if r[2] is not r[3] or r[1] is not (r[2] in VERIFIES)]
    assert not wrong, "\n".join(
        f"{v}: referee {'accepts' if a else 'refuses'}, cra-fw {g.value} ({why}), expected {e.value}"
        for v, a, g, e, why in wrong
    )
