"""Sigstore bundles (``FILE.sigstore.json`` / ``FILE.sigstore``, bundle v0.1 to v0.3), offline.

Keyless bundles (a Fulcio-style certificate) are verified by sigstore-python's
``Verifier`` against a trusted root: the ``trusted_root.json`` files given with
``--trust``/``--trust-root``, else the public-good root sigstore-python ships
(read from the package, never fetched).  It checks the signature, the
certificate chain to the CA at the log's integration time, the SCT, the Rekor
inclusion proof and signed checkpoint (and the SET), and the identity policy
(``--certificate-identity`` + ``--certificate-oidc-issuer``).  Against the
public-good root a bundle is ``valid`` only with an identity policy: anyone can
get a certificate there.  DSSE bundles must carry an in-toto subject with the
file's SHA-256, as ``sigstore verify`` requires.

Key-based bundles (``verificationMaterial.publicKey``, as ``cosign sign-blob
--key --new-bundle-format`` writes) are outside sigstore-python: cra-fw checks
their message signature against the ``--trust`` keys itself and, when the bundle
has a transparency-log entry, its inclusion proof, checkpoint and SET with
sigstore-python's log-entry checks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from cra_fw.bundles.crypto import chunks, digest_stream, verify_prehashed
from cra_fw.bundles.interface import (
    CertificateExpired,
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    Unsigned,
    UntrustedSigner,
    Verifier,
)
from cra_fw.bundles.trust import TrustStore, key_fingerprint

SIDECARS = (".sigstore.json", ".sigstore")
MAX_BUNDLE = 16 * 1024 * 1024
_MEDIA = "application/vnd.dev.sigstore.bundle"
PUBLIC_GOOD = "sigstore public-good (shipped with sigstore-python)"


def _looks_like_bundle(head: bytes) -> bool:
    return head.lstrip()[:1] == b"{" and _MEDIA.encode() in head


def find_sidecar(path: Path) -> Path | None:
    for suffix in SIDECARS:
        cand = path.with_name(path.name + suffix)
        try:
            with open(cand, "rb") as fh:
                if _looks_like_bundle(fh.read(4096)):
                    return cand
        except OSError:
            continue
    return None


def load_root(raw: bytes) -> Any:
    """sigstore-python's TrustedRoot from the bytes of a trusted_root.json."""
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot.v1 import TrustedRoot as RawRoot

    return TrustedRoot(RawRoot.from_json(raw))


def public_good_root() -> bytes:
    """The production trusted_root.json that sigstore-python ships in its package."""
    store = resources.files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    return (store / "trusted_root.json").read_bytes()


