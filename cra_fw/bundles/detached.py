"""Detached signatures over a file: minisign, signify, raw Ed25519/ECDSA/RSA, CMS ``.p7s``.

Without ``--signature`` a ``FILE.minisig``, ``FILE.sig`` or ``FILE.p7s`` next
to the file is used; none found means ``unsigned``.  Digests are computed in
one streamed pass; pure Ed25519 (signify, legacy minisign, raw) needs the
whole message and reads it through ``mmap`` so memory stays file-backed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from cra_fw.bundles.cms import verify_cms
from cra_fw.bundles.crypto import (
    WEAK_HASHES,
    check_key_strength,
    chunks,
    digest_stream,
    verify_ed25519,
    verify_prehashed,
)
from cra_fw.bundles.interface import (
    InvalidSignature,
    MalformedBundle,
    Notebook,
    Unsigned,
    UntrustedSigner,
    Verifier,
    WeakAlgorithm,
)
from cra_fw.bundles.trust import TrustedKey, TrustStore
from cra_fw.regions import read_limited

SIDECARS = (".minisig", ".sig", ".p7s")
_MAX_SIG = 1024 * 1024
_RAW_HASHES = ("sha256", "sha384", "sha512", "sha1")
_DIGESTINFO_OIDS = {  # DER prefix of PKCS#1 v1.5 DigestInfo -> hash
    bytes.fromhex("3021300906052b0e03021a05000414"): "sha1",
    bytes.fromhex("3031300d060960864801650304020105000420"): "sha256",
    bytes.fromhex("3041300d060960864801650304020205000430"): "sha384",
    bytes.fromhex("3051300d060960864801650304020305000440"): "sha512",
    bytes.fromhex("302d300d060960864801650304020405000410"): "sha224",
    bytes.fromhex("3020300c06082a864886f70d020505000410"): "md5",
}


def find_sidecar(path: Path) -> Path | None:
    for suffix in SIDECARS:
        cand = path.with_name(path.name + suffix)
        if cand.is_file():
            return cand
    return None


class DetachedVerifier(Verifier):
    name = "detached"
    description = "any file with a detached minisign/signify/raw/CMS signature"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        return True

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        sig_path = signature or find_sidecar(path)
        if sig_path is None:
            raise Unsigned(f"no signature given and no {', '.join(SIDECARS)} next to {path.name}")
        ev.notes.append(f"signature file: {sig_path.name}")
        sig = read_limited(Path(sig_path), _MAX_SIG, "signature file", MalformedBundle)
        if not sig.strip():
            raise Unsigned("signature file is empty")
        size = path.stat().st_size
        if sig.startswith(b"untrusted comment:"):
            self._minisign_or_signify(path, sig, trust, ev)
        elif sig.lstrip().startswith((b"-----BEGIN PKCS7-----", b"-----BEGIN CMS-----")):
            self._cms(path, _pem_body(sig), trust, ev, now)
        elif _looks_like_cms(sig):
            self._cms(path, sig, trust, ev, now)
        else:
            self._raw(path, sig, trust, ev)
        ev.cover(f"{path.name} ({size} bytes)")

    # -- CMS
    def _cms(self, path: Path, der: bytes, trust: TrustStore, ev: Notebook, now: dt.datetime) -> None:
        def digester(algs: tuple[str, ...]) -> dict[str, bytes]:
            with open(path, "rb") as fh:
                return digest_stream(chunks(fh, 0, path.stat().st_size), algs)

        result = verify_cms(der, trust, ev, detached=digester, now=now)
        if result.content is not None:
            raise MalformedBundle("the .p7s carries its own content; expected a detached signature")

    # -- minisign / signify
    def _minisign_or_signify(self, path: Path, sig: bytes, trust: TrustStore, ev: Notebook) -> None:
        lines = sig.decode("utf-8", "replace").splitlines()
        if len(lines) < 2:
            raise MalformedBundle("signature file has no signature line")
        try:
            blob = base64.b64decode(lines[1].strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedBundle("signature line is not base64") from exc
        if len(blob) != 74 or blob[:2] not in (b"Ed", b"ED"):
            raise MalformedBundle("not a minisign/signify Ed25519 signature")
        alg, key_id, raw = blob[:2], blob[2:10], blob[10:]
        trusted_comment = None
        if len(lines) >= 4 and lines[2].startswith("trusted comment: "):
            trusted_comment = lines[2][len("trusted comment: ") :].encode()
        tool = "minisign" if trusted_comment is not None else "signify"
        if tool == "signify" and alg != b"Ed":
            raise MalformedBundle("signify signatures use the Ed algorithm only")
        ev.algorithm(f"{tool}-ed25519" + ("-blake2b" if alg == b"ED" else ""))
        ev.signer = f"{tool} key {key_id[::-1].hex().upper() if tool == 'minisign' else key_id.hex()}"
        candidates = [k for k in trust.keys if k.key_id == key_id]
        if not candidates:
            candidates = [
                k for k in trust.keys if not k.key_id and isinstance(k.key, ed25519.Ed25519PublicKey)
            ]
        if not candidates:
            raise UntrustedSigner(f"{tool} key id {key_id.hex()} is not among the trusted keys")
        for tk in candidates:
            if alg == b"ED":
                with open(path, "rb") as fh:
                    h = hashlib.blake2b(digest_size=64)
                    for part in chunks(fh, 0, path.stat().st_size):
                        h.update(part)
                ok = verify_ed25519(tk.key, raw, h.digest())
            else:
                with _mapped(path) as data:
                    ok = verify_ed25519(tk.key, raw, data)
            if not ok:
                continue
            if trusted_comment is not None:
                try:
                    glob = base64.b64decode(lines[3].strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise MalformedBundle("minisign global signature is not base64") from exc
                if not verify_ed25519(tk.key, glob, raw + trusted_comment):
                    raise InvalidSignature("minisign trusted comment was altered (global signature fails)")
                ev.notes.append("trusted comment: " + trusted_comment.decode("utf-8", "replace"))
            ev.key_fingerprint = tk.fingerprint
            return
        raise InvalidSignature(f"{tool} signature does not verify with the trusted key")

    # -- raw signatures: the key type decides how to read them
    def _raw(self, path: Path, sig: bytes, trust: TrustStore, ev: Notebook) -> None:
        keys = trust.all_keys()
        if not keys:
            raise UntrustedSigner("no trusted key given; a raw signature cannot be checked")
        sig = _maybe_b64(sig)
        size = path.stat().st_size
        digests: dict[str, bytes] | None = None
        weak_hit: str = ""
        for tk in keys:
            key = tk.key
            if isinstance(key, ed25519.Ed25519PublicKey):
                if len(sig) != 64:
                    continue
                with _mapped(path) as data:
                    if verify_ed25519(key, sig, data):
                        return _accept(tk, "ed25519", ev)
                continue
            if digests is None:
                with open(path, "rb") as fh:
                    digests = digest_stream(chunks(fh, 0, size), _RAW_HASHES)
            if isinstance(key, rsa.RSAPublicKey):
                if len(sig) != (key.key_size + 7) // 8:
                    continue
                label = _rsa(key, sig, digests)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                label = ""
                for h in _RAW_HASHES:
                    if verify_prehashed(key, sig, digests[h], h, "der"):
                        label = f"ecdsa-{key.curve.name}-{h}"
                        break
            else:
                continue
            if label:
                if label.rsplit("-", 1)[-1] in WEAK_HASHES:
                    weak_hit = label
                    _accept(tk, label, ev)
                    continue
                return _accept(tk, label, ev)
        if weak_hit:
            raise WeakAlgorithm(f"signature verifies only with a broken digest ({weak_hit})")
        raise InvalidSignature(
            "signature does not verify under any trusted key "
            "(altered file or signature, or an untrusted signer)"
        )


def _accept(tk: TrustedKey, label: str, ev: Notebook) -> None:
    ev.algorithm(label)
    ev.signer = tk.name or tk.source
    ev.key_fingerprint = tk.fingerprint
    check_key_strength(tk.key, ev)


def _rsa(key: rsa.RSAPublicKey, sig: bytes, digests: dict[str, bytes]) -> str:
    try:
        info = key.recover_data_from_signature(sig, padding.PKCS1v15(), None)
    except Exception:  # noqa: BLE001 - cryptography raises InvalidSignature; any failure = not PKCS#1
        info = b""
    for prefix, h in _DIGESTINFO_OIDS.items():
        if info.startswith(prefix) and h in digests and info[len(prefix) :] == digests[h]:
            return f"rsa{key.key_size}-pkcs1v15-{h}"
    for h in _RAW_HASHES:
        if verify_prehashed(key, sig, digests[h], h, "pss"):
            return f"rsa{key.key_size}-pss-{h}"
    return ""


def _maybe_b64(sig: bytes) -> bytes:
    text = sig.strip()
    if text and all(
        c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r" for c in text
    ):
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return sig
    return sig


def _looks_like_cms(sig: bytes) -> bool:
    # SEQUENCE { OID 1.2.840.113549.1.7.2 ... } within the first bytes
    return sig[:1] == b"\x30" and b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" in sig[:24]


def _pem_body(sig: bytes) -> bytes:
    lines = [ln for ln in sig.decode("ascii", "replace").splitlines() if ln and not ln.startswith("-----")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedBundle("PEM CMS signature is not base64") from exc


@contextmanager
def _mapped(path: Path) -> Iterator[bytes | mmap.mmap]:
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            yield b""
            return
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield mm
        finally:
            mm.close()
