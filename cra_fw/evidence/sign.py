"""Detached signatures for any file and for evidence packs.

``cra-fw sign FILE --key KEY`` writes ``FILE.sig``: a small JSON document in
canonical form (sorted keys, two-space indent, ASCII, final newline) holding

* ``signed``: what was signed: file name, size, SHA-256, for a pack also the
  SHA-256 of its ``manifest.json``, the signing time and the tool;
* ``algorithm`` (``ed25519``, ``ecdsa-p256-sha256`` or ``rsa-pss-sha256``),
  ``key_fingerprint`` (``sha256:`` + SHA-256 of the public key's
  SubjectPublicKeyInfo DER) and the signer's ``public_key`` (PEM);
* ``signature``: base64 of the signature over :func:`signed_payload`, which
  covers every other field.

Verification never trusts the embedded public key: the verifier names the
trusted key, and the embedded one only has to agree with it.  A file that is not
byte-for-byte canonical is rejected, so no byte of the signature file can change
unnoticed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from cra_fw import __version__, safejson
from cra_fw.errors import CraFwError
from cra_fw.regions import read_limited

SIG_FORMAT = "cra-fw-signature/1"
ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
RSA_PSS = "rsa-pss-sha256"
ALGORITHMS = (ED25519, ECDSA_P256, RSA_PSS)
MIN_RSA_BITS = 2048
MAX_KEY_FILE = 1 << 20
MAX_SIG_FILE = 1 << 20
PACK_MANIFEST = "manifest.json"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class EvidenceError(CraFwError):
    """Base of the evidence pack and signature errors."""


class KeyFileError(EvidenceError):
    """A key file cannot be read or holds an unsupported key."""


class SignatureFileError(EvidenceError):
    """A signature file is missing, malformed or was edited."""


# ---- keys ------------------------------------------------------------------------------------


def _read_small(path: Path, limit: int, what: str) -> bytes:
    return read_limited(path, limit, what, KeyFileError)


def check_key(key: Any, path: Path | str = "key") -> None:
    """Accept Ed25519, ECDSA P-256 and RSA >= 2048 bits; explain anything else."""
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"{path}: EC curve {key.curve.name} is not supported; use P-256 (secp256r1)")
        return
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < MIN_RSA_BITS:
            raise KeyFileError(
                f"{path}: RSA key of {key.key_size} bits is too weak; use {MIN_RSA_BITS} or more"
            )
        return
    raise KeyFileError(
        f"{path}: {type(key).__name__} keys are not supported; use Ed25519, ECDSA P-256 or RSA"
    )


def load_private_key(path: Path, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM, DER or OpenSSH format."""
    data = _read_small(Path(path), MAX_KEY_FILE, "key file")
    loaders = (
        serialization.load_pem_private_key,
        serialization.load_der_private_key,
        serialization.load_ssh_private_key,
    )
    last: Exception | None = None
    for loader in loaders:
        try:
            key = loader(data, password=password)
        except TypeError as exc:  # encrypted without password, or password for a plain key
            raise KeyFileError(f"{path}: {exc}; set the password with --password-env VAR") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            last = exc
            continue
        check_key(key, path)
        return key  # type: ignore[return-value]
    raise KeyFileError(f"{path} is not a private key in PEM, DER or OpenSSH format ({last})")


