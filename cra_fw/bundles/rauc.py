"""RAUC bundles: squashfs payload, then a CMS signature, then its size (uint64 big-endian).

* plain: the CMS is detached and signs the whole squashfs;
* verity: the CMS carries the manifest, whose ``[bundle]`` section gives the
  dm-verity root hash, salt and hash-tree size; the payload is the squashfs
  followed by that hash tree.  cra-fw recomputes the tree (SHA-256, 4 KiB
  blocks, salt first, top level stored first) and requires both the root
  hash and the stored tree to match, so every byte the device mounts is
  covered.
"""

from __future__ import annotations

import configparser
import datetime as dt
import hashlib
from pathlib import Path

from cra_fw.bundles.cms import verify_cms
from cra_fw.bundles.crypto import chunks, digest_stream
from cra_fw.bundles.interface import DigestMismatch, Encrypted, MalformedBundle, Notebook, Unsigned, Verifier
from cra_fw.bundles.trust import TrustStore

BLOCK = 4096
_MAX_CMS = 1024 * 1024
_CMS_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"  # signedData
_ENVELOPED_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"  # envelopedData (`rauc encrypt`)


class RaucVerifier(Verifier):
    name = "rauc"
    description = "RAUC bundle (plain or verity)"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        # a crypt bundle's payload is encrypted: its trailer, not its first bytes, says RAUC
        return (head[:4] == b"hsqs" and path.suffix == ".raucb") or _has_trailer(path, tail, size)

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size < 8 + 4:
                raise MalformedBundle("RAUC bundle too small")
            fh.seek(size - 8)
            cms_size = int.from_bytes(fh.read(8), "big")
            if cms_size == 0 or cms_size > _MAX_CMS or cms_size > size - 8 - 4:
                _no_trailer(fh, size)
            fh.seek(size - 8 - cms_size)
            der = fh.read(cms_size)
            payload_end = size - 8 - cms_size
            fh.seek(0)
            squashfs = fh.read(4) == b"hsqs"

            def digester(algs: tuple[str, ...]) -> dict[str, bytes]:
                return digest_stream(chunks(fh, 0, payload_end), algs)

            if der[:1] == b"\x30" and _ENVELOPED_OID in der[:32]:
                der = _decrypt_cms(der, trust, ev)
            if der[:1] != b"\x30" or _CMS_OID not in der[:32]:
                raise MalformedBundle("RAUC signature block is not CMS signed data")
            # the signature is checked before anything of the payload is decrypted or read as
            # squashfs, as rauc does: a crypt bundle's payload is verified encrypted
            result = verify_cms(der, trust, ev, detached=digester, now=now)
            if result.content is None:
                if not squashfs:
                    raise MalformedBundle("RAUC payload is not a squashfs image")
                ev.algorithm("rauc-plain")
                ev.cover(f"squashfs payload ({payload_end} bytes)")
                return
            self._verity(fh, result.content, payload_end, ev, squashfs)

    def _verity(self, fh, manifest: bytes, payload_end: int, ev: Notebook, squashfs: bool) -> None:
        cfg = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            cfg.read_string(manifest.decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise MalformedBundle(f"signed RAUC manifest cannot be parsed: {exc}") from exc
        fmt = cfg.get("bundle", "format", fallback="plain")
        ev.cover("manifest")
        if fmt not in ("verity", "crypt"):
            raise MalformedBundle(
                f"RAUC bundle format {fmt!r} is not supported (plain, verity and crypt are)"
            )
        if fmt == "verity" and not squashfs:
            raise MalformedBundle("RAUC payload is not a squashfs image")
        ev.algorithm(f"rauc-{fmt}-sha256")
        if fmt == "crypt":
            # the hash tree covers the encrypted payload: every byte is verified before decryption
            ev.notes.append(
                "crypt bundle: the payload is encrypted (AES-256-CBC); its key is in the signed manifest"
                + (
                    ""
                    if ev.notes and any("decrypted" in n for n in ev.notes)
                    else ", readable by anyone "
                    "holding the bundle until it is encrypted for recipients (rauc encrypt)"
                )
            )
        try:
            root = bytes.fromhex(cfg.get("bundle", "verity-hash"))
            salt = bytes.fromhex(cfg.get("bundle", "verity-salt"))
            tree_size = int(cfg.get("bundle", "verity-size"))
        except (configparser.Error, ValueError) as exc:
            raise MalformedBundle(f"RAUC manifest verity fields unreadable: {exc}") from exc
        if len(root) != 32 or tree_size <= 0 or tree_size % BLOCK:
            raise MalformedBundle("RAUC manifest verity fields are inconsistent")
        data_size = payload_end - tree_size
        if data_size <= 0 or data_size % BLOCK:
            raise DigestMismatch(
                f"payload size {payload_end} does not match the signed verity layout (hash tree {tree_size})"
            )
        tree, computed_root = verity_tree(fh, data_size, salt)
        if len(tree) != tree_size:
            raise DigestMismatch(
                f"signed verity-size {tree_size} differs from the computed tree ({len(tree)})"
            )
        if computed_root != root:
            raise DigestMismatch("payload does not match the signed dm-verity root hash")
        stored = b"".join(chunks(fh, data_size, tree_size))
        if stored != tree:
            raise DigestMismatch("stored dm-verity hash tree differs from the payload's")
        ev.cover(f"{'encrypted ' if fmt == 'crypt' else ''}squashfs payload ({data_size} bytes, dm-verity)")
        ev.cover(f"dm-verity hash tree ({tree_size} bytes)")
        for section in cfg.sections():
            if section.startswith("image."):
                ev.cover(f"image {section[6:]}: {cfg.get(section, 'filename', fallback='?')}")


def verity_tree(fh, data_size: int, salt: bytes) -> tuple[bytes, bytes]:
    """dm-verity (format 1, SHA-256, 4 KiB) hash tree in on-disk order and its root hash."""
    per_block = BLOCK // 32
    digests = bytearray()
    fh.seek(0)
    left = data_size
    while left > 0:
        block = fh.read(min(BLOCK * 256, left))
        if not block:
            raise MalformedBundle("RAUC payload truncated")
        left -= len(block)
        for i in range(0, len(block), BLOCK):
            digests += hashlib.sha256(salt + block[i : i + BLOCK]).digest()
    levels: list[bytes] = []
    current = bytes(digests)
    n_blocks = data_size // BLOCK
    if n_blocks == 1:
        return b"", current
    while True:
        level = bytearray()
        for i in range(0, len(current), per_block * 32):
            piece = current[i : i + per_block * 32]
            level += piece + b"\0" * (BLOCK - len(piece))
        levels.append(bytes(level))
        if len(level) == BLOCK:
            break
        current = b"".join(
            hashlib.sha256(salt + level[i : i + BLOCK]).digest() for i in range(0, len(level), BLOCK)
        )
    root = hashlib.sha256(salt + levels[-1]).digest()
    return b"".join(reversed(levels)), root


def _decrypt_cms(der: bytes, trust: TrustStore, ev: Notebook) -> bytes:
    """The signed CMS inside a bundle encrypted for recipients (``rauc encrypt``)."""
    from cryptography.hazmat.primitives.serialization import pkcs7

    if not trust.recipients:
        raise Encrypted(
            "the RAUC crypt bundle is encrypted for its recipients: its signature can only be checked "
            "with a recipient's key (verify --decrypt-key KEY_AND_CERT.pem)"
        )
    for cert, key in trust.recipients:
        try:
            inner = pkcs7.pkcs7_decrypt_der(der, cert, key, [])
        except (ValueError, TypeError):
            continue
        ev.notes.append(f"signature decrypted with the key of {cert.subject.rfc4514_string()}")
        return inner
    raise Encrypted("none of the --decrypt-key keys is a recipient of this RAUC crypt bundle")


def _has_trailer(path: Path, tail: bytes, size: int) -> bool:
    if len(tail) < 8:
        return False
    n = int.from_bytes(tail[-8:], "big")
    if not 0 < n <= min(_MAX_CMS, size - 12):
        return False
    with open(path, "rb") as fh:
        fh.seek(size - 8 - n)
        head = fh.read(32)
    return head[:1] == b"\x30" and (_CMS_OID in head or _ENVELOPED_OID in head)


def _no_trailer(fh, size: int) -> None:
    """No plausible signature trailer: a bare squashfs is unsigned, anything else malformed."""
    fh.seek(0)
    sb = fh.read(96)
    if sb[:4] != b"hsqs" or len(sb) < 48:
        raise MalformedBundle("not a RAUC bundle (no squashfs payload)")
    used = int.from_bytes(sb[40:48], "little")
    if used > size:
        raise MalformedBundle(f"squashfs truncated: {used} bytes used, file has {size}")
    end = (used + BLOCK - 1) // BLOCK * BLOCK
    for part in chunks(fh, min(end, size), size - min(end, size)):
        if part.strip(b"\0"):
            raise MalformedBundle("RAUC signature trailer is corrupt or truncated")
    raise Unsigned("squashfs without an appended RAUC signature")
