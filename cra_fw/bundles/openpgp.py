"""OpenPGP signatures: detached (``FILE.asc``/``.sig``/``.gpg``) and inline-signed files.

The cryptography and the certificate semantics (key and subkey validity and
signing capability at signature time, expiry, revocation, algorithm policy)
are Sequoia's, through ``pysequoia``: a signature is ``valid`` only when
Sequoia's standard policy accepts it under a trusted certificate.  Sequoia
says only yes or no, so when it refuses, the packets of the signature and of
the trusted certificate are read to say why, in this order: untrusted signer,
weak algorithm (SHA-1/MD5/RIPEMD-160 digests, RSA/DSA/ElGamal keys under 2048
bits, SHA-1 self-signatures), revoked key, key expired or not yet created at
signature time, signing subkey without the signing flag at signature time,
expired signature; anything else is ``invalid_signature`` (data or signature
changed).  The explanation never turns a refusal into ``valid``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cra_fw.bundles.interface import (
    CertificateExpired,
    CertificateNotYetValid,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    Revoked,
    SignatureExpired,
    Unsigned,
    UntrustedSigner,
    Verifier,
    WeakAlgorithm,
)
from cra_fw.bundles.trust import OpenPgpCert, TrustStore

SIDECARS = (".asc", ".sig", ".gpg")
MIN_BITS = 2048
WEAK_HASHES = frozenset({"MD5", "SHA1", "RipeMD"})
_MAX_SIG = 1024 * 1024
_ARMOR_SIG = b"-----BEGIN PGP SIGNATURE-----"
_INLINE_ARMOR = (b"-----BEGIN PGP SIGNED MESSAGE-----", b"-----BEGIN PGP MESSAGE-----")
# first byte of a binary signature packet (old format tag 2, new format tag 2)
_SIG_TAGS = frozenset({0x88, 0x89, 0x8A, 0xC2})
# first byte of a binary inline-signed message (gpg --sign): one-pass signature or compressed
# data; a file that starts with a signature packet is a detached signature, not a message
_MESSAGE_TAGS = frozenset({0x90, 0x91, 0xC4, 0xA0, 0xA1, 0xA2, 0xA3, 0xC8})
# RFC 9580 public-key algorithm ids whose first MPI's bit count is the key size
_MPI_SIZED = {1: "rsa", 2: "rsa", 3: "rsa", 16: "elgamal", 17: "dsa", 20: "elgamal"}
_ALGO_NAMES = {
    "RSAEncryptSign": "RSA",
    "RSASign": "RSA",
    "RSAEncrypt": "RSA",
    "ElGamalEncrypt": "ElGamal",
    "ElGamalEncryptSign": "ElGamal",
}


def looks_like_signature(head: bytes) -> bool:
    """True when ``head`` starts an OpenPGP detached signature (armored or binary)."""
    text = head.lstrip()
    if text.startswith(_ARMOR_SIG):
        return True
    return bool(head) and head[0] in _SIG_TAGS and len(head) > 8


def find_sidecar(path: Path) -> Path | None:
    """``FILE.asc``, ``FILE.sig`` or ``FILE.gpg`` next to ``path`` that holds an OpenPGP signature."""
    for suffix in SIDECARS:
        cand = path.with_name(path.name + suffix)
        try:
            with open(cand, "rb") as fh:
                head = fh.read(64)
        except OSError:
            continue
        if looks_like_signature(head) and _parses_as_signature(cand):
            return cand
    return None


def _parses_as_signature(path: Path) -> bool:
    try:
        if path.stat().st_size > _MAX_SIG:
            return False
        return _only_signatures(path.read_bytes())
    except OSError:
        return False


def _only_signatures(data: bytes) -> bool:
    """True when ``data`` parses as one or more OpenPGP signature packets and nothing else."""
    from pysequoia.packet import PacketPile, Tag

    try:
        pile = list(PacketPile.from_bytes(data))
    except Exception:  # noqa: BLE001 - pysequoia raises plain exceptions for unparseable input
        return False
    return bool(pile) and all(p.tag == Tag.Signature for p in pile)


class OpenPgpVerifier(Verifier):
    name = "openpgp"
    description = "OpenPGP: detached .asc/.sig/.gpg next to a file, inline-signed and clear-signed files"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        stripped = head.lstrip()
        if stripped.startswith(_INLINE_ARMOR):
            return True
        if path.suffix.lower() in (".gpg", ".pgp") and head[:1] and head[0] in _MESSAGE_TAGS:
            return True
        return bool(path.name) and find_sidecar(path) is not None

    @classmethod
    def claims_signature(cls, head: bytes) -> bool:
        # a raw RSA signature starts with 0x88 one time in 256: only a parse tells them apart
        return looks_like_signature(head) and (head.lstrip().startswith(_ARMOR_SIG) or _only_signatures(head))

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        sig_path = signature or find_sidecar(path)
        inline = sig_path is None
        if inline:
            with open(path, "rb") as fh:
                head = fh.read(64)
            if not (head.lstrip().startswith(_INLINE_ARMOR) or (head[:1] and head[0] in _MESSAGE_TAGS)):
                raise Unsigned(f"no OpenPGP signature given and no {', '.join(SIDECARS)} next to {path.name}")
            sigs = _inline_signatures(path)
            ev.notes.append("inline-signed message: the signed content is the literal data inside")
        else:
            assert sig_path is not None
            ev.notes.append(f"signature file: {sig_path.name}")
            sigs = _detached_signatures(Path(sig_path))
        if not sigs:
            raise Unsigned("the OpenPGP data holds no signature")
        certs = _load_certs(trust.openpgp)
        first = sigs[0]
        ev.signed_at = first.created.isoformat(timespec="seconds") if first.created else ""
        matched = [(s, c, k) for s in sigs for c in certs for k in c.keys if s.matches(k)]
        if not matched:
            ids = ", ".join(s.issuer or "?" for s in sigs)
            if not certs:
                raise UntrustedSigner(
                    f"signed by OpenPGP key {ids}; no OpenPGP certificate given with --trust"
                )
            raise UntrustedSigner(
                f"signed by OpenPGP key {ids}, which is in none of the trusted certificates"
            )
        sig, cert, key = matched[0]
        ev.signer = cert.user_id or cert.fingerprint
        ev.key_fingerprint = f"openpgp:{key.fingerprint}"
        ev.algorithm(f"openpgp-{key.algorithm.lower()}{key.bits or ''}-{sig.hash.lower()}")
        if key.fingerprint != cert.fingerprint:
            ev.notes.append(f"signed by subkey {key.fingerprint} of {cert.fingerprint}")
        content = _sequoia_verify(path, sig_path, [c for _s, c, _k in matched])
        if content is not None:
            # belt and braces: Sequoia's policy already refuses these
            _check_strength(sig, key, cert)
            ev.cover(f"{path.name} ({content} bytes{' of signed literal data' if inline else ''})")
            return
        _explain_refusal(sig, cert, key, now)


# ------------------------------------------------------------------ signatures


@dataclass(frozen=True)
class _Sig:
    issuer: str  # fingerprint or key id, upper-case hex
    created: dt.datetime | None
    expires: dt.datetime | None
    hash: str
    sig_type: str

    def matches(self, key: _Key) -> bool:
        return bool(self.issuer) and key.fingerprint.endswith(self.issuer)


def _sig_from_packet(p: Any) -> _Sig:
    created = p.signature_created
    validity = p.signature_validity_period
    issuer = p.issuer_fingerprint or p.issuer_key_id or ""
    return _Sig(
        issuer=issuer.upper(),
        created=created,
        expires=created + validity if created is not None and validity else None,
        hash=_enum_name(p.hash_algorithm),
        sig_type=_enum_name(p.signature_type),
    )


def _detached_signatures(sig_path: Path) -> list[_Sig]:
    from pysequoia.packet import PacketPile, Tag

    data = sig_path.read_bytes()[: _MAX_SIG + 1]
    if len(data) > _MAX_SIG:
        raise MalformedBundle("OpenPGP signature file is larger than 1 MiB")
    if not data.strip():
        raise Unsigned("signature file is empty")
    try:
        pile = list(PacketPile.from_bytes(data))
    except Exception as exc:  # noqa: BLE001 - pysequoia raises plain exceptions
        raise MalformedBundle(f"not an OpenPGP signature: {_first_line(exc)}") from exc
    if not pile or any(p.tag != Tag.Signature for p in pile):
        raise MalformedBundle("the signature file holds OpenPGP packets other than signatures")
    return [_sig_from_packet(p) for p in pile]


def _inline_signatures(path: Path) -> list[_Sig]:
    """Signature packets of an inline-signed or clear-signed message (compressed data is opened)."""
    from pysequoia.packet import PacketPile, Tag

    try:
        pile = PacketPile.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - pysequoia raises plain exceptions
        raise MalformedBundle(f"not an OpenPGP message: {_first_line(exc)}") from exc
    return [_sig_from_packet(p) for p in pile if p.tag == Tag.Signature]


def _sequoia_verify(path: Path, sig_path: Path | None, certs: list[_Cert]) -> int | None:
    """Bytes covered when Sequoia accepts the signature, else None."""
    from pysequoia import Cert, Sig, verify

    pool = [Cert.from_bytes(c.data) for c in dict.fromkeys(certs)]

    def store(_ids: list[str]) -> list[Any]:
        return pool

    try:
        if sig_path is not None:
            verify(file=str(path), store=store, signature=Sig.from_bytes(Path(sig_path).read_bytes()))
            return path.stat().st_size
        result = verify(file=str(path), store=store)
    except Exception:  # noqa: BLE001 - pysequoia's only answer for every refusal
        return None
    if not result.valid_sigs:
        return None
    return len(result.bytes) if result.bytes is not None else path.stat().st_size


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class _Binding:
    created: dt.datetime | None
    flags: Any  # pysequoia KeyFlags or None
    validity: dt.timedelta | None
    hash: str


@dataclass
class _Key:
    fingerprint: str
    created: dt.datetime | None
    algorithm: str
    bits: int
    primary: bool
    bindings: list[_Binding] = field(default_factory=list)
    revocations: list[dt.datetime | None] = field(default_factory=list)

    def binding_at(self, when: dt.datetime | None) -> _Binding | None:
        """The newest self-signature made at or before ``when``."""
        usable = [b for b in self.bindings if b.created is not None and (when is None or b.created <= when)]
        return max(usable, key=lambda b: b.created) if usable else None  # type: ignore[arg-type,return-value]


@dataclass
class _Cert:
    data: bytes
    fingerprint: str
    user_id: str
    revoked: bool
    expiration: dt.datetime | None
    keys: list[_Key]

    def __hash__(self) -> int:
        return hash(self.fingerprint)


def _load_certs(trusted: list[OpenPgpCert]) -> list[_Cert]:
    from pysequoia import Cert
    from pysequoia.packet import PacketPile, Tag

    out: list[_Cert] = []
    for tc in trusted:
        cert = Cert.from_bytes(tc.data)
        keys: list[_Key] = []
        user_id = ""
        primary_fpr = cert.fingerprint.upper()
        for p in PacketPile.from_bytes(tc.data):
            if p.tag == Tag.UserID and not user_id:
                user_id = p.user_id or ""
            elif p.tag in (Tag.PublicKey, Tag.PublicSubkey):
                keys.append(
                    _Key(
                        fingerprint=(p.fingerprint or "").upper(),
                        created=p.key_created,
                        algorithm=_ALGO_NAMES.get(_enum_name(p.key_algorithm), _enum_name(p.key_algorithm)),
                        bits=_key_bits(p.body),
                        primary=p.tag == Tag.PublicKey,
                    )
                )
            elif p.tag == Tag.Signature and keys:
                issuer = (p.issuer_fingerprint or p.issuer_key_id or "").upper()
                if not primary_fpr.endswith(issuer) or not issuer:
                    continue  # a third-party certification says nothing about key validity
                kind = _enum_name(p.signature_type)
                target = (
                    keys[-1] if not keys[-1].primary or kind in ("KeyRevocation", "DirectKey") else keys[0]
                )
                if kind in ("KeyRevocation", "SubkeyRevocation"):
                    target.revocations.append(p.signature_created)
                elif kind in (
                    "SubkeyBinding",
                    "DirectKey",
                    "PositiveCertification",
                    "GenericCertification",
                    "CasualCertification",
                    "PersonaCertification",
                ):
                    target.bindings.append(
                        _Binding(
                            p.signature_created,
                            p.key_flags,
                            p.key_validity_period,
                            _enum_name(p.hash_algorithm),
                        )
                    )
        try:  # Sequoia answers these only for certificates its policy accepts
            revoked, expiration = cert.is_revoked, cert.expiration
        except Exception:  # noqa: BLE001
            revoked, expiration = False, None
        out.append(_Cert(tc.data, primary_fpr, user_id, revoked, expiration, keys))
    return out


def _key_bits(body: bytes) -> int:
    """Bit size of RSA/DSA/ElGamal key material (its first MPI); 0 for curve-based keys."""
    if len(body) < 8:
        return 0
    version, algo = body[0], body[5]
    if algo not in _MPI_SIZED:
        return 0
    off = 6 if version == 4 else 10  # v6 keys put a 4-octet key material length first
    return int.from_bytes(body[off : off + 2], "big") if len(body) >= off + 2 else 0


# ------------------------------------------------------------------ why Sequoia refused


def _check_strength(sig: _Sig, key: _Key, cert: _Cert) -> None:
    if sig.hash in WEAK_HASHES:
        raise WeakAlgorithm(f"the signature uses the broken digest {sig.hash} (use SHA-256 or stronger)")
    if key.bits and key.bits < MIN_BITS:
        raise WeakAlgorithm(f"the signing key is {key.algorithm} of {key.bits} bits (minimum {MIN_BITS})")
    for k in {id(key): key, id(cert.keys[0]): cert.keys[0]}.values():
        b = k.binding_at(sig.created)
        if b is not None and b.hash in WEAK_HASHES:
            raise WeakAlgorithm(
                f"the key {k.fingerprint} is bound to its certificate by a {b.hash} self-signature "
                "(forgeable; re-sign the certificate with SHA-256)"
            )


def _explain_refusal(sig: _Sig, cert: _Cert, key: _Key, now: dt.datetime) -> None:
    """Raise the error that says why Sequoia refused; every path raises."""
    _check_strength(sig, key, cert)
    when = sig.created
    primary = cert.keys[0]
    if cert.revoked or primary.revocations:
        raise Revoked(f"the certificate {cert.fingerprint} ({cert.user_id}) is revoked")
    if key.revocations:
        raise Revoked(f"the signing subkey {key.fingerprint} is revoked")
    if when is not None:
        for k in {id(primary): primary, id(key): key}.values():
            if k.created is not None and when < k.created:
                raise CertificateNotYetValid(
                    f"the signature ({when:%Y-%m-%d %H:%M}) predates the key {k.fingerprint} ({k.created:%Y-%m-%d})"
                )
            b = k.binding_at(when)
            if b is not None and b.validity and k.created is not None and when >= k.created + b.validity:
                raise CertificateExpired(
                    f"the key {k.fingerprint} expired {k.created + b.validity:%Y-%m-%d %H:%M} UTC, "
                    f"before it signed ({when:%Y-%m-%d %H:%M} UTC)"
                )
        if cert.expiration is not None and when >= cert.expiration:
            raise CertificateExpired(
                f"the certificate {cert.fingerprint} expired {cert.expiration:%Y-%m-%d} before the signature"
            )
        b = key.binding_at(when)
        if b is not None and b.flags is not None and not b.flags.signing:
            raise UntrustedSigner(
                f"the key {key.fingerprint} is not signing-capable at signature time "
                f"(its binding of {b.created:%Y-%m-%d} grants {_flags(b.flags)})"
            )
    if sig.expires is not None and sig.expires <= now:
        raise SignatureExpired(f"the signature expired {sig.expires:%Y-%m-%d %H:%M} UTC")
    raise InvalidSignature(
        "the OpenPGP signature does not verify: the data or the signature was changed after signing"
    )


def _flags(flags: Any) -> str:
    names = [n for n in ("certification", "signing", "authentication") if getattr(flags, n)]
    if flags.storage_encryption or flags.transport_encryption:
        names.append("encryption")
    return ", ".join(names) or "nothing"


def _enum_name(value: Any) -> str:
    return str(value).rsplit(".", 1)[-1] if value is not None else ""


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0]