class SigstoreVerifier(Verifier):
    name = "sigstore"
    description = "Sigstore bundle (FILE.sigstore.json / FILE.sigstore) next to a file, v0.1 to v0.3"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        return bool(path.name) and find_sidecar(path) is not None

    @classmethod
    def claims_signature(cls, head: bytes) -> bool:
        return _looks_like_bundle(head)

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        bundle_path = signature or find_sidecar(path)
        if bundle_path is None:
            raise Unsigned(f"no Sigstore bundle given and no {', '.join(SIDECARS)} next to {path.name}")
        ev.notes.append(f"bundle: {Path(bundle_path).name}")
        raw = Path(bundle_path).read_bytes()[: MAX_BUNDLE + 1]
        if len(raw) > MAX_BUNDLE:
            raise MalformedBundle("Sigstore bundle is larger than 16 MiB")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise MalformedBundle(f"the bundle is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(_MEDIA):
            raise MalformedBundle("not a Sigstore bundle (no application/vnd.dev.sigstore.bundle media type)")
        ev.notes.append(f"media type: {doc['mediaType']}")
        with open(path, "rb") as fh:
            digest = digest_stream(chunks(fh, 0, path.stat().st_size), ("sha256",))["sha256"]
        material = doc.get("verificationMaterial")
        if isinstance(material, dict) and "publicKey" in material:
            _verify_key_based(doc, digest, trust, ev)
        else:
            _verify_keyless(raw, digest, trust, ev)
        ev.cover(f"{path.name} ({path.stat().st_size} bytes, sha256 {digest.hex()[:16]}...)")


# ------------------------------------------------------------------ keyless (certificate)


def _verify_keyless(raw: bytes, digest: bytes, trust: TrustStore, ev: Notebook) -> None:
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, InvalidBundle
    from sigstore.verify import Verifier as SigstoreVerifierApi
    from sigstore.verify import policy
    from sigstore_models.common.v1 import HashAlgorithm

    try:
        bundle = Bundle.from_json(raw)
    except (InvalidBundle, ValueError) as exc:
        raise MalformedBundle(f"sigstore-python refuses the bundle: {_first_line(exc)}") from exc
    cert = bundle.signing_certificate
    sans, issuer = _identity(cert)
    ev.signer = ", ".join(sans) + (f" (issuer {issuer})" if issuer else "")
    ev.key_fingerprint = key_fingerprint(cert.public_key())
    ev.cert_not_before = cert.not_valid_before_utc.isoformat(timespec="seconds")
    ev.cert_not_after = cert.not_valid_after_utc.isoformat(timespec="seconds")
    entry = bundle.log_entry._inner
    if entry.integrated_time:
        ev.signed_at = dt.datetime.fromtimestamp(int(entry.integrated_time), dt.UTC).isoformat()
    ev.algorithm("sigstore-" + ("dsse" if bundle._dsse_envelope else "message") + "-ecdsa-sha256")
    _precheck_message(bundle, digest)
    roots = trust.sigstore_roots or [(public_good_root(), PUBLIC_GOOD)]
    identities = trust.identities
    pol: Any = (
        policy.AnyOf([policy.Identity(identity=i, issuer=iss or None) for i, iss in identities])
        if identities
        else _AnyIdentity()
    )
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    errors: list[tuple[str, str]] = []
    for root_bytes, source in roots:
        verifier = SigstoreVerifierApi(trusted_root=load_root(root_bytes))
        try:
            if bundle._dsse_envelope:
                _verify_dsse(verifier, bundle, pol, hashed)
            else:
                verifier.verify_artifact(input_=hashed, bundle=bundle, policy=pol)
        except SigstoreError as exc:
            errors.append((source, _first_line(exc)))
            continue
        ev.notes.append(f"trusted root: {source}")
        # the CA keys the certificate chains through, for the publicly-known-key check
        issuers = [c for c in load_root(root_bytes).get_fulcio_certs() if c.subject == cert.issuer]
        ev.chain_fingerprints = [key_fingerprint(c.public_key()) for c in issuers]
        if not identities:
            if source == PUBLIC_GOOD:
                raise UntrustedSigner(
                    f"the bundle verifies against the public-good root, but anyone can get a certificate "
                    f"there: pin the signer with --certificate-identity and --certificate-oidc-issuer "
                    f"(this one is {ev.signer})"
                )
            ev.notes.append("no identity policy: every certificate of this private root is trusted")
        else:
            ev.notes.append(f"identity policy matched: {ev.signer}")
        return
    _raise_for(errors)


def _precheck_message(bundle: Any, digest: bytes) -> None:
    """Digest and signature against the certificate's key first, so that a changed file or signature
    is named as such even when sigstore-python stops earlier (a timestamp over the old signature)."""
    msg = bundle._inner.message_signature
    if msg is None:
        return  # DSSE: sigstore-python checks the envelope
    if msg.message_digest is not None and msg.message_digest.digest != digest:
        raise DigestMismatch(
            "the file is not the one the bundle signs: its SHA-256 differs from the bundle's"
        )
    key = bundle.signing_certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return  # RSA (PSS or PKCS#1) certificates: left to sigstore-python
    if not verify_prehashed(key, msg.signature, digest, "sha256", "pkcs1"):
        raise InvalidSignature(
            "the bundle's signature does not verify over the file with the certificate's key"
        )


class _AnyIdentity:
    """A policy that accepts every certificate (only for private roots; sigstore's own no-op warns)."""

    def verify(self, cert: Any) -> None:
        return None


def _verify_dsse(verifier: Any, bundle: Any, pol: Any, hashed: Any) -> None:
    from sigstore import dsse
    from sigstore.errors import VerificationError

    type_, payload = verifier.verify_dsse(bundle=bundle, policy=pol)
    if type_ != dsse.Envelope._TYPE:
        raise VerificationError(f"expected an in-toto JSON payload in the DSSE envelope, got {type_}")
    if not dsse.Statement(payload)._matches_digest(hashed):
        raise VerificationError(f"in-toto statement has no subject for digest {hashed.digest.hex()}")


def _raise_for(errors: list[tuple[str, str]]) -> None:
    """Turn sigstore-python's refusal (the first root's, or the most telling) into a verdict."""
    source, message = errors[0]
    for s, m in errors:  # a chain problem under one root says less than a signature problem under another
        if "certificate chain" not in m:
            source, message = s, m
            break
    text = f"{message} (trusted root: {source})"
    low = message.lower()
    if "digest mismatch" in low or "no subject for digest" in low:
        raise DigestMismatch(f"the file is not the one the bundle signs: {text}")
    if "signature is invalid" in low or "signature verification failed" in low:
        raise InvalidSignature(f"the signature does not verify over the file: {text}")
    if "expired at time of signing" in low:
        raise CertificateExpired(text)
    if any(
        w in low
        for w in (
            "certificate chain",
            "sct",
            "san",
            "issuer",
            "identity",
            "policies succeeded",
            "verified time",
        )
    ):
        raise UntrustedSigner(text)
    if "log entry" in low or "inclusion" in low or "checkpoint" in low or "set:" in low:
        raise InvalidSignature(f"the transparency-log proof does not verify: {text}")
    raise InvalidSignature(text)


def _identity(cert: Any) -> tuple[list[str], str]:
    from cryptography import x509
    from cryptography.x509.oid import ObjectIdentifier

    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.RFC822Name)]
        sans += [str(v) for v in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        pass
    issuer = ""
    for oid, der in (("1.3.6.1.4.1.57264.1.8", True), ("1.3.6.1.4.1.57264.1.1", False)):
        try:
            value = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid)).value.value
        except x509.ExtensionNotFound:
            continue
        issuer = (value[2:] if der and len(value) > 2 else value).decode("utf-8", "replace")
        break
    return sans, issuer


