"""Hashing in chunks, signature primitives and bounded image reading shared by the verifiers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from cryptography.exceptions import InvalidSignature as _CryptoInvalid
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cra_fw.bundles.interface import MalformedBundle, Notebook, WeakAlgorithm
from cra_fw.parsers import ParseError

CHUNK = 1024 * 1024
MAX_MCU_IMAGE = 64 * 1024 * 1024  # far above any microcontroller flash slot
_T = TypeVar("_T")
WEAK_HASHES = frozenset({"md5", "sha1"})
MIN_RSA_BITS = 2048

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[name.lower().replace("-", "")]()
    except KeyError:
        raise MalformedBundle(f"unsupported digest algorithm {name!r}") from None


def chunks(fh: BinaryIO, offset: int, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield ``size`` bytes from ``offset`` in chunks; a short file is malformed."""
    fh.seek(offset)
    left = size
    while left > 0:
        data = fh.read(min(chunk, left))
        if not data:
            raise MalformedBundle(f"file truncated: {left} bytes missing at offset {offset + size - left}")
        left -= len(data)
        yield data


def digest_stream(parts: Iterable[bytes], algs: Iterable[str]) -> dict[str, bytes]:
    hashers = {a: hashlib.new(a) for a in algs}
    for part in parts:
        for h in hashers.values():
            h.update(part)
    return {a: h.digest() for a, h in hashers.items()}


def check_key_strength(key: PublicKeyTypes, ev: Notebook) -> None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise WeakAlgorithm(f"RSA key of {key.key_size} bits (minimum {MIN_RSA_BITS})")


def check_hash_strength(name: str) -> None:
    if name.lower().replace("-", "") in WEAK_HASHES:
        raise WeakAlgorithm(f"signature digest {name} is broken (use SHA-256 or stronger)")


def verify_prehashed(
    key: PublicKeyTypes,
    signature: bytes,
    digest: bytes,
    hash_name: str,
    scheme: str = "pkcs1",
    pss_salt: int | None = None,
) -> bool:
    """Verify ``signature`` over a precomputed digest; True when it verifies.

    ``scheme`` is ``pkcs1`` or ``pss`` for RSA; ECDSA signatures are DER, or raw
    r||s when ``scheme`` is ``raw``.  Ed25519 cannot verify a digest.
    """
    alg = utils.Prehashed(hash_algorithm(hash_name))
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if scheme == "pss":
                salt = padding.PSS.AUTO if pss_salt is None else pss_salt
                pad: padding.AsymmetricPadding = padding.PSS(
                    mgf=padding.MGF1(hash_algorithm(hash_name)), salt_length=salt
                )
            else:
                pad = padding.PKCS1v15()
            key.verify(signature, digest, pad, alg)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            if scheme == "raw":
                signature = raw_to_der_ecdsa(signature, key)
            key.verify(signature, digest, ec.ECDSA(alg))
            return True
    except (_CryptoInvalid, ValueError, TypeError):
        return False
    return False


def verify_ed25519(key: PublicKeyTypes, signature: bytes, message: bytes | memoryview) -> bool:
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return False
    try:
        key.verify(signature, message)
        return True
    except (_CryptoInvalid, ValueError, TypeError):
        return False


def raw_to_der_ecdsa(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        raise ValueError("raw ECDSA signature has the wrong length")
    return utils.encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )


def read_image(path: Path, parse: Callable[[bytes, int], _T], what: str) -> tuple[bytes, _T]:
    """Read a (small) microcontroller image whole and parse it; too big or unreadable is malformed."""
    if path.stat().st_size > MAX_MCU_IMAGE:
        raise MalformedBundle(f"file is larger than {MAX_MCU_IMAGE} bytes; no {what} is")
    data = path.read_bytes()
    try:
        return data, parse(data, 0)
    except ParseError as exc:
        raise MalformedBundle(f"not a readable {what}: {exc}") from exc
