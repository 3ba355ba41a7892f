"""Trust anchors: CA certificates and public keys given with ``--trust``.

Accepted files: PEM certificates (any number per file), DER certificates,
PEM/DER public keys (SubjectPublicKeyInfo or PKCS#1 RSA), OpenSSH public
keys, minisign and signify public keys, U-Boot control DTBs whose
``/signature`` node holds the keys ``mkimage -K`` wrote, and OpenPGP
certificates or keyrings (armored or binary; kept as bytes for the OpenPGP
verifier, which parses them with Sequoia).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cra_fw.bundles.interface import TrustStoreError
from cra_fw.parsers import ParseError
from cra_fw.parsers.fdt import Fdt
from cra_fw.regions import read_limited

_MAX_TRUST_FILE = 16 * 1024 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.S)


def key_fingerprint(key: PublicKeyTypes) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo (same as ``openssl pkey -pubout | sha256``)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    """One trusted public key.

    ``key_id`` is the 8-byte minisign/signify key number when known;
    ``uboot_algo`` the ``algo`` a U-Boot key node declares (e.g.
    ``sha256,rsa2048``), ``uboot_required`` its ``required`` policy.
    """

    key: PublicKeyTypes
    source: str
    name: str = ""
    key_id: bytes = b""
    uboot_algo: str = ""
    uboot_required: str = ""

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)


@dataclass(frozen=True)
class OpenPgpCert:
    """One trusted OpenPGP certificate (transferable public key), as bytes."""

    data: bytes
    fingerprint: str  # primary key, upper-case hex
    source: str


@dataclass
class TrustStore:
    """The certificates and keys a verification may chain to."""

    certificates: list[x509.Certificate] = field(default_factory=list)
    keys: list[TrustedKey] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    openpgp: list[OpenPgpCert] = field(default_factory=list)
    # Sigstore trusted_root.json documents (bytes, source) and the identity policy
    # (SAN, OIDC issuer) a keyless signer must match
    sigstore_roots: list[tuple[bytes, str]] = field(default_factory=list)
    identities: list[tuple[str, str]] = field(default_factory=list)
    certificate_sources: list[str] = field(default_factory=list)  # where each certificate came from
    # (certificate, private key) of recipients of encrypted bundles (verify --decrypt-key): they
    # decrypt a signature, they are never trust anchors
    recipients: list[tuple[x509.Certificate, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.certificates or self.keys or self.openpgp or self.sigstore_roots or self.identities)

    @classmethod
    def load(cls, paths: list[Path] | tuple[Path, ...]) -> TrustStore:
        """Load every path; raises :class:`TrustStoreError` for unusable files."""
        store = cls()
        for path in paths:
            store.add_file(Path(path))
        return store

    def add_recipient(self, path: Path) -> None:
        """A recipient's private key and certificate (PEM, both in one file) for encrypted bundles."""
        data = read_limited(path, _MAX_TRUST_FILE, "decryption key file", TrustStoreError)
        keys, certs = [], []
        for m in _PEM_BLOCK.finditer(data):
            kind, block = m.group(1).decode(), m.group(0)
            try:
                if kind.endswith("PRIVATE KEY"):
                    keys.append(serialization.load_pem_private_key(block, password=None))
                elif kind == "CERTIFICATE":
                    certs.append(x509.load_pem_x509_certificate(block))
            except (ValueError, TypeError) as exc:
                raise TrustStoreError(f"{path}: a {kind} block cannot be read ({exc})") from exc
        pairs = [
            (c, k)
            for c in certs
            for k in keys
            if key_fingerprint(c.public_key()) == key_fingerprint(k.public_key())
        ]
        if not pairs:
            raise TrustStoreError(
                f"{path} must hold a recipient's unencrypted private key and its certificate (PEM)"
            )
        self.recipients.extend(pairs)

    def add_file(self, path: Path) -> None:
        data = read_limited(path, _MAX_TRUST_FILE, "trust file", TrustStoreError)
        before = self._counts()
        self.add_bytes(data, str(path))
        if self._counts() == before:
            raise TrustStoreError(
                f"{path} holds no certificate or public key cra-fw can use "
                "(expected PEM/DER certificate or public key, OpenSSH, minisign/signify key, "
                "OpenPGP certificate or keyring, Sigstore trusted_root.json, or U-Boot DTB)"
            )
        self.sources.append(str(path))

    def add_bytes(self, data: bytes, source: str) -> None:
        if data[:4] == b"\xd0\x0d\xfe\xed":
            self._add_dtb(data, source)
            return
        if _is_openpgp_keys(data):
            self._add_openpgp(data, source)
            return
        if data[:1] == b"{" and b"application/vnd.dev.sigstore." in data[:4096]:
            self._add_sigstore_root(data, source)
            return
        blocks = list(_PEM_BLOCK.finditer(data))
        if blocks:
            for m in blocks:
                self._add_pem(m.group(1).decode(), m.group(0), source)
            return
        text = data.strip()
        if text.startswith((b"ssh-", b"ecdsa-sha2-")):
            for line in text.splitlines():
                try:
                    key = serialization.load_ssh_public_key(line.strip())
                except (ValueError, TypeError, IndexError):
                    continue
                self._add_key(
                    key,
                    source,
                    name=line.split()[-1].decode("utf-8", "replace") if len(line.split()) > 2 else "",
                )
            return
        if text.startswith(b"untrusted comment:") or _is_b64_ed_key(text):
            self._add_minisign(text, source)
            return
        try:
            self._add_cert(x509.load_der_x509_certificate(data), source)
            return
        except (ValueError, x509.InvalidVersion):
            pass
        try:
            self._add_key(serialization.load_der_public_key(data), source)
        except (ValueError, TypeError):
            pass

    def _add_cert(self, cert: x509.Certificate, source: str) -> None:
        self.certificates.append(cert)
        self.certificate_sources.append(source)

    def _add_pem(self, kind: str, block: bytes, source: str) -> None:
        try:
            if kind in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"):
                self._add_cert(x509.load_pem_x509_certificate(block.replace(b"TRUSTED ", b"")), source)
            elif kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
                self._add_key(serialization.load_pem_public_key(block), source)
            elif kind.endswith("PRIVATE KEY"):
                raise TrustStoreError(
                    f"{source} holds a PRIVATE key; pass the public key or certificate instead"
                )
        except ValueError as exc:
            raise TrustStoreError(f"{source}: unreadable {kind} block: {exc}") from exc

    def _add_key(
        self,
        key: PublicKeyTypes,
        source: str,
        name: str = "",
        key_id: bytes = b"",
        uboot_algo: str = "",
        uboot_required: str = "",
    ) -> None:
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            return
        self.keys.append(TrustedKey(key, source, name, key_id, uboot_algo, uboot_required))

    def _add_minisign(self, text: bytes, source: str) -> None:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(b"untrusted comment:"):
                continue
            try:
                raw = base64.b64decode(line, validate=True)
            except ValueError:
                continue
            if len(raw) == 42 and raw[:2] == b"Ed":
                self._add_key(ed25519.Ed25519PublicKey.from_public_bytes(raw[10:]), source, key_id=raw[2:10])

    def _add_openpgp(self, data: bytes, source: str) -> None:
        if b"-----BEGIN PGP PRIVATE KEY BLOCK-----" in data[:4096] or data[:1] in _SECRET_KEY_TAGS:
            raise TrustStoreError(
                f"{source} holds an OpenPGP PRIVATE key; pass the public key (gpg --export)"
            )
        from pysequoia import Cert  # Sequoia parses the certificates; imported only when one is given

        try:
            certs = Cert.split_bytes(data)
        except Exception as exc:  # noqa: BLE001 - pysequoia raises plain exceptions for any parse error
            raise TrustStoreError(f"{source}: unreadable OpenPGP certificate: {exc}".split("\n")[0]) from exc
        for cert in certs:
            self.openpgp.append(OpenPgpCert(bytes(cert), cert.fingerprint.upper(), source))

    def _counts(self) -> tuple[int, ...]:
        return (len(self.certificates), len(self.keys), len(self.openpgp), len(self.sigstore_roots))

    def _add_sigstore_root(self, data: bytes, source: str) -> None:
        import json

        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise TrustStoreError(f"{source}: not JSON: {exc}") from exc
        if isinstance(doc, dict) and "trustedRoot" in doc:  # a ClientTrustConfig (sigstore --trust-config)
            doc = doc["trustedRoot"]
        media = doc.get("mediaType", "") if isinstance(doc, dict) else ""
        if not media.startswith("application/vnd.dev.sigstore.trustedroot"):
            raise TrustStoreError(f"{source} is a Sigstore {media or 'document'}, not a trusted root")
        from cra_fw.bundles.sigstore import load_root

        raw = json.dumps(doc).encode()
        try:
            load_root(raw)
        except Exception as exc:  # noqa: BLE001 - pydantic and sigstore raise several types
            raise TrustStoreError(
                f"{source}: unusable Sigstore trusted root: {str(exc).splitlines()[0]}"
            ) from exc
        self.sigstore_roots.append((raw, source))

    def _add_dtb(self, data: bytes, source: str) -> None:
        import io

        try:
            fdt = Fdt(io.BytesIO(data))
        except ParseError as exc:
            raise TrustStoreError(f"{source}: unreadable device tree: {exc}") from exc
        sig = fdt.node("/signature")
        if sig is None:
            raise TrustStoreError(f"{source}: device tree has no /signature node (sign with mkimage -K)")
        for node in sig.children.values():
            try:
                key = uboot_key_from_node(node)
            except ParseError:
                raise  # a malformed tree (ParseError is a ValueError) is not an odd key: refuse the file
            except (ValueError, TypeError):
                continue
            if key is not None:
                self._add_key(
                    key,
                    source,
                    name=node.str("key-name-hint") or node.name.removeprefix("key-"),
                    uboot_algo=node.str("algo"),
                    uboot_required=node.str("required"),
                )

    # -- queries
    def find_key(self, key: PublicKeyTypes) -> TrustedKey | None:
        fp = key_fingerprint(key)
        for tk in self.keys:
            if tk.fingerprint == fp:
                return tk
        for cert in self.certificates:
            if key_fingerprint(cert.public_key()) == fp:
                return TrustedKey(cert.public_key(), "certificate", cert.subject.rfc4514_string())
        return None

    def describe_anchor(self, fingerprints: tuple[str, ...]) -> str:
        """The trust anchor among ``fingerprints`` (signer key first, then its chain upwards):
        its file, name and key fingerprint, as an auditor writes it down."""
        for fp in reversed([f for f in fingerprints if f]):
            for cert, source in zip(self.certificates, self.certificate_sources, strict=False):
                if key_fingerprint(cert.public_key()) == fp:
                    return f"{source}: certificate {cert.subject.rfc4514_string()} (key {fp})"
            for key in self.keys:
                if key.fingerprint == fp:
                    return f"{key.source}: {key.name or 'public key'} (key {fp})"
        return ""

    def all_keys(self) -> list[TrustedKey]:
        """Bare keys plus the keys of trusted certificates (for raw signatures)."""
        out = list(self.keys)
        for cert in self.certificates:
            try:
                out.append(TrustedKey(cert.public_key(), "certificate", cert.subject.rfc4514_string()))
            except ValueError:
                continue
        return out