# ------------------------------------------------------------------ key-based (public key hint)


def _verify_key_based(doc: dict[str, Any], digest: bytes, trust: TrustStore, ev: Notebook) -> None:
    msg = doc.get("messageSignature")
    if not isinstance(msg, dict):
        raise MalformedBundle("key-based bundle without a messageSignature (DSSE with keys is not supported)")
    try:
        signature = base64.b64decode(msg["signature"], validate=True)
        recorded = msg.get("messageDigest") or {}
        recorded_digest = base64.b64decode(recorded.get("digest", ""), validate=True) if recorded else b""
    except (KeyError, TypeError, binascii.Error) as exc:
        raise MalformedBundle(f"key-based bundle: unreadable messageSignature: {exc}") from exc
    if recorded and recorded.get("algorithm") != "SHA2_256":
        raise MalformedBundle(f"unsupported message digest algorithm {recorded.get('algorithm')!r}")
    hint = (
        str(doc["verificationMaterial"]["publicKey"].get("hint", ""))
        if isinstance(doc["verificationMaterial"].get("publicKey"), dict)
        else ""
    )
    ev.signer = f"public key{' ' + hint if hint else ''}"
    if recorded_digest and recorded_digest != digest:
        raise DigestMismatch("the file's SHA-256 differs from the digest the bundle records")
    keys = trust.all_keys()
    if not keys:
        raise UntrustedSigner("key-based Sigstore bundle: give the signer's public key with --trust")
    for tk in keys:
        if isinstance(tk.key, ed25519.Ed25519PublicKey):
            continue  # Ed25519 signs the message itself; cra-fw checks digests here
        if verify_prehashed(tk.key, signature, digest, "sha256", "pkcs1") or verify_prehashed(
            tk.key, signature, digest, "sha256", "pss"
        ):
            ev.key_fingerprint = tk.fingerprint
            ev.algorithm("sigstore-key-" + type(tk.key).__name__.replace("PublicKey", "").lower() + "-sha256")
            break
    else:
        raise InvalidSignature(
            "the bundle's signature does not verify under any trusted key (altered file or bundle, or another signer)"
        )
    entries = doc["verificationMaterial"].get("tlogEntries") or []
    if not entries:
        ev.notes.append("no transparency-log entry: the signature is checked against the key only")
        return
    _verify_log_entries(entries, digest, signature, trust, ev)


def _verify_log_entries(
    entries: list[Any], digest: bytes, signature: bytes, trust: TrustStore, ev: Notebook
) -> None:
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as RawEntry

    roots = trust.sigstore_roots or [(public_good_root(), PUBLIC_GOOD)]
    for item in entries:
        try:
            entry = TransparencyLogEntry(RawEntry.from_dict(item))
            body = json.loads(entry._inner.canonicalized_body)
        except Exception as exc:  # noqa: BLE001 - pydantic/sigstore raise several types
            raise MalformedBundle(f"unreadable transparency-log entry: {_first_line(exc)}") from exc
        spec = body.get("spec", {}) if isinstance(body, dict) else {}
        logged_digest = (((spec.get("data") or {}).get("hash") or {}).get("value") or "").lower()
        logged_sig = (spec.get("signature") or {}).get("content", "")
        if logged_digest != digest.hex() or logged_sig != base64.b64encode(signature).decode():
            raise InvalidSignature(
                "the transparency-log entry records another digest or signature than the bundle"
            )
        failures = []
        for root_bytes, source in roots:
            keyring = load_root(root_bytes).rekor_keyring(KeyringPurpose.VERIFY)
            try:
                entry._verify(keyring)
            except SigstoreError as exc:
                failures.append(f"{source}: {_first_line(exc)}")
                continue
            ev.notes.append(f"transparency-log entry {entry._inner.log_index} verified against {source}")
            if entry._inner.integrated_time:
                ev.signed_at = dt.datetime.fromtimestamp(
                    int(entry._inner.integrated_time), dt.UTC
                ).isoformat()
            break
        else:
            raise InvalidSignature("the transparency-log proof does not verify: " + "; ".join(failures))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
