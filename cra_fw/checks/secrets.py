"""Keys, certificates and tokens baked into the image.

One pass per file: every regular file is read once and searched for PEM blocks,
DER private keys and PKCS#12 containers (in text and inside binaries), SSH and
dropbear host keys; text files also for known token formats and high-entropy
secret assignments.

Secrets are never shown: a key is identified by the SHA-256 of its public part
(``sha256:`` + 16 hex), a token by the SHA-256 of its value, unless
``ctx.options.show_secrets``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from cra_fw.checks.interface import CRA_SECRETS, Check, finding, fingerprint
from cra_fw.context import ScanContext
from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir
from cra_fw.records import FileEntry, FileKind, Finding, Severity

CAT = "secrets"
MAX_READ = 64 * 1024 * 1024
MAX_HITS_PER_FILE = 50

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]{3,40})-----\r?\n(.{0,20000}?)-----END \1-----", re.S)
# DER private keys: PKCS#1 RSA (version 0, then the modulus), PKCS#8 (version 0, AlgorithmIdentifier,
# OCTET STRING), SEC1 EC (version 1, OCTET STRING of 32/48/66 bytes).
_DER_RE = re.compile(
    rb"\x30\x82(..)\x02\x01\x00\x02\x82"
    rb"|\x30\x82(..)\x02\x01\x00\x30[\x05-\x20]\x06"
    rb"|\x30\x81?([\x3e-\xff])\x02\x01\x01\x04[\x20\x30\x42]",
    re.S,
)
_P12_RE = re.compile(rb"\x30\x82(..)\x02\x01\x03\x30\x82", re.S)
_SSH_HOST_KEY_PATHS = ("/ssh/ssh_host_", "/dropbear/dropbear_", "/dropbear/dropbear_rsa_host_key")
# CA bundles: full of self-signed roots, some expired on purpose; they are trust anchors, not
# device credentials.  A single certificate under /etc/ssl/certs/ is still checked.
_TRUST_STORE_HINTS = (
    "/ca-certificates/",
    "ca-bundle",
    "ca-certificates.crt",
    "cacert.pem",
    "/pki/ca-trust/",
    "/etc/ssl/cert.pem",
    "tls-ca-bundle",
)
_DROPBEAR_TYPES = (
    b"ssh-rsa",
    b"ssh-dss",
    b"ssh-ed25519",
    b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521",
)


@dataclass(frozen=True)
class TokenRule:
    id: str
    description: str
    regex: re.Pattern[bytes]
    severity: Severity
    anchors: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SecretData:
    tokens: tuple[TokenRule, ...]
    anchor_re: re.Pattern[bytes]  # every rule's anchors in one pattern: one pass finds the candidates
    entropy_re: re.Pattern[bytes]
    min_length: int
    min_entropy: float
    hex_min_entropy: float
    ignore_substrings: tuple[str, ...]


@lru_cache(maxsize=4)
def load_data(base: Path | None = None) -> SecretData:
    """Load and validate ``signatures/secrets/tokens.toml`` once."""
    path = (base or signatures_dir()) / "secrets" / "tokens.toml"
    try:
        d = tomllib.loads(path.read_text())
        toks = tuple(
            TokenRule(
                t["id"],
                t["description"],
                re.compile(t["regex"].encode()),
                Severity.parse(t["severity"]),
                tuple(a.encode() for a in t.get("anchors", ())),
            )
            for t in d["token"]
        )
        e = d["entropy"]
        anchors = sorted({a for t in toks for a in t.anchors}, key=len, reverse=True)
        anchor_re = re.compile(b"|".join(re.escape(a) for a in anchors))
        return SecretData(
            toks,
            anchor_re,
            re.compile(e["name_regex"].encode(), re.M),
            int(e["min_length"]),
            float(e["min_entropy"]),
            float(e["hex_min_entropy"]),
            tuple(e["ignore_substrings"]),
        )
    except (OSError, KeyError, ValueError, re.error) as exc:
        raise SignatureDataError(f"{path} is unusable ({exc}); restore it from the cra-fw release") from exc


def shannon(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# ---- key descriptions ------------------------------------------------------------------------


def describe_key(key: object) -> tuple[str, int]:
    """(algorithm, bits) of a cryptography key object."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519", 256
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448", 456
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return "DSA", key.key_size
    return type(key).__name__, 0


