"""CMS (PKCS#7 SignedData) verification: asn1crypto parses, ``cryptography`` verifies.

The checks run in a fixed order, and the first failure decides the verdict:
structure (malformed) -> content digest (digest_mismatch) -> signature
(invalid_signature) -> chain to a trust anchor (untrusted_signer) ->
validity now and at signing time (certificate_expired / not_yet_valid) ->
key usage (untrusted_signer) -> algorithm strength (weak_algorithm).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import cms as acms
from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalid
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from cra_fw.bundles.crypto import (
    MIN_RSA_BITS,
    WEAK_HASHES,
    check_hash_strength,
    check_key_strength,
    hash_algorithm,
    verify_ed25519,
    verify_prehashed,
)
from cra_fw.bundles.interface import (
    CertificateExpired,
    CertificateNotYetValid,
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    Unsigned,
    UntrustedSigner,
    WeakAlgorithm,
)
from cra_fw.bundles.trust import TrustStore, key_fingerprint

MAX_CHAIN = 8
_ACCEPTED_EKU = {
    x509.ExtendedKeyUsageOID.CODE_SIGNING,
    x509.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}

# hash name -> digest of the content, for whichever algorithms the signers use
ContentDigester = Callable[[tuple[str, ...]], dict[str, bytes]]


@dataclass(frozen=True)
class CmsResult:
    content: bytes | None  # the encapsulated content, when attached
    signer: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_signed_data(der: bytes) -> acms.SignedData:
    if not der:
        raise Unsigned("empty CMS signature")
    try:
        info = acms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedBundle(f"CMS content is {info['content_type'].native}, not signed data")
        sd = info["content"]
        sd.native  # noqa: B018 - forces a full parse so corruption surfaces here
        return sd
    except MalformedBundle:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises arbitrary types on hostile DER
        raise MalformedBundle(f"CMS signature cannot be parsed: {type(exc).__name__}: {exc}") from exc


def verify_cms(
    der: bytes,
    trust: TrustStore,
    ev: Notebook,
    *,
    detached: ContentDigester | None = None,
    now: dt.datetime | None = None,
) -> CmsResult:
    """Verify a CMS SignedData; returns the attached content and the signer.

    ``detached`` digests the external content when the CMS does not carry it.
    Raises a :class:`BundleError` subclass on the first failing check.
    """
    now = now or utcnow()
    sd = parse_signed_data(der)
    signer_infos = list(sd["signer_infos"])
    if not signer_infos:
        raise Unsigned("CMS carries no signer")
    _check_unsigned_fields(sd, signer_infos)
    certs: list[x509.Certificate] = []
    for choice in sd["certificates"] or []:
        if choice.name != "certificate":
            continue
        try:
            certs.append(x509.load_der_x509_certificate(choice.chosen.dump()))
        except (ValueError, x509.InvalidVersion):
            ev.notes.append("a certificate in the CMS could not be parsed and was ignored")
    content_obj = sd["encap_content_info"]["content"]
    attached: bytes | None = None
    if content_obj.native is not None:
        attached = bytes(content_obj.contents) if content_obj.contents is not None else b""
        # an OCTET STRING carries its value after the tag/length
        attached = content_obj.native if isinstance(content_obj.native, bytes) else attached
    elif detached is None:
        raise MalformedBundle("CMS signature is detached but no content was given")

    econtent_type = sd["encap_content_info"]["content_type"].dotted
    algs = tuple(sorted({_digest_name(si) for si in signer_infos}))
    for a in algs:
        hash_algorithm(a)  # unsupported digests are malformed, before any hashing
    if attached is not None:
        import hashlib

        digests = {a: hashlib.new(a, attached).digest() for a in algs}
    else:
        assert detached is not None
        digests = detached(algs)

    results: list[tuple[x509.Certificate, tuple[x509.Certificate, ...]]] = []
    for si in signer_infos:
        results.append(_verify_signer(si, certs, trust, ev, digests, econtent_type, now))
    signer, chain = results[0]
    return CmsResult(attached, signer, chain)


def _check_unsigned_fields(sd: acms.SignedData, signer_infos: list[acms.SignerInfo]) -> None:
    """The SignedData version and digestAlgorithms set are outside every signature;
    they must be exactly what RFC 5652 (5.1) derives from the rest, so that no
    changed byte of the CMS goes unnoticed."""
    certs = list(sd["certificates"] or [])
    crls = list(sd["crls"] or [])
    kinds = {c.name for c in certs}
    if "other" in {c.name for c in crls} or "other" in kinds:
        want = 5
    elif "v2_attr_cert" in kinds:
        want = 4
    elif (
        "v1_attr_cert" in kinds
        or any(si["version"].native == "v3" for si in signer_infos)
        or sd["encap_content_info"]["content_type"].native != "data"
    ):
        want = 3
    else:
        want = 1
    version = sd["version"].native
    if version != f"v{want}":
        raise MalformedBundle(f"CMS SignedData version {version} differs from v{want} (RFC 5652 5.1)")
    listed = []
    for alg in sd["digest_algorithms"]:
        if alg["parameters"].native is not None:
            raise MalformedBundle("CMS digestAlgorithms entry carries unexpected parameters")
        listed.append(alg["algorithm"].dotted)
    used = {si["digest_algorithm"]["algorithm"].dotted for si in signer_infos}
    if len(listed) != len(set(listed)) or set(listed) != used:
        raise MalformedBundle("CMS digestAlgorithms does not list exactly the signers' digest algorithms")


def _digest_name(si: acms.SignerInfo) -> str:
    try:
        return si["digest_algorithm"]["algorithm"].native.replace("-", "")
    except (ValueError, KeyError) as exc:
        raise MalformedBundle(f"CMS signer digest algorithm unreadable: {exc}") from exc


def _find_signer_cert(
    si: acms.SignerInfo, certs: list[x509.Certificate], trust: TrustStore
) -> x509.Certificate | None:
    sid = si["sid"]
    pool = certs + trust.certificates
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
        for cert in pool:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
                return cert
        for cert in pool:  # re-encoded names: compare semantically
            if cert.serial_number == serial and _name_eq(cert.issuer, sid.chosen["issuer"].dump()):
                return cert
        return None
    ski = sid.chosen.native
    for cert in pool:
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            continue
        if ext.value.digest == ski:
            return cert
    return None


def _name_eq(name: x509.Name, der: bytes) -> bool:
    from asn1crypto import x509 as ax509

    try:
        return ax509.Name.load(der).human_friendly == _human(name)
    except (ValueError, TypeError):
        return False


def _human(name: x509.Name) -> str:
    from asn1crypto import x509 as ax509

    return ax509.Name.load(name.public_bytes()).human_friendly


def _verify_signer(
    si: acms.SignerInfo,
    certs: list[x509.Certificate],
    trust: TrustStore,
    ev: Notebook,
    digests: dict[str, bytes],
    econtent_type: str,
    now: dt.datetime,
) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    digest_name = _digest_name(si)
    content_digest = digests[digest_name]
    cert = _find_signer_cert(si, certs, trust)
    if cert is None:
        raise UntrustedSigner("the CMS signer certificate is neither in the signature nor in the trust store")
    ev.signer = cert.subject.rfc4514_string()
    key = cert.public_key()
    ev.key_fingerprint = key_fingerprint(key)
    ev.cert_not_before = cert.not_valid_before_utc.isoformat()
    ev.cert_not_after = cert.not_valid_after_utc.isoformat()

    sig_algo = si["signature_algorithm"]
    try:
        sig_kind = sig_algo.signature_algo
    except ValueError as exc:
        raise MalformedBundle(f"unsupported CMS signature algorithm: {exc}") from exc
    try:
        named_hash = sig_algo.hash_algo.replace("-", "")
    except (ValueError, TypeError, KeyError):  # rsaEncryption, PSS without parameters: no hash named
        named_hash = None
    if named_hash is not None and named_hash != digest_name:
        raise MalformedBundle(
            f"CMS signature algorithm names {named_hash} but the signer digests with {digest_name}"
        )
    if si["version"].native != ("v1" if si["sid"].name == "issuer_and_serial_number" else "v3"):
        raise MalformedBundle("CMS SignerInfo version does not match its signer identifier (RFC 5652 5.3)")
    ev.algorithm(f"{digest_name}")
    ev.algorithm(_algo_label(sig_kind, key))
    signature = si["signature"].native

    signed_attrs = si["signed_attrs"]
    signing_time: dt.datetime | None = None
    if signed_attrs.native is not None and len(signed_attrs):
        message_digest = None
        content_type = None
        for attr in signed_attrs:
            kind = attr["type"].native
            values = attr["values"]
            if kind == "message_digest":
                message_digest = values[0].native
            elif kind == "content_type":
                content_type = values[0].dotted
            elif kind == "signing_time":
                value = values[0].native
                if isinstance(value, dt.datetime):
                    signing_time = value.astimezone(dt.UTC)
        if message_digest is None:
            raise MalformedBundle("CMS signed attributes lack the message digest")
        if message_digest != content_digest:
            raise DigestMismatch(f"signed content does not match the CMS message digest ({digest_name})")
        if content_type is not None and content_type != econtent_type:
            raise InvalidSignature("CMS content-type attribute differs from the signed content type")
        to_sign = b"\x31" + signed_attrs.dump()[1:]
        ok = _verify_message(key, signature, to_sign, digest_name, sig_kind, sig_algo)
    else:
        if isinstance(key, ed25519.Ed25519PublicKey):
            raise MalformedBundle("Ed25519 CMS without signed attributes is not supported")
        ok = verify_prehashed(
            key, signature, content_digest, digest_name, _scheme(sig_kind), _pss_salt(sig_algo)
        )
    if not ok:
        raise InvalidSignature(f"CMS signature by {ev.signer} does not verify")
    if signing_time is not None:
        ev.signed_at = signing_time.isoformat()

    chain = build_chain(cert, certs, trust)
    if chain is None:
        raise UntrustedSigner(f"signer {ev.signer} does not chain to any trust anchor")
    ev.chain_fingerprints = [key_fingerprint(c.public_key()) for c in chain[1:]]
    ev.notes.append("chain: " + " -> ".join(c.subject.rfc4514_string() for c in chain) + " (trust anchor)")
    for c in chain:
        check_validity(c, now, "now")
    if signing_time is not None:
        check_validity(cert, signing_time, "at signing time")
    check_signer_usage(cert)
    check_hash_strength(digest_name)
    check_chain_strength(chain)
    check_key_strength(key, ev)
    return cert, chain


def _scheme(sig_kind: str) -> str:
    return "pss" if sig_kind == "rsassa_pss" else "pkcs1"


def _pss_salt(sig_algo) -> int | None:
    try:
        params = sig_algo["parameters"]
        return int(params["salt_length"].native) if params.native is not None else None
    except (KeyError, ValueError, TypeError):
        return None


def _algo_label(sig_kind: str, key) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa{key.key_size}-{'pss' if sig_kind == 'rsassa_pss' else 'pkcs1v15'}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return sig_kind


def _verify_message(key, signature: bytes, message: bytes, digest_name: str, sig_kind: str, sig_algo) -> bool:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return verify_ed25519(key, signature, message)
    import hashlib

    digest = hashlib.new(digest_name, message).digest()
    return verify_prehashed(key, signature, digest, digest_name, _scheme(sig_kind), _pss_salt(sig_algo))


def build_chain(
    leaf: x509.Certificate, pool: list[x509.Certificate], trust: TrustStore
) -> tuple[x509.Certificate, ...] | None:
    """Path from ``leaf`` to a trusted certificate (or a trusted bare key), else None."""
    anchors = trust.certificates
    anchor_der = {a.public_bytes(Encoding.DER) for a in anchors}
    if trust.find_key(leaf.public_key()) is not None:
        return (leaf,)

    def walk(path: list[x509.Certificate]) -> tuple[x509.Certificate, ...] | None:
        cur = path[-1]
        if cur.public_bytes(Encoding.DER) in anchor_der:
            return tuple(path)
        if len(path) > MAX_CHAIN:
            return None
        for cand in anchors + pool:
            if cand.subject != cur.issuer or any(cand == p for p in path):
                continue
            if not issued_by(cur, cand):
                continue
            is_anchor = cand.public_bytes(Encoding.DER) in anchor_der
            if not _may_issue(cand, is_anchor):
                continue
            found = walk(path + [cand])
            if found:
                return found
        return None

    return walk([leaf])


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key signed ``cert``.

    Checked with the issuer's public key directly, whatever the algorithm: cryptography's
    ``verify_directly_issued_by`` refuses SHA-1, which would report a complete chain that
    rauc and swupdate accept as "does not chain"; a weak chain is ``weak_algorithm``.
    """
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        algo = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, algo)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))  # type: ignore[arg-type]
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, _CryptoInvalid, UnsupportedAlgorithm):
        return False
    return True