_CURVES = {"prime256v1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp521r1": ec.SECP521R1()}


def uboot_key_from_node(node) -> PublicKeyTypes | None:
    """Public key of a U-Boot ``/signature/key-*`` node (RSA or ECDSA)."""
    modulus = node.prop("rsa,modulus")
    if modulus is not None and modulus.value:
        exp_prop = node.prop("rsa,exponent")
        e = exp_prop.as_int() if exp_prop is not None else None
        n = int.from_bytes(modulus.value, "big")
        return rsa.RSAPublicNumbers(e or 65537, n).public_key()
    curve = node.str("ecdsa,curve")
    x = node.prop("ecdsa,x-point")
    y = node.prop("ecdsa,y-point")
    if curve in _CURVES and x is not None and y is not None and x.value and y.value:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x.value, "big"), int.from_bytes(y.value, "big"), _CURVES[curve]
        ).public_key()
    return None


# first byte of an OpenPGP public-key packet (old format tag 6, length types 0-2; new format tag 6)
_PUBLIC_KEY_TAGS = (b"\x98", b"\x99", b"\x9a", b"\xc6")
_SECRET_KEY_TAGS = (b"\x94", b"\x95", b"\x96", b"\xc5")


def _is_openpgp_keys(data: bytes) -> bool:
    head = data[:4096].lstrip()
    if head.startswith((b"-----BEGIN PGP PUBLIC KEY BLOCK-----", b"-----BEGIN PGP PRIVATE KEY BLOCK-----")):
        return True
    # a binary certificate: a public-key packet of version 4 or 6 (gpg --export, keyrings)
    return data[:1] in _PUBLIC_KEY_TAGS + _SECRET_KEY_TAGS and _key_version(data) in (4, 6)


def _key_version(data: bytes) -> int:
    """Version byte of the first packet's body (old or new packet header)."""
    first = data[0]
    if first & 0x40:  # new format: one-octet length below 192, two octets below 224
        off = 2 if len(data) > 1 and data[1] < 192 else 3
    else:
        off = 1 + {0: 1, 1: 2, 2: 4}.get(first & 0x03, 0)
    return data[off] if len(data) > off else 0


def key_description(key: PublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return type(key).__name__


def _is_b64_ed_key(text: bytes) -> bool:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return len(raw) == 42 and raw[:2] == b"Ed"