def load_public_key(path: Path) -> PublicKey:
    """A public key from a PEM/DER public key, an X.509 certificate, an OpenSSH key or a private key."""
    from cryptography import x509

    data = _read_small(Path(path), MAX_KEY_FILE, "trust key")
    attempts = (
        lambda d: serialization.load_pem_public_key(d),
        lambda d: serialization.load_der_public_key(d),
        lambda d: x509.load_pem_x509_certificate(d).public_key(),
        lambda d: x509.load_der_x509_certificate(d).public_key(),
        lambda d: serialization.load_ssh_public_key(d),
        lambda d: serialization.load_pem_private_key(d, password=None).public_key(),
        lambda d: serialization.load_der_private_key(d, password=None).public_key(),
    )
    for attempt in attempts:
        try:
            key = attempt(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        check_key(key, path)
        return key  # type: ignore[return-value]
    raise KeyFileError(
        f"{path} is not a public key, certificate or unencrypted private key (PEM, DER or OpenSSH)"
    )


def public_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(key: PublicKey | PrivateKey) -> str:
    """``sha256:`` + hex SHA-256 of the SubjectPublicKeyInfo DER."""
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def algorithm_of(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return ED25519
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return ECDSA_P256
    return RSA_PSS


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, _PSS, hashes.SHA256())


def verify_bytes(key: PublicKey, algorithm: str, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is valid for ``data`` under ``key`` with ``algorithm``."""
    if algorithm != algorithm_of(key):
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data, _PSS, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# ---- signature files -------------------------------------------------------------------------


def canonical(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def signed_payload(doc: dict[str, Any]) -> bytes:
    """The bytes the signature covers: every field but the signature itself."""
    body = {
        "algorithm": doc.get("algorithm"),
        "key_fingerprint": doc.get("key_fingerprint"),
        "public_key": doc.get("public_key"),
        "signed": doc.get("signed"),
    }
    return (SIG_FORMAT + "\n").encode() + json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, streamed."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            size += len(block)
            h.update(block)
    return size, h.hexdigest()


def pack_manifest_digest(path: Path) -> str | None:
    """SHA-256 of ``manifest.json`` when ``path`` is an evidence pack, else None."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if names.count(PACK_MANIFEST) != 1:
                return None
            return hashlib.sha256(zf.read(PACK_MANIFEST)).hexdigest()
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        KeyError,
    ) as exc:
        raise EvidenceError(f"{path} looks like a zip but cannot be read: {exc}") from exc


@dataclass(frozen=True)
class SignatureFile:
    """A parsed, canonical signature file."""

    path: Path
    doc: dict[str, Any]

    @property
    def algorithm(self) -> str:
        return str(self.doc["algorithm"])

    @property
    def key_fingerprint(self) -> str:
        return str(self.doc["key_fingerprint"])

    @property
    def signed(self) -> dict[str, Any]:
        return self.doc["signed"]

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.doc["signature"], validate=True)


def default_signature_path(path: Path) -> Path:
    return Path(str(path) + ".sig")


def sign_file(path: Path, key: PrivateKey, out: Path | None = None, now: str | None = None) -> Path:
    """Sign ``path`` (a file or an evidence pack) and write the detached signature file."""
    path = Path(path)
    if not path.is_file():
        raise EvidenceError(f"{path}: no such file to sign")
    size, digest = file_digest(path)
    statement: dict[str, Any] = {
        "file": path.name,
        "size": size,
        "sha256": digest,
        "kind": "file",
        "signed_at": now or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tool": f"cra-fw {__version__}",
    }
    manifest = pack_manifest_digest(path)
    if manifest is not None:
        statement["kind"] = "evidence-pack"
        statement["manifest_sha256"] = manifest
    doc: dict[str, Any] = {
        "format": SIG_FORMAT,
        "algorithm": algorithm_of(key),
        "key_fingerprint": fingerprint(key),
        "public_key": public_pem(key.public_key()),
        "signed": statement,
    }
    doc["signature"] = base64.b64encode(sign_bytes(key, signed_payload(doc))).decode("ascii")
    out = Path(out) if out else default_signature_path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(canonical(doc))
    os.replace(tmp, out)
    return out


_REQUIRED = {
    "format": str,
    "algorithm": str,
    "key_fingerprint": str,
    "public_key": str,
    "signed": dict,
    "signature": str,
}
_STATEMENT = {"file": str, "size": int, "sha256": str, "kind": str, "signed_at": str, "tool": str}