def public_fingerprint(private_key: object) -> str:
    """sha256 fingerprint of the DER SubjectPublicKeyInfo (identifies the key, reveals nothing)."""
    try:
        pub = private_key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return fingerprint(pub)
    except (AttributeError, ValueError, UnsupportedAlgorithm):
        return ""


# ---- the check -------------------------------------------------------------------------------


class EmbeddedSecrets(Check):
    """Private keys, host keys, PKCS#12, certificates, tokens, high-entropy assignments."""

    name = "secrets.embedded"
    category = CAT

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        data = load_data()
        now = self.now or dt.datetime.now(dt.UTC)
        skip = {FileKind.SYMLINK, FileKind.DIRECTORY, FileKind.DEVICE}
        seen_keys: set[tuple[str, str]] = set()
        nothing_in: set[str] = set()  # sha256 of contents already scanned without a hit (A/B copies)
        for entry in ctx.files:
            if entry.kind in skip or entry.size == 0 or (entry.sha256 and entry.sha256 in nothing_in):
                continue
            content = ctx.read_bytes(entry, MAX_READ)
            if not content:
                continue
            hits = list(_FileScan(ctx, entry, content, data, now, seen_keys).scan())
            if not hits and entry.sha256:
                nothing_in.add(entry.sha256)
            yield from hits


