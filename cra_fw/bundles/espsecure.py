"""ESP secure boot: Secure Boot v2 signature blocks and the ESP32 Secure Boot v1 signature.

Secure Boot v2 (``espsecure sign-data --version 2``): the image is padded to a 4 KiB
boundary and followed by a 4 KiB signature sector holding up to three 1216-byte
blocks (magic 0xE7; version 2 = RSA-3072 PSS over SHA-256, salt 32; version 3 =
ECDSA P-192/P-256 over SHA-256 or P-384 over SHA-384), each with the image digest,
the signer's public key (little-endian, as the ROM reads it) and a CRC-32.  A block
counts when its CRC is right (as in espsecure and the ROM); its key must be a
trusted key (the device compares its SHA-256 with an eFuse digest) and its
signature must verify.  Secure Boot v1 (ESP32 only): a u32 version 0 and a raw
big-endian ECDSA P-256 r||s over SHA-256 of everything before it, appended to the
image; the key lives in the bootloader, so every trusted P-256 key is tried.

P-192 signatures verify but give ``weak_algorithm`` (96-bit security).  The reader
is :mod:`cra_fw.parsers.esp_image`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cra_fw.bundles.crypto import read_image, verify_prehashed
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
from cra_fw.bundles.trust import TrustedKey, TrustStore, key_fingerprint
from cra_fw.parsers import esp_image as reader

SECTOR = reader.SECTOR
BLOCK = reader.SIG_BLOCK_SIZE
_CURVES: dict[int, tuple[ec.EllipticCurve, int, str]] = {
    1: (ec.SECP192R1(), 24, "sha256"),
    2: (ec.SECP256R1(), 32, "sha256"),
    3: (ec.SECP384R1(), 48, "sha384"),
}


def _le(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


class _Block:
    """One Secure Boot v2 signature block, decoded."""

    def __init__(self, index: int, raw: bytes) -> None:
        self.index = index
        self.version = raw[1]
        self.hash_name = "sha384" if self.version == 3 and raw[2] == 1 else "sha256"
        dlen = 48 if self.hash_name == "sha384" else 32
        self.digest = raw[4 : 4 + dlen]
        if self.version == 2:
            n_raw, e, rinv_raw, mdash, sig = struct.unpack_from("<384sI384sI384s", raw, 36)
            n = _le(n_raw)
            if n == 0 or e < 3:
                raise MalformedBundle(f"signature block {index}: RSA key is empty")
            # the ROM's RSA peripheral uses R^-1 and M' as given: they must belong to n
            if _le(rinv_raw) != (1 << 6144) % n or mdash != (-pow(n, -1, 1 << 32)) % (1 << 32):
                raise MalformedBundle(f"signature block {index}: RSA R^-1/M' do not match the modulus")
            self.key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey = rsa.RSAPublicNumbers(e, n).public_key()
            self.signature = sig[::-1]
            self.scheme = "pss"
            self.key_blob = raw[36 : 36 + 776]
            self.label = "rsa3072-pss-sha256"
        else:
            base = 36 + (dlen - 32)
            curve_id = raw[base]
            if curve_id not in _CURVES:
                raise MalformedBundle(f"signature block {index}: unknown ECDSA curve id {curve_id}")
            curve, size, want_hash = _CURVES[curve_id]
            if want_hash != self.hash_name:
                raise MalformedBundle(f"signature block {index}: curve id {curve_id} with {self.hash_name}")
            # P-192 and P-256 share one layout with 64-byte fields; P-384 has 96-byte fields
            width = 96 if curve_id == 3 else 64
            point = raw[base + 1 : base + 1 + 2 * size]
            rs = raw[base + 1 + width : base + 1 + width + 2 * size]
            try:
                self.key = ec.EllipticCurvePublicNumbers(
                    _le(point[:size]), _le(point[size:]), curve
                ).public_key()
            except ValueError as exc:
                raise MalformedBundle(f"signature block {index}: public key is not on {curve.name}") from exc
            self.signature = _le(rs[:size]).to_bytes(size, "big") + _le(rs[size:]).to_bytes(size, "big")
            self.scheme = "raw"
            self.key_blob = raw[base : base + 1 + width]
            self.label = f"ecdsa-{curve.name}-{self.hash_name}"

    @property
    def efuse_digest(self) -> str:
        """SHA-256 of the key as the block holds it: what ``espsecure digest-sbv2-public-key`` burns."""
        return hashlib.sha256(self.key_blob).hexdigest()


class EspSecureBootVerifier(Verifier):
    name = "esp-secure-boot"
    description = (
        "ESP32-family image with Secure Boot v2 signature blocks or an ESP32 Secure Boot v1 signature"
    )

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        """An ESP32-family image header: only those chips have secure boot."""
        if len(head) < 32 or head[0] != reader.MAGIC or not 0 < head[1] <= reader.MAX_SEGMENTS:
            return False
        chip_id, reserved, hash_appended = struct.unpack_from("<H4xI", head, 12)[0], head[19:23], head[23]
        if chip_id not in reader.CHIPS or reserved != b"\0\0\0\0" or hash_appended not in (0, 1):
            return False
        _addr, seg_size = struct.unpack_from("<II", head, 24)
        return 0 < seg_size <= min(reader.MAX_SEGMENT_SIZE, size)

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        data, img = read_image(path, reader.parse, "ESP image")
        check_image(data, img, trust, ev)


def check_image(data: bytes, img: reader.EspImage, trust: TrustStore, ev: Notebook) -> None:
    """Verify the secure boot signature of one parsed ESP image in ``data``."""
    ev.notes.append(
        f"ESP image for {img.chip or 'unknown chip'} ({img.format}), {len(img.segments)} segments, "
        f"{img.end - img.offset} bytes"
    )
    if img.app is not None:
        ev.notes.append(
            f"app {img.app.project_name!r} version {img.app.version!r}, IDF {img.app.idf_ver}; "
            f"secure_version (anti-rollback) {img.app.secure_version}"
        )
    if img.bootloader is not None:
        ev.notes.append(f"bootloader secure_version (anti-rollback) {img.bootloader.secure_version}")
    if not img.checksum_ok:
        raise DigestMismatch("image XOR checksum does not match its segments (altered image)")
    if img.sha256_ok is False:
        raise DigestMismatch("appended SHA-256 does not match the image (altered image)")
    if img.signature_sector is not None:
        _check_v2(data, img, trust, ev)
    elif img.sbv1_signature is not None:
        _check_v1(data, img, trust, ev)
    else:
        end = img.end - img.offset
        # a sector of 0xE7 blocks might still follow if padding was changed: say what was looked at
        raise Unsigned(
            f"no Secure Boot v2 signature sector at {-(-end // SECTOR) * SECTOR:#x} "
            f"and no Secure Boot v1 signature at {end:#x}"
        )


def _check_v2(data: bytes, img: reader.EspImage, trust: TrustStore, ev: Notebook) -> None:
    assert img.signature_sector is not None
    sector = img.signature_sector
    if sector + SECTOR > len(data):
        raise MalformedBundle(
            f"Secure Boot v2 signature sector at {sector - img.offset:#x} is truncated "
            f"({len(data) - sector} of {SECTOR} bytes)"
        )
    region = memoryview(data)[img.offset : sector]
    ev.cover(f"image and padding (bytes 0..{sector - img.offset})")
    after = len(data) - (sector + SECTOR)
    if after > 0:
        ev.notes.append(f"{after} bytes after the signature sector are not part of the signed image")
    blocks: list[_Block] = []
    for i in range(3):
        raw = bytes(data[sector + i * BLOCK : sector + (i + 1) * BLOCK])
        if raw[0] != reader.SIG_BLOCK_MAGIC or raw[1] not in (2, 3):
            break
        if struct.unpack_from("<I", raw, 1196)[0] != zlib.crc32(raw[:1196]):
            ev.notes.append(f"signature block {i}: CRC-32 wrong, ignored (as the ROM ignores it)")
            continue
        blocks.append(_Block(i, raw))
    if not blocks:
        raise MalformedBundle("Secure Boot v2 signature sector holds no block with a correct CRC")
    digests: dict[str, bytes] = {}
    for b in blocks:
        if b.hash_name not in digests:
            digests[b.hash_name] = hashlib.new(b.hash_name, region).digest()
        ev.notes.append(
            f"signature block {b.index}: {b.label}, key {key_fingerprint(b.key)}, eFuse key digest {b.efuse_digest}"
        )
        ev.algorithm(b.label)
        if b.digest != digests[b.hash_name]:
            raise DigestMismatch(
                f"signature block {b.index}: image digest does not match the image (altered image)"
            )
    trusted = {tk.fingerprint: tk for tk in trust.all_keys()}
    weak = ""
    for b in blocks:
        tk = trusted.get(key_fingerprint(b.key))
        if tk is None:
            continue
        if not verify_prehashed(b.key, b.signature, digests[b.hash_name], b.hash_name, b.scheme, 32):
            raise InvalidSignature(f"signature block {b.index} does not verify under its trusted key")
        ev.signer = tk.name or tk.source
        ev.key_fingerprint = tk.fingerprint
        if isinstance(b.key, ec.EllipticCurvePublicKey) and b.key.curve.name == "secp192r1":
            weak = f"signature block {b.index} uses ECDSA P-192 (96-bit security)"
            continue
        return
    if weak:
        raise WeakAlgorithm(weak)
    # no trusted key: still tell an intact signature from a broken one
    intact = [
        b
        for b in blocks
        if verify_prehashed(b.key, b.signature, digests[b.hash_name], b.hash_name, b.scheme, 32)
    ]
    if not intact:
        raise InvalidSignature("no signature block verifies under the key it carries")
    b = intact[0]
    ev.key_fingerprint = key_fingerprint(b.key)
    if trust.empty:
        raise UntrustedSigner(f"no trusted key given; signed by {key_fingerprint(b.key)} ({b.label})")
    raise UntrustedSigner(
        f"signed by {', '.join(key_fingerprint(b.key) for b in intact)}, none of them a trusted key"
    )


def _check_v1(data: bytes, img: reader.EspImage, trust: TrustStore, ev: Notebook) -> None:
    assert img.sbv1_signature is not None
    pos = img.sbv1_signature
    region = memoryview(data)[img.offset : pos]
    version, sig = struct.unpack_from("<I64s", data, pos)
    if version != 0:
        raise MalformedBundle(f"Secure Boot v1 signature version {version}; only 0 exists")
    ev.cover(f"image (bytes 0..{pos - img.offset})")
    ev.algorithm("sbv1-ecdsa-secp256r1-sha256")
    after = len(data) - (pos + 68)
    if after > 0:
        ev.notes.append(f"{after} bytes after the Secure Boot v1 signature are not part of the signed image")
    keys: list[TrustedKey] = [
        tk
        for tk in trust.all_keys()
        if isinstance(tk.key, ec.EllipticCurvePublicKey) and tk.key.curve.name == "secp256r1"
    ]
    if not keys:
        raise UntrustedSigner("no trusted ECDSA P-256 key given; a Secure Boot v1 signature names no key")
    digest = hashlib.sha256(region).digest()
    for tk in keys:
        if verify_prehashed(tk.key, sig, digest, "sha256", "raw"):
            ev.signer = tk.name or tk.source
            ev.key_fingerprint = tk.fingerprint
            return
    raise InvalidSignature(
        "Secure Boot v1 signature does not verify under any trusted P-256 key "
        "(altered image or signature, or an untrusted signer)"
    )
