"""Offline, key-based Sigstore bundles that sigstore-python's verifier accepts against a private root.

Sigstore's verifier does not take a bare key: it wants a signing certificate
that chains to a trusted certificate authority at the log's integration time,
an embedded SCT from a trusted CT log, and a transparency-log entry with a
Merkle inclusion proof, a signed checkpoint and (for Rekor v1 entries) a signed
entry timestamp, all checked against a *trusted root*.  So cra-fw plays those
parts itself with the one P-256 key the user gives (``--key``):

* CA: a self-signed certificate over the key (the "Fulcio" of the private root);
  each signature gets a fresh P-256 leaf key and a 10-minute leaf certificate
  naming ``identity`` (e-mail or URI SAN) and ``issuer`` (the OIDC issuer
  extensions), with key usage digitalSignature and EKU codeSigning;
* CT log: the leaf carries an RFC 6962 precertificate SCT signed by the key;
* transparency log: a ``hashedrekord`` v0.0.1 entry appended to a local log
  (``tlog``: a JSON-lines file of leaf hashes; without it a one-entry log), with
  its RFC 6962 inclusion proof, a checkpoint (signed note) and an SET signed by
  the key.

:func:`trusted_root` writes the matching ``trusted_root.json``
(``application/vnd.dev.sigstore.trustedroot+json;version=0.1``): the CA
certificate, and the key as CT log and transparency log.  This is not
public-good Sigstore: there is no OIDC identity check and no public log; the
trust is the key's, as with any key-based signature, in Sigstore's formats.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from cra_fw.evidence.sign import EvidenceError, KeyFileError, file_digest

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
DEFAULT_IDENTITY = "cra-fw-signer@localhost"
DEFAULT_ISSUER = "https://cra-fw.invalid/offline"
ORIGIN = "cra-fw offline log"
_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CA_END = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_MAX_LOG = 10_000_000  # leaves


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Sigstore's log/CT key id: SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki(key)).digest()


def _check(key: Any) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(
            "Sigstore signing takes an ECDSA P-256 private key (openssl ecparam -name prime256v1)"
        )
    return key


# ------------------------------------------------------------------ the CA


def ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """The self-signed CA certificate of the private root (same names and dates for the same key)."""
    _check(key)
    pub = key.public_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cra-fw offline signing"),
            x509.NameAttribute(NameOID.COMMON_NAME, "cra-fw offline CA " + key_id(pub)[:4].hex()),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(pub)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(int.from_bytes(key_id(pub)[:16], "big") >> 1)
        .not_valid_before(_EPOCH)
        .not_valid_after(_CA_END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage("key_cert_sign", "crl_sign"),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """A KeyUsage extension with exactly the ``allowed`` bits set."""
    bits = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{bit: bit in allowed for bit in bits})


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    leaf_pub: ec.EllipticCurvePublicKey,
    identity: str,
    issuer: str,
    now: dt.datetime,
) -> x509.Certificate:
    """Leaf certificate with an embedded precertificate SCT signed by the CA key (as CT log)."""
    san: x509.GeneralName = (
        x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
    )
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(leaf_pub)
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(minutes=10))
        .add_extension(
            _key_usage("digital_signature"),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_pub), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.UnrecognizedExtension(_OID_ISSUER_V1, issuer.encode()), critical=False)
        .add_extension(x509.UnrecognizedExtension(_OID_ISSUER_V2, _der_utf8(issuer)), critical=False)
    )
    # the SCT signs the certificate's TBS without the SCT list: build it once without, sign that
    precert = builder.sign(ca_key, hashes.SHA256())
    sct = _sct(ca_key, ca, precert.tbs_certificate_bytes, now)
    sct_list = struct.pack("!H", len(sct)) + sct
    ext_value = _der_octets(struct.pack("!H", len(sct_list)) + sct_list)
    return builder.add_extension(x509.UnrecognizedExtension(_OID_SCT_LIST, ext_value), critical=False).sign(
        ca_key, hashes.SHA256()
    )


def _sct(
    log_key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate, tbs: bytes, now: dt.datetime
) -> bytes:
    """An RFC 6962 v1 SCT over a precertificate entry, TLS-encoded."""
    timestamp = int(now.timestamp() * 1000)
    issuer_key_hash = hashlib.sha256(_spki(issuer.public_key())).digest()  # type: ignore[arg-type]
    signed = (
        struct.pack("!BBQH", 0, 0, timestamp, 1)  # v1, certificate_timestamp, time, precert_entry
        + issuer_key_hash
        + struct.pack("!I", len(tbs))[1:]
        + tbs
        + struct.pack("!H", 0)  # no extensions
    )
    sig = log_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return (
        struct.pack("!B", 0)
        + key_id(log_key.public_key())
        + struct.pack("!QH", timestamp, 0)
        + struct.pack("!BBH", 4, 3, len(sig))  # sha256, ecdsa
        + sig
    )


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_octets(data: bytes) -> bytes:
    return b"\x04" + _der_len(len(data)) + data


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    return b"\x0c" + _der_len(len(raw)) + raw


# ------------------------------------------------------------------ the log (RFC 6962 Merkle tree)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_proof(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(index, leaves): sibling hashes from the leaf up."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [merkle_root(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [merkle_root(leaves[:k])]


def _append(tlog: Path | None, leaf: bytes) -> tuple[int, list[bytes]]:
    """Append ``leaf`` to the log file; (index, all leaves)."""
    if tlog is None:
        return 0, [leaf]
    tlog = Path(tlog)
    leaves: list[bytes] = []
    if tlog.exists():
        with open(tlog, encoding="ascii") as fh:
            for n, line in enumerate(fh):
                if n >= _MAX_LOG:
                    raise EvidenceError(f"{tlog} holds more than {_MAX_LOG} entries")
                try:
                    leaves.append(bytes.fromhex(line.strip()))
                except ValueError as exc:
                    raise EvidenceError(
                        f"{tlog}:{n + 1} is not a leaf hash: the log file was edited"
                    ) from exc
    leaves.append(leaf)
    with open(tlog, "a", encoding="ascii") as fh:
        fh.write(leaf.hex() + "\n")
    return len(leaves) - 1, leaves


def _checkpoint(key: ec.EllipticCurvePrivateKey, size: int, root: bytes) -> str:
    note = f"{ORIGIN}\n{size}\n{_b64(root)}\n"
    sig = key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    hint = key_id(key.public_key())[:4]
    return note + "\n" + f"\u2014 cra-fw-offline {_b64(hint + sig)}\n"


# ------------------------------------------------------------------ bundle and trusted root


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_sigstore(
    path: Path,
    key: ec.EllipticCurvePrivateKey,
    out: Path | None = None,
    *,
    identity: str = DEFAULT_IDENTITY,
    issuer: str = DEFAULT_ISSUER,
    tlog: Path | None = None,
    now: dt.datetime | None = None,
) -> Path:
    """Write ``path.sigstore.json``: a v0.3 bundle over ``path`` (message signature, SHA-256)."""
    key = _check(key)
    path = Path(path)
    if not path.is_file():
        raise EvidenceError(f"{path}: no such file to sign")
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    _size, digest_hex = file_digest(path)
    digest = bytes.fromhex(digest_hex)
    ca = ca_certificate(key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf(key, ca, leaf_key.public_key(), identity, issuer, now)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    signature = leaf_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    body = _canonical(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest_hex}},
                "signature": {"content": _b64(signature), "publicKey": {"content": _b64(leaf_pem)}},
            },
        }
    )
    index, leaves = _append(tlog, leaf_hash(body))
    root = merkle_root(leaves)
    log_id = key_id(key.public_key())
    integrated = int(now.timestamp())
    set_payload = _canonical(
        {"body": _b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": index}
    )
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": {"rawBytes": _b64(leaf.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [
                {
                    "logIndex": str(index),
                    "logId": {"keyId": _b64(log_id)},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                    "integratedTime": str(integrated),
                    "inclusionPromise": {
                        "signedEntryTimestamp": _b64(key.sign(set_payload, ec.ECDSA(hashes.SHA256())))
                    },
                    "inclusionProof": {
                        "logIndex": str(index),
                        "rootHash": _b64(root),
                        "treeSize": str(len(leaves)),
                        "hashes": [_b64(h) for h in inclusion_proof(index, leaves)],
                        "checkpoint": {"envelope": _checkpoint(key, len(leaves), root)},
                    },
                    "canonicalizedBody": _b64(body),
                }
            ],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
            "signature": _b64(signature),
        },
    }
    out = Path(out) if out else Path(str(path) + ".sigstore.json")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def trusted_root(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The private trust root for bundles signed with ``key`` (needs the private key for the CA cert)."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError("the trusted root embeds the CA certificate: give the private key")
    ca = ca_certificate(key)
    pub = key.public_key()
    valid = {"start": _EPOCH.isoformat().replace("+00:00", "Z")}
    log_key = {"rawBytes": _b64(_spki(pub)), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": valid}
    log = {"hashAlgorithm": "SHA2_256", "publicKey": log_key, "logId": {"keyId": _b64(key_id(pub))}}
    return {
        "mediaType": ROOT_MEDIA_TYPE,
        "tlogs": [{"baseUrl": "https://cra-fw.invalid/tlog", **log}],
        "certificateAuthorities": [
            {
                "subject": {
                    "organization": "cra-fw offline signing",
                    "commonName": ca.subject.rfc4514_string(),
                },
                "uri": "https://cra-fw.invalid/ca",
                "certChain": {
                    "certificates": [{"rawBytes": _b64(ca.public_bytes(serialization.Encoding.DER))}]
                },
                "validFor": valid,
            }
        ],
        "ctlogs": [{"baseUrl": "https://cra-fw.invalid/ct", **log}],
        "timestampAuthorities": [],
    }


def write_trusted_root(key: ec.EllipticCurvePrivateKey, out: Path) -> Path:
    out = Path(out)
    out.write_text(json.dumps(trusted_root(_check(key)), indent=2) + "\n", encoding="utf-8")
    return out