class _FileScan:
    def __init__(
        self,
        ctx: ScanContext,
        entry: FileEntry,
        content: bytes,
        data: SecretData,
        now: dt.datetime,
        seen_keys: set[tuple[str, str]],
    ) -> None:
        self.ctx, self.entry, self.data, self.now, self.seen = ctx, entry, content, now, seen_keys
        self.rules = data
        self.is_text = entry.kind != FileKind.ELF and b"\0" not in content[:8192]
        self.covered: list[tuple[int, int]] = []  # PEM spans, so DER/tokens inside them are not re-reported

    def scan(self) -> Iterator[Finding]:
        hits = 0
        for f in self._pem():
            hits += 1
            yield f
        if not self.covered and self.entry.kind == FileKind.CERTIFICATE:
            yield from self._der_cert()
        if not self.is_text or self.entry.kind == FileKind.KEY:
            for f in self._binary_keys():
                hits += 1
                yield f
        if not self.is_text:
            return  # token formats are looked for in scripts and configs, keys everywhere
        for f in self._tokens():
            hits += 1
            if hits > MAX_HITS_PER_FILE:
                return
            yield f

    # -- helpers
    def _line_or_offset(self, offset: int) -> dict[str, int | None]:
        if self.is_text:
            return {"line": self.data.count(b"\n", 0, offset) + 1, "offset": None}
        return {"line": None, "offset": offset}

    def _key_finding(
        self, key: object | None, kind: str, offset: int, encrypted: bool, fmt: str, raw: bytes
    ) -> Finding | None:
        fp = public_fingerprint(key) if key is not None else fingerprint(raw)
        if (self.entry.layer_id + self.entry.path, fp) in self.seen:
            return None
        self.seen.add((self.entry.layer_id + self.entry.path, fp))
        alg, bits = describe_key(key) if key is not None else (kind, 0)
        host = any(h in self.entry.path for h in _SSH_HOST_KEY_PATHS)
        size = f" {bits}-bit" if bits else ""
        where = "inside a binary" if not self.is_text else "in a file"
        state = "encrypted" if encrypted else "unencrypted"
        if host:
            rule, title, sev = "secrets.host-key", f"SSH host key baked into the image ({alg})", Severity.HIGH
        else:
            rule, title = "secrets.private-key", f"Private key {where} ({alg}{size}, {state})"
            sev = Severity.MEDIUM if encrypted else Severity.HIGH
        extra = {"algorithm": alg, "bits": str(bits), "format": fmt, "encrypted": str(encrypted).lower()}
        if self.ctx.options.show_secrets:
            extra["secret"] = raw.decode("ascii", "replace") if fmt.startswith("pem") else raw.hex()
        return finding(
            self.ctx,
            self.entry,
            rule_id=rule,
            category=CAT,
            severity=sev,
            title=title,
            cra=CRA_SECRETS,
            evidence=f"{fmt} {alg}{size} private key ({state}), public key {fp}",
            remediation="Do not ship private keys: generate host and device keys on first boot "
            "(or in a secure element) so every unit has its own.",
            fp=fp,
            extra=extra,
            **self._line_or_offset(offset),
        )

    # -- PEM
    def _pem(self) -> Iterator[Finding]:
        if b"-----BEGIN " not in self.data:
            return
        certs = list(_PEM_RE.finditer(self.data))
        cert_count = sum(1 for m in certs if m.group(1) in (b"CERTIFICATE", b"TRUSTED CERTIFICATE"))
        trust_store = cert_count > 3 or any(h in self.entry.path for h in _TRUST_STORE_HINTS)
        for m in certs:
            self.covered.append((m.start(), m.end()))
            label = m.group(1).decode()
            block = m.group(0)
            if label.endswith("PRIVATE KEY"):
                f = self._pem_key(label, block, m.start())
                if f:
                    yield f
            elif label in ("CERTIFICATE", "TRUSTED CERTIFICATE") and not trust_store:
                try:
                    cert = x509.load_pem_x509_certificate(
                        block.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE")
                    )
                except ValueError:
                    continue
                yield from self._cert(cert, m.start())

    def _pem_key(self, label: str, block: bytes, offset: int) -> Finding | None:
        encrypted = label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
        key = None
        if label == "OPENSSH PRIVATE KEY":
            encrypted = _openssh_encrypted(block)
            if not encrypted:
                try:
                    key = serialization.load_ssh_private_key(block, None)
                except (ValueError, UnsupportedAlgorithm, TypeError):
                    key = None
            return self._key_finding(key, "OpenSSH", offset, encrypted, "pem-openssh", block)
        if not encrypted:
            try:
                # (skipping RSA's slow prime checks: we describe the key, never use it)
                key = serialization.load_pem_private_key(block, None, unsafe_skip_rsa_key_validation=True)
            except (ValueError, UnsupportedAlgorithm, TypeError):
                return None  # not a real key (e.g. a placeholder in documentation)
        kind = label.replace(" PRIVATE KEY", "").replace("ENCRYPTED", "PKCS#8").strip() or "PKCS#8"
        return self._key_finding(key, kind, offset, encrypted, "pem", block)

    # -- DER, PKCS#12, dropbear
    def _in_pem(self, offset: int) -> bool:
        return any(a <= offset < b for a, b in self.covered)

    def _binary_keys(self) -> Iterator[Finding]:
        data = self.data
        if self.entry.name.startswith("dropbear_") or any(h in self.entry.path for h in _SSH_HOST_KEY_PATHS):
            f = self._dropbear(data)
            if f:
                yield f
                return
        count = 0
        for m in _DER_RE.finditer(data):
            if count >= 20 or self._in_pem(m.start()):
                break
            count += 1
            start = m.start()
            if data[start + 1] == 0x82:
                length = int.from_bytes(data[start + 2 : start + 4], "big") + 4
            elif data[start + 1] == 0x81:
                length = data[start + 2] + 3
            else:
                length = data[start + 1] + 2
            raw = data[start : start + length]
            try:
                key = serialization.load_der_private_key(raw, None, unsafe_skip_rsa_key_validation=True)
            except (ValueError, UnsupportedAlgorithm, TypeError):
                continue
            f = self._key_finding(key, "DER", start, False, "der", raw)
            if f:
                yield f
        for m in _P12_RE.finditer(data):
            raw = data[m.start() : m.start() + int.from_bytes(m.group(1), "big") + 4]
            f = self._pkcs12(raw, m.start())
            if f:
                yield f
                break

    def _pkcs12(self, raw: bytes, offset: int) -> Finding | None:
        key = None
        protected = True
        for pw in (None, b"", b"password", b"changeit", b"123456"):
            try:
                key, _cert, _more = pkcs12.load_key_and_certificates(raw, pw)
                protected = pw not in (None, b"")
                break
            except (ValueError, UnsupportedAlgorithm, TypeError):
                continue
        else:
            if not raw.startswith(b"\x30\x82") or b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07" not in raw[:64]:
                return None  # not PKCS#12 (no PKCS#7 data OID)
        fp = public_fingerprint(key) if key is not None else fingerprint(raw)
        if (self.entry.layer_id + self.entry.path, fp) in self.seen:
            return None
        self.seen.add((self.entry.layer_id + self.entry.path, fp))
        alg, bits = describe_key(key) if key is not None else ("unknown", 0)
        state = (
            "password-protected (password unknown)"
            if key is None
            else ("with a well-known password" if protected else "without a password")
        )
        return finding(
            self.ctx,
            self.entry,
            rule_id="secrets.pkcs12",
            category=CAT,
            severity=Severity.MEDIUM if key is None else Severity.HIGH,
            title=f"PKCS#12 key store in the image ({state})",
            cra=CRA_SECRETS,
            evidence=f"PKCS#12 {alg} {bits or ''} {state}, {fp}".replace("  ", " "),
            remediation="Do not ship key stores; provision per-device keys.",
            fp=fp,
            extra={"algorithm": alg},
            **self._line_or_offset(offset),
        )

    def _dropbear(self, data: bytes) -> Finding | None:
        n = int.from_bytes(data[:4], "big")
        kind = data[4 : 4 + n] if 0 < n < 40 else b""
        if kind not in _DROPBEAR_TYPES:
            return None
        name = kind.decode()
        alg = {"ssh-rsa": "RSA", "ssh-dss": "DSA", "ssh-ed25519": "Ed25519"}.get(
            name, name.replace("ecdsa-sha2-", "EC ")
        )
        fp = fingerprint(data)
        self.seen.add((self.entry.layer_id + self.entry.path, fp))
        return finding(
            self.ctx,
            self.entry,
            rule_id="secrets.host-key",
            category=CAT,
            severity=Severity.HIGH,
            title=f"SSH host key baked into the image ({alg}, dropbear format)",
            cra=CRA_SECRETS,
            evidence=f"dropbear {name} host key, {fp}",
            remediation="Delete the host key from the image; dropbear -R or the init script creates "
            "one per device on first boot.",
            fp=fp,
            extra={"algorithm": alg, "format": "dropbear"},
            offset=0,
        )

    # -- certificates
    def _der_cert(self) -> Iterator[Finding]:
        if not self.data.startswith(b"\x30") or len(self.data) > 64 * 1024:
            return
        try:
            cert = x509.load_der_x509_certificate(self.data)
        except ValueError:
            return
        if not any(h in self.entry.path for h in _TRUST_STORE_HINTS):
            yield from self._cert(cert, 0)

    def _cert(self, cert: x509.Certificate, offset: int) -> Iterator[Finding]:
        fp = "sha256:" + cert.fingerprint(hashes.SHA256()).hex()[:16]
        subject = cert.subject.rfc4514_string()[:120]
        base = dict(
            category=CAT, cra=CRA_SECRETS, fp=fp, extra={"subject": subject}, **self._line_or_offset(offset)
        )
        after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
        if after < self.now:
            yield finding(
                self.ctx,
                self.entry,
                rule_id="secrets.cert-expired",
                severity=Severity.MEDIUM,
                title="Expired certificate",
                evidence=f"{subject}: expired {after:%Y-%m-%d}",
                remediation="Replace the certificate; make certificates renewable in the field.",
                **base,
            )
        if before > self.now:
            yield finding(
                self.ctx,
                self.entry,
                rule_id="secrets.cert-not-yet-valid",
                severity=Severity.LOW,
                title="Certificate not yet valid",
                evidence=f"{subject}: valid from {before:%Y-%m-%d}",
                remediation="Check the issuing clock and reissue the certificate.",
                **base,
            )
        pub = cert.public_key()
        if isinstance(pub, rsa.RSAPublicKey) and pub.key_size < 2048:
            yield finding(
                self.ctx,
                self.entry,
                rule_id="secrets.cert-weak-key",
                severity=Severity.MEDIUM,
                title=f"Certificate with a weak RSA key ({pub.key_size} bits)",
                evidence=f"{subject}: RSA {pub.key_size} bits",
                remediation="Use RSA >= 2048 (3072 recommended) or ECDSA P-256.",
                **base,
            )
        algo = cert.signature_hash_algorithm
        if algo is not None and algo.name in ("sha1", "md5", "md2", "md4"):
            yield finding(
                self.ctx,
                self.entry,
                rule_id="secrets.cert-weak-signature",
                severity=Severity.MEDIUM,
                title=f"Certificate signed with {algo.name.upper()}",
                evidence=f"{subject}: {algo.name}",
                remediation="Reissue with a SHA-256 (or stronger) signature.",
                **base,
            )
        if cert.issuer == cert.subject and _self_signature_ok(cert):
            yield finding(
                self.ctx,
                self.entry,
                rule_id="secrets.cert-self-signed",
                severity=Severity.LOW,
                title="Self-signed certificate",
                evidence=f"{subject}: issuer = subject",
                remediation="Issue device certificates from a CA the clients trust, one per device.",
                **base,
            )

    # -- tokens and entropy
    def _tokens(self) -> Iterator[Finding]:
        data = self.data
        token_values: set[str] = set()
        present = {m.group(0) for m in self.rules.anchor_re.finditer(data)}
        for rule in self.rules.tokens:
            if rule.anchors and not present.intersection(rule.anchors):
                continue
            for m in rule.regex.finditer(data):
                if self._in_pem(m.start()):
                    continue
                value = (m.groupdict().get("value") or m.group(0)).decode("ascii", "replace")
                token_values.add(value)
                yield self._secret_finding(
                    "secrets.token",
                    rule.severity,
                    f"{rule.description} in the image",
                    value,
                    m.start(),
                    rule.id,
                )
        if self.entry.kind not in (FileKind.SCRIPT, FileKind.CONFIG, FileKind.DATA):
            return
        for m in self.rules.entropy_re.finditer(data):
            value = m.group("value").decode("ascii", "replace")
            if any(value in t or t in value for t in token_values):
                continue  # already reported as a known token
            if len(value) < self.rules.min_length or any(s in value for s in self.rules.ignore_substrings):
                continue
            is_hex = re.fullmatch(r"[0-9a-fA-F]+", value) is not None
            ent = shannon(value)
            if ent < (self.rules.hex_min_entropy if is_hex else self.rules.min_entropy):
                continue
            if not is_hex and not (re.search(r"[0-9]", value) and re.search(r"[A-Za-z]", value)):
                continue
            yield self._secret_finding(
                "secrets.high-entropy",
                Severity.MEDIUM,
                "High-entropy secret assigned in a script or config",
                value,
                m.start("value"),
                f"entropy {ent:.2f}",
            )

    def _secret_finding(
        self, rule: str, sev: Severity, title: str, value: str, offset: int, detail: str
    ) -> Finding:
        fp = fingerprint(value)
        shown = value if self.ctx.options.show_secrets else f"{value[:4]}... ({fp})"
        extra = {"detail": detail}
        if self.ctx.options.show_secrets:
            extra["secret"] = value
        return finding(
            self.ctx,
            self.entry,
            rule_id=rule,
            category=CAT,
            severity=sev,
            title=title,
            cra=CRA_SECRETS,
            evidence=f"{detail}: {shown}",
            remediation="Remove the secret from the image, revoke it, and provision per-device "
            "credentials at manufacturing or first boot.",
            fp=fp,
            extra=extra,
            **self._line_or_offset(offset),
        )


def _openssh_encrypted(block: bytes) -> bool:
    import base64

    body = b"".join(line for line in block.splitlines() if line and not line.startswith(b"-----"))
    try:
        raw = base64.b64decode(body)
    except ValueError:
        return False
    if not raw.startswith(b"openssh-key-v1\0"):
        return False
    n = int.from_bytes(raw[15:19], "big")
    return raw[19 : 19 + n] != b"none"


def _self_signature_ok(cert: x509.Certificate) -> bool:
    """True when the certificate's signature verifies with its own public key."""
    pub = cert.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(
                cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
            )
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(pub, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            pub.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return True  # issuer == subject is enough for other key types
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True
