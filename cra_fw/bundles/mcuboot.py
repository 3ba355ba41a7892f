"""MCUboot images (``imgtool sign``): image hash TLV, KEYHASH/PUBKEY, RSA-PSS/ECDSA/Ed25519 signature.

Checked as MCUboot's ``bootutil_img_validate`` does: the hash TLV must equal the
SHA-256/384/512 of header + payload + protected TLV area; a ``KEYHASH`` (or
``PUBKEY``) TLV selects the key, and only a trusted key whose hash matches may
verify the signature TLV.  RSA-2048/3072 sign with PSS (MGF1-SHA256, salt 32) over
the image, ECDSA P-256/P-384 (DER) over the image with SHA-256/384, Ed25519 over
the image digest (or over the image itself with ``SIG_PURE``).  An image with a
hash TLV and no signature TLV is ``unsigned``.  The reader is
:mod:`cra_fw.parsers.mcuboot`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from cra_fw.bundles import knownkeys
from cra_fw.bundles.crypto import read_image, verify_ed25519, verify_prehashed
from cra_fw.bundles.interface import (
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    Unsigned,
    UntrustedSigner,
    Verifier,
    WeakAlgorithm,
)
from cra_fw.bundles.trust import TrustedKey, TrustStore, key_description, key_fingerprint
from cra_fw.parsers import ParseError
from cra_fw.parsers import mcuboot as reader

_HASHES = {0x10: "sha256", 0x11: "sha384", 0x12: "sha512"}
KEYHASH, PUBKEY, SIG_PURE = 0x01, 0x02, 0x25
RSA2048_PSS, ECDSA224, ECDSA_SIG, RSA3072_PSS, ED25519 = 0x20, 0x21, 0x22, 0x23, 0x24


def mcuboot_key_bytes(key: PublicKeyTypes) -> bytes:
    """The key bytes imgtool hashes into KEYHASH: PKCS#1 for RSA, SubjectPublicKeyInfo otherwise."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_fits(tlv_type: int, key: PublicKeyTypes) -> bool:
    if tlv_type == RSA2048_PSS:
        return isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    if tlv_type == RSA3072_PSS:
        return isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
    if tlv_type == ECDSA_SIG:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1")
    if tlv_type == ECDSA224:
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp224r1"
    if tlv_type == ED25519:
        return isinstance(key, ed25519.Ed25519PublicKey)
    return False


def _load_tlv_key(raw: bytes) -> PublicKeyTypes | None:
    """A PUBKEY TLV: SubjectPublicKeyInfo, or PKCS#1 for RSA."""
    try:
        return serialization.load_der_public_key(raw)
    except (ValueError, TypeError):
        pass
    try:
        return serialization.load_pem_public_key(
            b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(raw) + b"-----END RSA PUBLIC KEY-----\n"
        )
    except (ValueError, TypeError):
        return None


class McubootVerifier(Verifier):
    name = "mcuboot"
    description = "MCUboot image (imgtool sign): hash TLV, KEYHASH, RSA-PSS/ECDSA/Ed25519 signature TLV"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        if len(head) < reader.HEADER_SIZE or head[:4] not in (reader.MAGIC_LE, reader.MAGIC_BE):
            return False
        try:
            reader.parse(head + b"\0" * max(0, size - len(head)), 0)
        except ParseError:
            return False
        return True

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        data, img = read_image(path, reader.parse, "MCUboot image")
        check_image(data, img, trust, ev)


