"""Keys, certificates and tokens: generated with real libraries/tools, planted in real trees."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from cra_fw.checks import run
from cra_fw.checks.secrets import shannon
from cra_fw.context import ScanOptions

from .conftest import DATA, tree_context, write_tree

ROOT = DATA.parents[2]

NOW = dt.datetime.now(dt.UTC)


def spki_fp(key) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def cert(key, *, issuer_key=None, cn="device.local", issuer_cn=None, start=None, end=None, algo=None):
    issuer_key = issuer_key or key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start or NOW - dt.timedelta(days=10))
        .not_valid_after(end or NOW + dt.timedelta(days=3650))
    )
    return builder.sign(issuer_key, algo or hashes.SHA256())


def pem(c) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(65537, 2048),
        "rsa1024": rsa.generate_private_key(65537, 1024),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "ca": rsa.generate_private_key(65537, 2048),
    }


def test_private_keys_in_files_and_binaries(tmp_path, keys):
    nopw = serialization.NoEncryption()
    rsa_pem = keys["rsa"].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, nopw
    )
    enc_pem = keys["rsa"].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"vendor-pass"),
    )
    ed_pem = keys["ed"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopw)
    ec_der = keys["ec"].private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, nopw
    )
    elf = (DATA / "debian" / "true-armhf").read_bytes()
    p12 = pkcs12.serialize_key_and_certificates(b"dev", keys["ec"], cert(keys["ec"]), None, nopw)
    root = write_tree(
        tmp_path,
        {
            "/etc/ssl/private/server.key": rsa_pem,
            "/etc/vendor/backup.key": enc_pem,
            "/etc/vendor/sign.pem": ed_pem,
            "/usr/bin/updater": elf + b"\0\0" + ec_der + b"\0",
            "/etc/vendor/device.p12": p12,
            "/usr/share/doc/example/README": "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n",
        },
    )
    result = run(tree_context(root), only=("secrets",))
    got = sorted(
        (f.rule_id, f.location.path, f.location.line, f.location.offset, f.severity.value)
        for f in result.findings
    )
    assert got == sorted(
        [
            ("secrets.private-key", "/etc/ssl/private/server.key", 1, None, "high"),
            ("secrets.private-key", "/etc/vendor/backup.key", 1, None, "medium"),
            ("secrets.private-key", "/etc/vendor/sign.pem", 1, None, "high"),
            ("secrets.private-key", "/usr/bin/updater", None, len(elf) + 2, "high"),
            ("secrets.pkcs12", "/etc/vendor/device.p12", None, 0, "high"),
        ]
    )
    by_path = {f.location.path: f for f in result.findings}
    assert by_path["/etc/ssl/private/server.key"].fingerprint == spki_fp(keys["rsa"])
    assert by_path["/usr/bin/updater"].fingerprint == spki_fp(keys["ec"])
    assert by_path["/etc/vendor/sign.pem"].extra["algorithm"] == "Ed25519"
    assert "RSA 2048-bit" in by_path["/etc/ssl/private/server.key"].evidence
    for f in result.findings:
        assert f.cra_reference == ("Annex I Part I (2)(d)", "Annex I Part I (2)(e)")
        assert "BEGIN" not in f.evidence and "secret" not in f.extra
    shown = run(tree_context(root, ScanOptions(workers=1, show_secrets=True)), only=("secrets",))
    server = next(f for f in shown.findings if f.location.path == "/etc/ssl/private/server.key")
    assert server.extra["secret"].encode() == rsa_pem.strip()


@pytest.mark.skipif(
    shutil.which("ssh-keygen") is None or shutil.which("dropbearkey") is None,
    reason="ssh-keygen (openssh-client) and dropbearkey (dropbear-bin) needed",
)
def test_ssh_and_dropbear_host_keys(tmp_path):
    keys = tmp_path / "gen"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")], check=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(keys / "user")], check=True
    )
    subprocess.run(
        ["dropbearkey", "-t", "ecdsa", "-s", "256", "-f", str(keys / "db")], check=True, capture_output=True
    )
    root = write_tree(
        tmp_path / "fs",
        {
            "/etc/ssh/ssh_host_ed25519_key": (keys / "host").read_bytes(),
            "/etc/ssh/ssh_host_ed25519_key.pub": (keys / "host.pub").read_bytes(),
            "/home/admin/.ssh/id_ed25519": (keys / "user").read_bytes(),
            "/etc/dropbear/dropbear_ecdsa_host_key": (keys / "db").read_bytes(),
        },
    )
    result = run(tree_context(root), only=("secrets",))
    got = sorted((f.rule_id, f.location.path, f.severity.value) for f in result.findings)
    assert got == sorted(
        [
            ("secrets.host-key", "/etc/ssh/ssh_host_ed25519_key", "high"),
            ("secrets.private-key", "/home/admin/.ssh/id_ed25519", "medium"),  # passphrase-protected
            ("secrets.host-key", "/etc/dropbear/dropbear_ecdsa_host_key", "high"),
        ]
    )


def test_certificates(tmp_path, keys):
    # openssl-made certificates of the fixture generator: a self-signed CA, an expired leaf and an
    # RSA-1024/SHA-1 leaf (cryptography refuses to sign with SHA-1 nowadays)
    gen = ROOT / "fixtures" / "generated"
    if not (gen / "weak-rsa1024-sha1.crt").exists():
        pytest.skip("fixtures/generated certificates missing")
    future = cert(
        keys["ec"],
        issuer_key=keys["ca"],
        issuer_cn="Vendor Root CA",
        start=NOW + dt.timedelta(days=30),
        end=NOW + dt.timedelta(days=400),
    )
    leaf_ok = cert(keys["rsa"], issuer_key=keys["ca"], cn="device.local", issuer_cn="Vendor Root CA")
    bundle = b"".join(pem(cert(keys["ec"], cn=f"Root {i}", end=NOW - dt.timedelta(days=1))) for i in range(4))
    root = write_tree(
        tmp_path,
        {
            "/etc/ssl/certs/device.pem": pem(leaf_ok),
            "/etc/old.crt": (gen / "expired.crt").read_bytes(),
            "/etc/cloud.pem": (gen / "weak-rsa1024-sha1.crt").read_bytes(),
            "/etc/ca.der": x509.load_pem_x509_certificate((gen / "ca.crt").read_bytes()).public_bytes(
                serialization.Encoding.DER
            ),
            "/etc/future.pem": pem(future),
            "/etc/ssl/certs/ca-certificates.crt": bundle,  # a trust store: anchors, not device credentials
        },
    )
    result = run(tree_context(root), only=("secrets",))
    got = sorted((f.rule_id, f.location.path) for f in result.findings)
    assert got == sorted(
        [
            ("secrets.cert-expired", "/etc/old.crt"),
            ("secrets.cert-weak-key", "/etc/cloud.pem"),
            ("secrets.cert-weak-signature", "/etc/cloud.pem"),
            ("secrets.cert-self-signed", "/etc/ca.der"),
            ("secrets.cert-not-yet-valid", "/etc/future.pem"),
        ]
    )
    weak = next(f for f in result.findings if f.rule_id == "secrets.cert-weak-key")
    assert "1024" in weak.title and "CN=cloud.local" in weak.extra["subject"]


def test_tokens_and_entropy_with_few_false_positives(tmp_path):
    aws = "AKIA" + "Q7Z3M5XK2P9W4R8T"
    gh = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    high = "kT9vQ2xR7mP4wZ8nB3cF6hJ1sL5dG0yA"
    root = write_tree(
        tmp_path,
        {
            "/etc/cloud.conf": f"aws_access_key_id = {aws}\nendpoint = https://iot.example.invalid\n",
            "/usr/lib/agent/config.json": f'{{"github_token": "{gh}", "mode": "prod"}}\n',
            "/etc/init.d/agent": f'#!/bin/sh\nAPI_KEY="{high}"\nexec /usr/bin/agent\n',
            "/etc/ok.conf": "api_key = changeme_please_set_this_value\n"
            "token = 123e4567-e89b-12d3-a456-426614174000\n"
            "secret_file = /etc/agent/secret.bin\n"
            "key = ssh-rsa\n"
            "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
        },
    )
    result = run(tree_context(root), only=("secrets",))
    got = sorted(
        (f.rule_id, f.location.path, f.location.line, f.extra.get("detail", "")[:20]) for f in result.findings
    )
    assert got == sorted(
        [
            ("secrets.token", "/etc/cloud.conf", 1, "aws-access-key-id"),
            ("secrets.token", "/usr/lib/agent/config.json", 1, "github-token"),
            ("secrets.high-entropy", "/etc/init.d/agent", 2, f"entropy {shannon(high):.2f}"),
        ]
    )
    for f in result.findings:
        assert aws not in f.evidence and gh not in f.evidence and high not in f.evidence
        assert f.fingerprint.startswith("sha256:")


def test_shannon():
    assert shannon("aaaa") == 0.0
    assert shannon("abcd") == 2.0


def _rand(rng, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def test_every_token_rule_has_a_matching_vector():
    """Test vectors for signatures/secrets/tokens.toml, built at run time (no token-shaped literals)."""
    import random
    import string

    from cra_fw.checks.secrets import load_data

    rng = random.Random(7)
    up, alnum, hexd = (
        string.ascii_uppercase + string.digits,
        string.ascii_letters + string.digits,
        "0123456789abcdef",
    )
    b64 = alnum + "+/"
    vectors = {
        "aws-access-key-id": "AKIA" + _rand(rng, up, 16),
        "aws-secret-access-key": "aws_secret_access_key = " + _rand(rng, b64, 40),
        "github-token": "ghp_" + _rand(rng, alnum, 36),
        "gitlab-token": "glpat-" + _rand(rng, alnum, 20),
        "slack-token": "xoxb-" + _rand(rng, string.digits, 12) + "-" + _rand(rng, alnum, 24),
        "google-api-key": "AIza" + _rand(rng, alnum, 35),
        "stripe-secret-key": "sk_live_" + _rand(rng, alnum, 24),
        "sendgrid-key": "SG." + _rand(rng, alnum, 22) + "." + _rand(rng, alnum, 43),
        "npm-token": "npm_" + _rand(rng, alnum, 36),
        "azure-storage-key": "AccountKey=" + _rand(rng, b64, 86) + "==",
        "mailgun-key": "key-" + _rand(rng, hexd, 32),
        "jwt": "eyJ" + _rand(rng, alnum, 20) + ".eyJ" + _rand(rng, alnum, 30) + "." + _rand(rng, alnum, 43),
    }
    data = load_data()
    assert {t.id for t in data.tokens} == set(vectors)
    for rule in data.tokens:
        line = f"config: {vectors[rule.id]}\n".encode()
        assert rule.regex.search(line), rule.id
        assert {m.group(0) for m in data.anchor_re.finditer(line)} & set(rule.anchors), rule.id
        # the same text one character short no longer matches
        assert not rule.regex.search(
            line.replace(vectors[rule.id].encode(), vectors[rule.id][:-2].encode()).replace(b"==", b"")
        ) or rule.id in ("jwt", "slack-token", "stripe-secret-key", "github-token"), rule.id
