"""U-Boot FIT images (``.itb``): configuration and image signatures, image hashes.

A configuration signature covers FDT *regions*, computed as current U-Boot
does (``fit_config_check_sig``): the node list is rebuilt from the
configuration itself -- ``/``, the configuration node, and every image it
references with that image's ``hash-*``, ``cipher`` and ``dm-verity``
subnodes -- whatever the FIT's own ``hashed-nodes`` claims.  The regions
of those nodes (``data``, ``data-size``, ``data-position`` and
``data-offset`` excluded) plus the first ``hashed-strings`` bytes of the
strings block are hashed and the signature checked: RSA (PKCS#1 v1.5 or
PSS) or ECDSA (raw r||s).  Image data is bound through the hash nodes,
which are recomputed here.  Images no verified configuration (or image
signature) covers make the verdict ``partially_signed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cra_fw.bundles.crypto import check_hash_strength, check_key_strength, chunks, verify_prehashed
from cra_fw.bundles.interface import (
    BundleError,
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    PartiallySigned,
    Unsigned,
    UntrustedSigner,
    Verifier,
    as_bundle_error,
)
from cra_fw.bundles.trust import TrustedKey, TrustStore
from cra_fw.parsers import ParseError
from cra_fw.parsers.fdt import Fdt, Node
from cra_fw.parsers.fit import image_span

EXCLUDED_PROPS = {"data", "data-size", "data-position", "data-offset"}
_NOT_IMAGE_REFS = {"description", "compatible"}
_HASH_ALGOS = {"sha1", "sha256", "sha384", "sha512", "md5", "crc32"}
_SIG_HASHES = {"sha1", "sha256", "sha384", "sha512"}
_SIG_PROPS = {
    "value",
    "algo",
    "padding",
    "key-name-hint",
    "timestamp",
    "signer-name",
    "signer-version",
    "comment",
    "hashed-nodes",
    "hashed-strings",
    "sign-images",
    "required",
}


@dataclass
class _Image:
    name: str
    node: Node
    offset: int  # absolute in the file
    size: int
    covered_by: list[str] = field(default_factory=list)


class FitVerifier(Verifier):
    name = "fit"
    description = "U-Boot FIT image (.itb)"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        return head[:4] == b"\xd0\x0d\xfe\xed" and b"images\0" in head

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fdt = Fdt(fh, 0, size)
            images_node = fdt.node("/images")
            if images_node is None:
                raise MalformedBundle("device tree has no /images node: not a FIT image")
            if not fdt.reservations_empty():
                raise MalformedBundle("FIT has memory reservations or a bad reservation block offset")
            images = {n: _locate(fdt, node, size) for n, node in images_node.children.items()}
            self._check_hashes(fdt, images, ev)
            confs = fdt.node("/configurations")
            conf_nodes = list(confs.children.values()) if confs is not None else []
            default = confs.prop("default") if confs is not None else None
            if default is not None and default.as_str() not in confs.children:  # type: ignore[union-attr]
                raise MalformedBundle(f"default configuration {default.as_str()!r} does not exist")
            sig_count = sum(1 for c in conf_nodes for s in c.children if s.startswith("signature"))
            sig_count += sum(1 for i in images.values() for s in i.node.children if s.startswith("signature"))
            if sig_count == 0:
                raise Unsigned("FIT has no configuration or image signature")
            failures: list[BundleError] = []
            verified_confs: list[str] = []
            for conf in conf_nodes:
                try:
                    refs = self._verify_config(fdt, conf, images, trust, ev)
                except (BundleError, ParseError) as exc:
                    failures.append(as_bundle_error(exc))
                    ev.uncover(f"configuration {conf.name}")
                    continue
                verified_confs.append(conf.name)
                ev.cover(f"configuration {conf.name}")
                for ref in refs:
                    images[ref].covered_by.append(conf.name)
            for img in images.values():
                try:
                    if self._verify_image_sig(fdt, img, trust, ev):
                        img.covered_by.append(f"image signature of {img.name}")
                except (BundleError, ParseError) as exc:
                    failures.append(as_bundle_error(exc))
        for img in images.values():
            if img.covered_by:
                ev.cover(f"image {img.name} ({img.size} bytes)")
            else:
                ev.uncover(f"image {img.name} ({img.size} bytes)")
        if failures:
            raise _worst(failures)
        if ev.uncovered:
            raise PartiallySigned("not covered by any verified signature: " + ", ".join(ev.uncovered))
        if not verified_confs:
            ev.notes.append("no configuration is signed; only image signatures cover the data")

    # -- image hash nodes
    def _check_hashes(self, fdt: Fdt, images: dict[str, _Image], ev: Notebook) -> None:
        for img in images.values():
            wanted: dict[str, bytes] = {}
            for sub in img.node.children.values():
                if not sub.name.startswith("hash"):
                    continue
                algo = sub.str("algo")
                value = sub.prop("value")
                if algo not in _HASH_ALGOS or value is None or value.value is None:
                    raise MalformedBundle(f"image {img.name}: hash node {sub.name} has no usable algo/value")
                wanted[f"{sub.name}:{algo}"] = value.value
            if not wanted:
                ev.notes.append(f"image {img.name} has no hash node")
                continue
            algos = {k.split(":", 1)[1] for k in wanted}
            hashers = {a: hashlib.new(a) for a in algos if a != "crc32"}
            crc = 0
            for part in chunks(fdt.fh, img.offset, img.size):
                for h in hashers.values():
                    h.update(part)
                if "crc32" in algos:
                    crc = zlib.crc32(part, crc)
            got = {a: h.digest() for a, h in hashers.items()}
            got["crc32"] = crc.to_bytes(4, "big")
            for key, value in wanted.items():
                algo = key.split(":", 1)[1]
                if got[algo] != value:
                    raise DigestMismatch(f"image {img.name}: {algo} of the data differs from its hash node")

    # -- configuration signatures
    def _verify_config(
        self, fdt: Fdt, conf: Node, images: dict[str, _Image], trust: TrustStore, ev: Notebook
    ) -> list[str]:
        sigs = [s for n, s in conf.children.items() if n.startswith("signature")]
        if not sigs:
            raise PartiallySigned(f"configuration {conf.name} is not signed")
        if "@" in conf.name:
            raise InvalidSignature(f"configuration {conf.name} contains '@' (U-Boot refuses it)")
        nodes, refs = signed_nodes(fdt, conf, images)
        regions = fdt.find_regions(nodes, EXCLUDED_PROPS)
        keys = _candidate_keys(trust)
        required = [k for k in keys if k.uboot_required == "conf"]
        last: BundleError | None = None
        verified_by: set[str] = set()
        for sig in sigs:
            try:
                tk = self._check_sig(fdt, sig, regions, keys, ev, kind=f"configuration {conf.name}")
            except (BundleError, ParseError) as exc:
                last = as_bundle_error(exc)
                continue
            verified_by.add(tk.fingerprint)
            if not required:
                break
        if not verified_by:
            assert last is not None
            raise last
        missing = [k for k in required if k.fingerprint not in verified_by]
        if missing:
            raise InvalidSignature(
                f"configuration {conf.name} lacks a valid signature by required key {missing[0].name}"
            )
        declared = sigs[0].prop("hashed-nodes")
        if declared is not None and set(declared.as_strings()) != nodes:
            ev.notes.append(f"{conf.name}: hashed-nodes in the FIT differs from the nodes U-Boot hashes")
        return refs

    def _check_sig(
        self,
        fdt: Fdt,
        sig: Node,
        regions: list[tuple[int, int]],
        keys: list[TrustedKey],
        ev: Notebook,
        kind: str,
        data: tuple[int, int] | None = None,
    ) -> TrustedKey:
        algo = sig.str("algo")
        try:
            hash_name, crypto = algo.split(",", 1)
        except ValueError:
            raise MalformedBundle(f"{kind}: signature algo {algo!r} unreadable") from None
        if hash_name not in _SIG_HASHES or not crypto.startswith(("rsa", "ecdsa")):
            raise MalformedBundle(f"{kind}: unsupported signature algorithm {algo!r}")
        value = sig.prop("value")
        if value is None or not value.value:
            raise MalformedBundle(f"{kind}: signature node {sig.name} has no value")
        unknown = set(sig.props) - _SIG_PROPS
        if unknown or sig.children:
            # U-Boot ignores them, but nothing signs them either: refuse rather than guess
            raise MalformedBundle(f"{kind}: unexpected content in {sig.name}: {', '.join(sorted(unknown))}")
        for pname in ("signer-name", "signer-version", "comment", "key-name-hint"):
            if pname in sig.props:
                sig.props[pname].as_str()
        if "hashed-nodes" in sig.props:
            sig.props["hashed-nodes"].as_strings()
        padding = sig.str("padding", "pkcs-1.5")
        hint = sig.str("key-name-hint")
        ev.algorithm(algo + (",pss" if padding == "pss" else ""))
        if data is None:
            strings = sig.prop("hashed-strings")
            parts = list(regions)
            if strings is not None:
                raw = strings.value or b""
                if len(raw) != 8 or raw[:4] != b"\0\0\0\0":
                    raise MalformedBundle(f"{kind}: invalid hashed-strings (must be <0 size>)")
                ssize = int.from_bytes(raw[4:8], "big")
                if ssize > fdt.size_strings:
                    raise MalformedBundle(f"{kind}: hashed-strings lies outside the strings block")
                parts.append((fdt.off_strings, ssize))
            digest = hashlib.new(hash_name)
            for off, size in parts:
                for part in chunks(fdt.fh, off, size):
                    digest.update(part)
        else:
            digest = hashlib.new(hash_name)
            for part in chunks(fdt.fh, data[0], data[1]):
                digest.update(part)
        d = digest.digest()
        mismatch = ""
        named = False
        for tk in keys:
            if crypto.startswith("rsa") and not isinstance(tk.key, rsa.RSAPublicKey):
                continue
            if crypto.startswith("ecdsa") and not isinstance(tk.key, ec.EllipticCurvePublicKey):
                continue
            named = named or (bool(hint) and tk.name == hint)
            if tk.uboot_algo and tk.uboot_algo != algo:
                if verify_prehashed(tk.key, value.value, d, hash_name, _scheme(crypto, padding)):
                    mismatch = f"signed with {algo} but the trusted key {tk.name} is {tk.uboot_algo}"
                continue
            if verify_prehashed(tk.key, value.value, d, hash_name, _scheme(crypto, padding)):
                ev.signer = ev.signer or (tk.name or tk.source)
                ev.key_fingerprint = ev.key_fingerprint or tk.fingerprint
                ts = sig.prop("timestamp")
                if ts is not None and ts.as_u32() is not None and not ev.signed_at:
                    ev.signed_at = dt.datetime.fromtimestamp(ts.as_u32() or 0, dt.UTC).isoformat()
                check_hash_strength(hash_name)
                check_key_strength(tk.key, ev)
                return tk
        if mismatch:
            raise InvalidSignature(
                f"{kind}: {mismatch}; U-Boot rejects a signature whose algorithm "
                "differs from the trusted key's"
            )
        if not keys:
            raise UntrustedSigner(f"{kind}: no trusted key given")
        if hint and not named and all(k.name for k in keys):
            raise UntrustedSigner(f"{kind}: signed by key {hint!r}, which is not among the trusted keys")
        raise InvalidSignature(f"{kind}: signature {sig.name} ({algo}) does not verify")

    def _verify_image_sig(self, fdt: Fdt, img: _Image, trust: TrustStore, ev: Notebook) -> bool:
        sigs = [s for n, s in img.node.children.items() if n.startswith("signature")]
        if not sigs:
            return False
        keys = _candidate_keys(trust)
        last: BundleError | None = None
        for sig in sigs:
            try:
                self._check_sig(fdt, sig, [], keys, ev, kind=f"image {img.name}", data=(img.offset, img.size))
                return True
            except (BundleError, ParseError) as exc:
                last = as_bundle_error(exc)
        assert last is not None
        raise last


def signed_nodes(fdt: Fdt, conf: Node, images: dict[str, _Image]) -> tuple[set[str], list[str]]:
    """Node paths U-Boot hashes for ``conf`` and the images it references."""
    nodes = {"/", f"/configurations/{conf.name}"}
    refs: list[str] = []
    for pname, prop in conf.props.items():
        if pname in _NOT_IMAGE_REFS or prop.value is None:
            continue
        for ref in prop.as_strings():
            img = images.get(ref)
            if img is None:
                continue
            nodes.add(f"/images/{ref}")
            hashes = [n for n in img.node.children if n.startswith("hash")]
            if not hashes:
                raise InvalidSignature(f"image {ref} has no hash node, so no signature can cover its data")
            nodes.update(f"/images/{ref}/{h}" for h in hashes)
            for extra in ("cipher", "dm-verity"):
                if extra in img.node.children:
                    nodes.add(f"/images/{ref}/{extra}")
            if ref not in refs:
                refs.append(ref)
    if not refs:
        raise MalformedBundle(f"configuration {conf.name} references no image")
    return nodes, refs


def _locate(fdt: Fdt, node: Node, file_size: int) -> _Image:
    start, size = image_span(fdt, node, file_size)
    return _Image(node.name, node, start, size)


def _candidate_keys(trust: TrustStore) -> list[TrustedKey]:
    return [k for k in trust.all_keys() if isinstance(k.key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)]


def _scheme(crypto: str, padding: str) -> str:
    if crypto.startswith("ecdsa"):
        return "raw"
    return "pss" if padding == "pss" else "pkcs1"


_ORDER = [
    "digest_mismatch",
    "invalid_signature",
    "untrusted_signer",
    "weak_algorithm",
    "malformed",
    "partially_signed",
]


def _worst(errors: list[BundleError]) -> BundleError:
    def rank(e: BundleError) -> int:
        v = e.verdict.value
        return _ORDER.index(v) if v in _ORDER else len(_ORDER)

    return sorted(errors, key=rank)[0]