def check_image(data: bytes, img: reader.McubootImage, trust: TrustStore, ev: Notebook) -> None:
    """Verify one parsed MCUboot image in ``data``; raise a BundleError on the first failure."""
    ev.notes.append(
        f"MCUboot image version {img.version}, header {img.hdr_size:#x} bytes, payload {img.img_size} bytes, "
        f"load address {img.load_addr:#x}" + (f", flags {', '.join(img.flag_names)}" if img.flags else "")
    )
    if img.tlv_error:
        raise MalformedBundle(f"MCUboot TLV area: {img.tlv_error}")
    counter = img.security_counter
    ev.notes.append(
        f"security counter (rollback protection) {counter}"
        if counter is not None
        else "no security counter TLV: rollback protection can only use the image version"
    )
    for tlv in img.tlvs:
        if tlv.type == 0x40:
            ev.notes.append(f"dependency TLV: {tlv.value.hex()}")
    if img.encrypted:
        raise MalformedBundle(
            "encrypted image: its hash and signature cover the plaintext, which cannot be checked "
            "without the device's decryption key"
        )
    region = memoryview(data)[img.offset : img.hashed_end]
    pure = img.tlv(SIG_PURE) is not None
    hash_tlvs = [t for t in img.tlvs if t.type in _HASHES and not t.protected]
    if not hash_tlvs and not pure:
        raise MalformedBundle("no image hash TLV (SHA256/384/512): MCUboot refuses the image")
    digest = b""
    hash_name = "sha256"
    if hash_tlvs:
        hash_name = _HASHES[hash_tlvs[0].type]
        digest = hashlib.new(hash_name, region).digest()
        ev.algorithm(hash_name)
        if hash_tlvs[0].value != digest:
            raise DigestMismatch(
                f"image {hash_name} TLV does not match header + payload + protected TLVs (altered image)"
            )
    ev.cover(f"MCUboot header, payload and protected TLVs (bytes 0..{img.hashed_end - img.offset})")
    tail = len(data) - img.end
    if tail > 0:
        ev.notes.append(
            f"{tail} bytes after the TLV area (slot padding or swap trailer) are not part of the image"
        )
    sigs = img.signature_tlvs
    if not sigs:
        raise Unsigned(
            f"hash-only image: {hash_name.upper()} TLV but no signature TLV (MCUboot boots it only when "
            "built without signature checking)"
        )
    keyhash = img.tlv(KEYHASH)
    embedded = img.tlv(PUBKEY)
    embedded_key = _load_tlv_key(embedded.value) if embedded is not None else None
    if keyhash is not None:
        ev.notes.append(f"KEYHASH {keyhash.value.hex()}")
        named = knownkeys.keyhash_index(hash_name, mcuboot_key_bytes).get(keyhash.value)
        if named is not None:
            ev.notes.append(f"KEYHASH names the publicly known key {named.name}")
    elif embedded_key is not None:
        ev.notes.append(f"PUBKEY TLV: {key_description(embedded_key)} {key_fingerprint(embedded_key)}")
    keys = trust.all_keys()
    if keyhash is not None:
        keys = [tk for tk in keys if _keyhash(tk.key, hash_name) == keyhash.value]
    elif embedded is not None:
        fp = key_fingerprint(embedded_key) if embedded_key is not None else ""
        keys = [tk for tk in keys if tk.fingerprint == fp]
    names = ", ".join(reader.TLV_NAMES.get(t.type, hex(t.type)) for t in sigs)
    if not keys:
        if trust.empty:
            raise UntrustedSigner(f"no trusted key given; the image is signed ({names})")
        which = f"KEYHASH {keyhash.value.hex()[:16]}..." if keyhash is not None else "the embedded key"
        raise UntrustedSigner(f"{which} matches none of the trusted keys (signed with {names})")
    for tlv in sigs:
        for tk in keys:
            if not _key_fits(tlv.type, tk.key):
                continue
            label = _check(tlv.type, tlv.value, tk, region, digest, hash_name, pure)
            if label:
                ev.algorithm(label)
                ev.signer = tk.name or tk.source
                ev.key_fingerprint = tk.fingerprint
                if tlv.type == ECDSA224:
                    raise WeakAlgorithm("ECDSA P-224 signature (112-bit security; MCUboot deprecated it)")
                return
    raise InvalidSignature(
        f"signature TLV ({names}) does not verify under the trusted key(s) named by the image"
    )


def _keyhash(key: PublicKeyTypes, hash_name: str) -> bytes:
    try:
        return hashlib.new(hash_name, mcuboot_key_bytes(key)).digest()
    except (TypeError, ValueError):
        return b""


def _check(
    tlv_type: int,
    sig: bytes,
    tk: TrustedKey,
    region: memoryview,
    digest: bytes,
    hash_name: str,
    pure: bool,
) -> str:
    """Algorithm label when ``sig`` verifies under ``tk``, else ''."""
    key = tk.key
    if isinstance(key, rsa.RSAPublicKey):
        # imgtool and bootutil sign RSA with PSS, MGF1-SHA256, salt 32, over SHA-256 of the image
        sha = digest if hash_name == "sha256" and digest else hashlib.sha256(region).digest()
        ok = verify_prehashed(key, sig, sha, "sha256", "pss", 32)
        return f"rsa{key.key_size}-pss-sha256" if ok else ""
    if isinstance(key, ec.EllipticCurvePublicKey):
        ec_hash = "sha384" if key.curve.name == "secp384r1" else "sha256"
        if sig[:1] == b"\x30" and len(sig) >= 2:
            sig = sig[: sig[1] + 2]  # imgtool --pad-sig appends zeros after the DER
        dig = digest if ec_hash == hash_name and digest else hashlib.new(ec_hash, region).digest()
        ok = verify_prehashed(key, sig, dig, ec_hash, "der")
        return f"ecdsa-{key.curve.name}-{ec_hash}" if ok else ""
    if isinstance(key, ed25519.Ed25519PublicKey):
        if pure:
            return "ed25519-pure" if verify_ed25519(key, sig, region) else ""
        return f"ed25519-{hash_name}" if digest and verify_ed25519(key, sig, digest) else ""
    return ""