def check_chain_strength(chain: tuple[x509.Certificate, ...]) -> None:
    """Every key of the chain at least RSA-2048, every certificate signature (but the
    anchor's own) without a broken hash; the chain itself is complete."""
    names = " -> ".join(c.subject.rfc4514_string() for c in chain)
    for i, cert in enumerate(chain):
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise WeakAlgorithm(
                f"certificate {cert.subject.rfc4514_string()} has an RSA key of {key.key_size} bits "
                f"(minimum {MIN_RSA_BITS}); the chain is complete: {names}"
            )
        if i + 1 < len(chain):
            try:
                hash_name = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else ""
            except UnsupportedAlgorithm:
                hash_name = "unknown"
            if hash_name.replace("-", "").lower() in WEAK_HASHES:
                raise WeakAlgorithm(
                    f"certificate {cert.subject.rfc4514_string()} is signed with {hash_name.upper()}, "
                    f"which is broken; the chain is complete: {names}"
                )


def _may_issue(cert: x509.Certificate, is_anchor: bool) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            return False
    except x509.ExtensionNotFound:
        if cert.version != x509.Version.v1 and not is_anchor:
            return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.key_cert_sign:
            return False
    except x509.ExtensionNotFound:
        pass
    return True


def check_validity(cert: x509.Certificate, when: dt.datetime, label: str) -> None:
    subject = cert.subject.rfc4514_string()
    if when < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"certificate {subject} is not valid before {cert.not_valid_before_utc.isoformat()} ({label})"
        )
    if when > cert.not_valid_after_utc:
        raise CertificateExpired(
            f"certificate {subject} expired {cert.not_valid_after_utc.isoformat()} ({label})"
        )


def check_signer_usage(cert: x509.Certificate) -> None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            raise UntrustedSigner("signer certificate key usage does not allow digital signatures")
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not (set(eku) & _ACCEPTED_EKU):
            raise UntrustedSigner(
                "signer certificate extended key usage allows neither code signing nor e-mail protection"
            )
    except x509.ExtensionNotFound:
        pass