def read_signature(path: Path) -> SignatureFile:
    """Parse a signature file; reject anything malformed, unknown or not canonical."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SIG_FILE + 1)
    except OSError as exc:
        raise SignatureFileError(
            f"cannot read the signature file {path}: {exc.strerror}; "
            "sign the pack with `cra-fw sign PACK --key KEY`"
        ) from exc
    if len(raw) > MAX_SIG_FILE:
        raise SignatureFileError(f"{path} is too large to be a cra-fw signature file")
    try:
        doc = safejson.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SignatureFileError(
            f"the signature file {path} is not valid JSON (damaged or edited): {exc}"
        ) from exc
    if not isinstance(doc, dict):
        raise SignatureFileError(f"the signature file {path} is not a cra-fw signature")
    for key, kind in _REQUIRED.items():
        if not isinstance(doc.get(key), kind):
            raise SignatureFileError(
                f"the signature file {path} lacks a valid '{key}' field (damaged or edited)"
            )
    if set(doc) != set(_REQUIRED):
        extra = sorted(set(doc) - set(_REQUIRED))
        raise SignatureFileError(f"the signature file {path} has unknown fields {extra} (edited?)")
    if doc["format"] != SIG_FORMAT:
        raise SignatureFileError(f"{path}: signature format {doc['format']!r} is not {SIG_FORMAT!r}")
    if doc["algorithm"] not in ALGORITHMS:
        raise SignatureFileError(f"{path}: unknown signature algorithm {doc['algorithm']!r}")
    for key, kind in _STATEMENT.items():
        value = doc["signed"].get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SignatureFileError(
                f"the signature file {path} lacks a valid 'signed.{key}' (damaged or edited)"
            )
    if canonical(doc) != raw:
        raise SignatureFileError(
            f"the signature file {path} is not in the form cra-fw writes: it was edited after signing"
        )
    try:
        decoded = base64.b64decode(doc["signature"], validate=True)
    except ValueError as exc:
        raise SignatureFileError(f"the signature in {path} is not valid base64 (damaged or edited)") from exc
    if base64.b64encode(decoded).decode("ascii") != doc["signature"]:  # unused padding bits changed
        raise SignatureFileError(f"the signature in {path} is not canonical base64 (edited after signing)")
    return SignatureFile(path, doc)


# ---- the same statement in the ecosystem's formats --------------------------------------------

FORMATS = ("native", "openpgp", "sigstore")


def sign_openpgp(path: Path, key_path: Path, password: str | None = None, out: Path | None = None) -> Path:
    """Write an armored detached OpenPGP signature ``path.asc`` (checkable with ``gpgv``/``sqv``).

    ``key_path`` is an OpenPGP secret key (``gpg --export-secret-keys --armor``); Sequoia
    signs with its signing-capable (sub)key under its standard policy.
    """
    from pysequoia import SignatureMode, Tsk
    from pysequoia import sign_file as pgp_sign_file

    path = Path(path)
    if not path.is_file():
        raise EvidenceError(f"{path}: no such file to sign")
    data = _read_small(Path(key_path), MAX_KEY_FILE, "key file")
    try:
        tsk = Tsk.from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - pysequoia raises plain exceptions
        raise KeyFileError(
            f"{key_path} is not an OpenPGP secret key (export one with gpg --export-secret-keys --armor): "
            + str(exc).split("\n")[0]
        ) from exc
    try:
        signer = tsk.signer(password)
    except Exception as exc:  # noqa: BLE001
        reason = str(exc).split("\n")[0]
        hint = "; set the password with --password-env VAR" if "encrypted" in reason else ""
        raise KeyFileError(f"{key_path}: cannot sign with this key: {reason}{hint}") from exc
    out = Path(out) if out else Path(str(path) + ".asc")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        pgp_sign_file(signer, str(path), str(tmp), mode=SignatureMode.DETACHED, armor=True)
    except Exception as exc:  # noqa: BLE001
        tmp.unlink(missing_ok=True)
        raise EvidenceError(f"OpenPGP signing failed: {str(exc).splitlines()[0]}") from exc
    os.replace(tmp, out)
    return out
