"""Publicly known signing keys (signatures/keys): found in every format cra-fw verifies.

The signing side uses MCUboot's published default keys from ../shared/firmware-more/mcu/keys
(skipped when absent) with the real tools (imgtool, espsecure, openssl, mender-artifact, cpio);
the real images are the shared nRF5340/nRF9160 MCUboot images that MCUboot's default RSA key
signed (noted in the shared MANIFEST.tsv, checked there with an independent verifier).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle
from cra_fw.bundles.knownkeys import _entry, known_keys
from cra_fw.errors import SignatureDataError
from tests.mcu_tools import SHARED_MCU, esp32c3_app, mcuboot_image, tool

from .helpers import SHARED, need

KEYS = SHARED_MCU / "keys"
PAYLOAD = Path("/usr/bin/true").read_bytes()


def _shared_key(name: str) -> Path:
    path = KEYS / f"mcuboot-default-root-{name}.pem"
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared is not beside the clone)")
    return path


def _run(*cmd: str | Path, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, cwd=cwd, input=input, timeout=120)
    assert proc.returncode == 0, proc.stderr[-600:]
    return proc.stdout


def test_data_is_consistent() -> None:
    keys = known_keys()
    ids = {k.id for k in keys}
    assert {
        "mcuboot-root-rsa-2048",
        "mcuboot-root-ec-p256",
        "mcuboot-root-ed25519",
        "nrfutil-default-key",
    } <= ids
    assert all(k.published and k.project for k in keys)
    # the shared copies of MCUboot's published key files are the files the data names
    for k in keys:
        if k.id.startswith("mcuboot-root-") and (KEYS / f"mcuboot-default-{k.id[8:]}.pem").exists():
            text = (KEYS / f"mcuboot-default-{k.id[8:]}.pem").read_bytes()
            assert (
                hashlib.sha256(text).hexdigest()
                in Path(__file__).parents[2].joinpath("signatures/keys/known-signing-keys.toml").read_text()
            )


def test_a_wrong_hash_is_refused() -> None:
    k = known_keys()[0]
    from cryptography.hazmat.primitives import serialization

    pem = k.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    entry = {"id": "x", "name": "x", "project": "x", "published": "x", "public_key": pem.decode()}
    with pytest.raises(SignatureDataError, match="not the hash"):
        _entry({**entry, "spki_sha256": "0" * 64}, "test")
    assert _entry({**entry, "spki_sha256": k.spki_sha256}, "test").key is not None


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("nrf5340 app update", "nrf5340-nrf7002_ncs3.2.4_app_update_1.0.1.mcuboot.bin"),
        ("nrf9160 DFU zip payload", "nrf9160_thingy91_asset_tracker_v2_dfu_application.zip"),
    ],
)
def test_shared_images_signed_with_mcuboot_default_key(tmp_path: Path, name: str, path: str) -> None:
    src = SHARED_MCU / path
    if not src.exists():
        pytest.skip(f"{src} is not present")
    if src.suffix == ".zip":
        with zipfile.ZipFile(src) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            member = manifest["files"][0]["file"]
            src = tmp_path / member
            src.write_bytes(zf.read(member))
    v = verify_bundle(src, TrustStore())  # no --trust: the known key is found all the same
    assert (v.format, v.verdict) == ("mcuboot", Verdict.UNTRUSTED_SIGNER)
    assert v.known_key == "mcuboot-root-rsa-2048"
    assert "mcu-tools/mcuboot" in v.known_key_text
    # with the default key as the anchor it is valid, and still not ok
    pub = tmp_path / "default.pub.pem"
    pub.write_bytes(_run(need("openssl"), "pkey", "-in", _shared_key("rsa-2048"), "-pubout"))
    trusted = verify_bundle(src, TrustStore.load([pub]))
    assert trusted.verdict is Verdict.VALID and trusted.known_key == "mcuboot-root-rsa-2048"
    assert not trusted.ok


@pytest.mark.parametrize("path", ["nrf5340_ucritair_zephyr.signed.bin", "esp32_zephyr4.0_zephyr.signed.bin"])
def test_shared_hash_only_images_are_unsigned(path: str) -> None:
    src = SHARED_MCU / path
    if not src.exists():
        pytest.skip(f"{src} is not present")
    v = verify_bundle(src, TrustStore())
    assert (v.format, v.verdict, v.known_key) == ("mcuboot", Verdict.UNSIGNED, "")


@pytest.mark.parametrize("kind", ["ec-p256", "ed25519"])
def test_mcuboot_fixture_signed_with_default_key(tmp_path: Path, kind: str) -> None:
    key = _shared_key(kind)
    img = mcuboot_image(tmp_path, PAYLOAD, "-v", "1.0.0", "-k", str(key))
    v = verify_bundle(img, TrustStore())
    assert v.known_key == f"mcuboot-root-{kind}"


def test_esp_fixture_signed_with_default_key(tmp_path: Path) -> None:
    key = _shared_key("ec-p256")
    app = esp32c3_app(tmp_path / "app")
    out = tmp_path / "signed.bin"
    _run(tool("espsecure"), "sign-data", "--version", "2", "--keyfile", key, "--output", out, app)
    v = verify_bundle(out, TrustStore())
    assert (v.format, v.verdict, v.known_key) == (
        "esp-secure-boot",
        Verdict.UNTRUSTED_SIGNER,
        "mcuboot-root-ec-p256",
    )


def test_detached_raw_signature_by_default_key(tmp_path: Path) -> None:
    key = _shared_key("rsa-2048")
    data = tmp_path / "update.bin"
    data.write_bytes(PAYLOAD)
    _run(need("openssl"), "dgst", "-sha256", "-sign", key, "-out", tmp_path / "update.bin.sig", data)
    v = verify_bundle(data, TrustStore())
    assert (v.format, v.known_key) == ("detached", "mcuboot-root-rsa-2048")


def test_mender_artifact_signed_with_default_key(tmp_path: Path) -> None:
    key = _shared_key("rsa-2048")
    (tmp_path / "rootfs.img").write_bytes(PAYLOAD)
    out = tmp_path / "a.mender"
    _run(
        need("mender-artifact"), "write", "rootfs-image", "-f", tmp_path / "rootfs.img", "-n", "known-key",
        "-t", "board", "-o", out, "--compression", "none", "-k", key,
    )  # fmt: skip
    v = verify_bundle(out, TrustStore())
    assert (v.format, v.known_key) == ("mender", "mcuboot-root-rsa-2048")


def test_swupdate_signed_with_default_key(tmp_path: Path) -> None:
    key = _shared_key("rsa-2048")
    (tmp_path / "rootfs.ext4").write_bytes(PAYLOAD)
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    (tmp_path / "sw-description").write_text(
        'software =\n{\n    version = "1.0.0";\n    images: (\n        {\n            filename = "rootfs.ext4";\n'
        f'            device = "/dev/mmcblk0p2";\n            type = "raw";\n            sha256 = "{sha}";\n'
        "        }\n    );\n}\n"
    )
    _run(need("openssl"), "dgst", "-sha256", "-sign", key, "-out", tmp_path / "sw-description.sig",
         tmp_path / "sw-description")  # fmt: skip
    cpio = _run(need("cpio"), "-o", "--quiet", "-H", "newc", cwd=tmp_path,
                input=b"sw-description\nsw-description.sig\nrootfs.ext4\n")  # fmt: skip
    out = tmp_path / "u.swu"
    out.write_bytes(cpio)
    v = verify_bundle(out, TrustStore())
    assert (v.format, v.known_key) == ("swupdate", "mcuboot-root-rsa-2048")


def test_rauc_bundle_of_rauc_test_pki() -> None:
    bundle = SHARED / "rauc" / "good-bundle.raucb"
    if not bundle.exists():
        pytest.skip(f"{bundle} is not present")
    v = verify_bundle(bundle, TrustStore())
    assert v.format == "rauc" and v.known_key.startswith("rauc-test-")


def test_fresh_key_is_not_known(tmp_path: Path) -> None:
    key = tmp_path / "fresh.pem"
    _run(tool("imgtool"), "keygen", "-k", key, "-t", "ecdsa-p256")
    img = mcuboot_image(tmp_path, PAYLOAD, "-v", "1.0.0", "-k", str(key))
    v = verify_bundle(img, TrustStore())
    assert v.verdict is Verdict.UNTRUSTED_SIGNER and v.known_key == "" and v.known_key_text == ""
