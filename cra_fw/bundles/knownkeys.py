"""Signing keys whose private half is public (``signatures/keys/*.toml``).

A signature made with such a key proves nothing: anyone can make one.  The data
lists each key's public half (or a certificate of it) and where its private half
was published; :func:`find` answers "is this key one of them", :func:`trust_store`
gives a :class:`TrustStore` of all of them, so a bundle whose signer the bundle does
not name (raw signatures, MCUboot, ESP, Nordic) can be checked against them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cra_fw.bundles.trust import TrustedKey, TrustStore, key_fingerprint
from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir

SOURCE_PREFIX = "known-key:"
_FIELDS = {
    "id",
    "name",
    "project",
    "published",
    "spki_sha256",
    "public_key",
    "certificate",
    "file_sha256",
    "note",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class KnownKey:
    """One publicly known signing key."""

    id: str
    name: str
    project: str
    published: str
    spki_sha256: str
    key: PublicKeyTypes
    certificate: x509.Certificate | None = None
    note: str = ""

    @property
    def fingerprint(self) -> str:
        return "sha256:" + self.spki_sha256

    @property
    def summary(self) -> str:
        return f"{self.name} ({self.project}; private key published at {self.published})"


def keys_dir() -> Path:
    return signatures_dir() / "keys"


@functools.cache
def known_keys(folder: Path | None = None) -> tuple[KnownKey, ...]:
    """Every known key under ``folder`` (default ``signatures/keys``), parsed once per process."""
    folder = folder or keys_dir()
    out: list[KnownKey] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("*.toml")):
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SignatureDataError(f"{path}: {exc}") from exc
        for i, entry in enumerate(doc.get("key", [])):
            key = _entry(entry, f"{path.name} key #{i + 1}")
            if key.id in seen:
                raise SignatureDataError(f"{path.name}: duplicate known key id {key.id!r}")
            seen.add(key.id)
            out.append(key)
    return tuple(out)


def _entry(entry: dict, where: str) -> KnownKey:
    unknown = set(entry) - _FIELDS
    if unknown:
        raise SignatureDataError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    for field in ("id", "name", "project", "published", "spki_sha256"):
        if not isinstance(entry.get(field), str) or not entry[field]:
            raise SignatureDataError(f"{where}: {field} is required")
    if not _HEX64.fullmatch(entry["spki_sha256"]):
        raise SignatureDataError(f"{where}: spki_sha256 must be 64 lower-case hex digits")
    cert = None
    try:
        if "certificate" in entry:
            cert = x509.load_pem_x509_certificate(entry["certificate"].encode())
            key = cert.public_key()
        elif "public_key" in entry:
            key = serialization.load_pem_public_key(entry["public_key"].encode())
        else:
            raise SignatureDataError(f"{where}: public_key or certificate is required")
    except ValueError as exc:
        raise SignatureDataError(f"{where}: unreadable key: {exc}") from exc
    # the hash is what a reader checks against the published file; it must be this key's
    if key_fingerprint(key) != "sha256:" + entry["spki_sha256"]:
        raise SignatureDataError(f"{where}: spki_sha256 is not the hash of the given key")
    return KnownKey(
        id=entry["id"],
        name=entry["name"],
        project=entry["project"],
        published=entry["published"],
        spki_sha256=entry["spki_sha256"],
        key=key,
        certificate=cert,
        note=entry.get("note", ""),
    )


@functools.cache
def _by_fingerprint() -> dict[str, KnownKey]:
    return {k.fingerprint: k for k in known_keys()}


def find(fingerprint: str) -> KnownKey | None:
    """The known key with this ``sha256:<hex>`` SubjectPublicKeyInfo fingerprint, or None."""
    return _by_fingerprint().get(fingerprint) if fingerprint else None


def find_key(key: PublicKeyTypes) -> KnownKey | None:
    return find(key_fingerprint(key))


def trust_store() -> TrustStore:
    """All known keys as trust anchors (certificates as CA anchors, the rest as bare keys)."""
    store = TrustStore()
    for k in known_keys():
        if k.certificate is not None:
            store.certificates.append(k.certificate)
        store.keys.append(TrustedKey(k.key, SOURCE_PREFIX + k.id, k.name))
    store.sources.append("publicly known keys (signatures/keys)")
    return store


def keyhash_index(hash_name: str, encoder) -> dict[bytes, KnownKey]:  # noqa: ANN001 - callable(key) -> bytes
    """digest(encoder(key)) -> known key: for formats that name their key by a hash (MCUboot KEYHASH)."""
    out: dict[bytes, KnownKey] = {}
    for k in known_keys():
        try:
            raw = encoder(k.key)
        except (TypeError, ValueError):
            continue
        if raw:
            out[hashlib.new(hash_name, raw).digest()] = k
    return out
