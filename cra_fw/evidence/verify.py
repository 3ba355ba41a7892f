"""``cra-fw verify-evidence PACK --trust KEY``: the signature, then every hash in the manifest.

Each step is one :class:`Check` with a message that says what is wrong and
where; verification goes on after a failure so the user sees every problem
(a changed member and an edited manifest, say), and the result is valid only
when every check passed.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm

from cra_fw import safejson
from cra_fw.evidence.pack import MANIFEST_FORMAT
from cra_fw.evidence.sign import (
    PACK_MANIFEST,
    EvidenceError,
    KeyFileError,
    PublicKey,
    SignatureFileError,
    default_signature_path,
    file_digest,
    fingerprint,
    load_public_key,
    read_signature,
    signed_payload,
    verify_bytes,
)

# zipfile raises many types on hostile archives (encrypted flags, unknown methods, bad headers)
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EvidenceError,
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    KeyError,
    IndexError,
    OverflowError,
)
MAX_MEMBER = 8 * 1024**3  # bytes of one member we are willing to hash
MAX_MANIFEST = 16 * 1024**2


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


@dataclass(frozen=True)
class VerifyResult:
    """All checks on one file; ``ok`` only when every check passed."""

    path: Path
    checks: tuple[Check, ...]
    signer: str = ""  # key fingerprint of the (trusted) signer
    kind: str = ""  # file | evidence-pack
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def text(self) -> str:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.message}" for c in self.checks]
        verdict = "VERIFIED" if self.ok else f"NOT VERIFIED ({len(self.failures)} problem(s))"
        lines.append(f"{self.path}: {verdict}")
        return "\n".join(lines)


def _load_trust(trust: Sequence[Path]) -> list[tuple[Path, PublicKey, str]]:
    keys = []
    for path in trust:
        key = load_public_key(Path(path))
        keys.append((Path(path), key, fingerprint(key)))
    if not keys:
        raise KeyFileError("give at least one trusted public key with --trust KEY")
    return keys


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, str]:
    if info.file_size > MAX_MEMBER:
        raise EvidenceError(f"declares {info.file_size} bytes, more than the {MAX_MEMBER} accepted")
    h = hashlib.sha256()
    size = 0
    with zf.open(info) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            size += len(block)
            if size > MAX_MEMBER:
                raise EvidenceError("is larger than it declares")
            h.update(block)
    return size, h.hexdigest()


def _check_pack(
    path: Path, statement: dict[str, Any] | None, checks: list[Check], image: Path | None
) -> dict[str, Any] | None:
    """Manifest against the signed statement, members against the manifest."""
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        checks.append(Check("pack", False, f"not a readable zip file ({exc}): the pack is damaged"))
        return None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            checks.append(Check("pack", False, f"duplicate members {dupes}: the pack was tampered with"))
        if PACK_MANIFEST not in names:
            checks.append(Check("manifest", False, f"{PACK_MANIFEST} is missing: not an evidence pack"))
            return None
        try:
            info = zf.getinfo(PACK_MANIFEST)
            if info.file_size > MAX_MANIFEST:
                raise EvidenceError("too large")
            raw = zf.read(PACK_MANIFEST)
        except ZIP_ERRORS as exc:
            checks.append(Check("manifest", False, f"{PACK_MANIFEST} cannot be read ({exc}): damaged pack"))
            return None
        digest = hashlib.sha256(raw).hexdigest()
        if statement is not None:
            signed = statement.get("manifest_sha256")
            if signed is None:
                checks.append(
                    Check("manifest", False, "the signature covers the file only, not a pack manifest")
                )
            elif signed != digest:
                checks.append(
                    Check(
                        "manifest",
                        False,
                        f"{PACK_MANIFEST} was changed after signing "
                        f"(sha256 {digest[:16]}..., signed {str(signed)[:16]}...)",
                    )
                )
            else:
                checks.append(Check("manifest", True, f"{PACK_MANIFEST} is the one that was signed"))
        try:
            manifest = safejson.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            checks.append(Check("manifest", False, f"{PACK_MANIFEST} is not valid JSON ({exc})"))
            return None
        members = manifest.get("members") if isinstance(manifest, dict) else None
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != MANIFEST_FORMAT
            or not isinstance(members, list)
        ):
            checks.append(Check("manifest", False, f"{PACK_MANIFEST} is not a {MANIFEST_FORMAT} manifest"))
            return None
        listed: set[str] = set()
        by_name = {i.filename: i for i in infos}
        for entry in members:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                checks.append(Check("manifest", False, f"malformed member entry {str(entry)[:80]}"))
                continue
            name = entry["path"]
            listed.add(name)
            info = by_name.get(name)
            if info is None:
                checks.append(
                    Check(f"member {name}", False, "listed in the manifest but missing from the pack")
                )
                continue
            try:
                size, sha = _hash_member(zf, info)
            except ZIP_ERRORS as exc:
                checks.append(Check(f"member {name}", False, f"cannot be read ({exc}): changed or damaged"))
                continue
            if sha != entry.get("sha256") or size != entry.get("size"):
                checks.append(
                    Check(
                        f"member {name}",
                        False,
                        f"sha256 {sha[:16]}... ({size} bytes) differs from the manifest's "
                        f"{str(entry.get('sha256'))[:16]}... ({entry.get('size')} bytes): "
                        "changed after packing",
                    )
                )
            else:
                checks.append(Check(f"member {name}", True, f"sha256 matches ({size} bytes)"))
        for name in names:
            if name != PACK_MANIFEST and name not in listed:
                checks.append(Check(f"member {name}", False, "not in the manifest: added after packing"))
    if image is not None:
        img = manifest.get("image") or {}
        try:
            size, sha = file_digest(Path(image))
        except OSError as exc:
            checks.append(Check("image", False, f"cannot read {image}: {exc.strerror}"))
        else:
            ok = sha == img.get("sha256") and size == img.get("size")
            checks.append(
                Check(
                    "image",
                    ok,
                    f"{Path(image).name} sha256 {sha[:16]}... "
                    + (
                        "is the scanned image"
                        if ok
                        else f"is not the scanned image {img.get('name')} ({str(img.get('sha256'))[:16]}...)"
                    ),
                )
            )
    return manifest


def verify_evidence(
    path: Path, trust: Sequence[Path], signature: Path | None = None, image: Path | None = None
) -> VerifyResult:
    """Verify a signed file or evidence pack against trusted public keys.

    Raises :class:`KeyFileError` for an unusable trust key (a usage problem);
    everything about the pack and its signature becomes a failed :class:`Check`.
    """
    path = Path(path)
    sig_path = Path(signature) if signature else _find_signature(path)
    foreign = _foreign_format(sig_path)
    if foreign:
        return _verify_foreign(path, sig_path, foreign, trust, image)
    keys = _load_trust(trust)
    checks: list[Check] = []
    if not path.is_file():
        return VerifyResult(path, (Check("file", False, f"{path}: no such file"),))
    statement: dict[str, Any] | None = None
    signer = ""
    try:
        sig = read_signature(sig_path)
    except SignatureFileError as exc:
        checks.append(Check("signature", False, str(exc)))
        sig = None
    if sig is not None:
        trusted = [k for k in keys if k[2] == sig.key_fingerprint]
        try:
            from cryptography.hazmat.primitives import serialization

            embedded = serialization.load_pem_public_key(sig.doc["public_key"].encode("ascii"))
            embedded_fp = fingerprint(embedded)  # type: ignore[arg-type]
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            embedded_fp = f"unreadable ({exc})"
        if embedded_fp != sig.key_fingerprint:
            checks.append(
                Check(
                    "signer",
                    False,
                    "the embedded public key does not match the signature's key "
                    "fingerprint: the signature file was edited",
                )
            )
        if not trusted:
            names = ", ".join(f"{p.name} ({fp})" for p, _k, fp in keys)
            checks.append(
                Check(
                    "signer",
                    False,
                    f"signed by key {sig.key_fingerprint}, which is not a trusted key [{names}]",
                )
            )
        else:
            tpath, tkey, tfp = trusted[0]
            signer = tfp
            if verify_bytes(tkey, sig.algorithm, sig.signature, signed_payload(sig.doc)):
                statement = sig.signed
                checks.append(
                    Check(
                        "signature",
                        True,
                        f"valid {sig.algorithm} signature by the trusted key "
                        f"{tpath.name} ({tfp}), signed {statement['signed_at']}",
                    )
                )
            else:
                checks.append(
                    Check(
                        "signature",
                        False,
                        f"the {sig.algorithm} signature does not verify with the "
                        f"trusted key {tpath.name}: the signature file was altered",
                    )
                )
    try:
        size, digest = file_digest(path)
    except OSError as exc:
        checks.append(Check("file", False, f"cannot read {path}: {exc.strerror}"))
        return VerifyResult(path, tuple(checks), signer)
    if statement is not None:
        if digest == statement["sha256"] and size == statement["size"]:
            checks.append(Check("file", True, f"sha256 of {path.name} matches the signed one ({size} bytes)"))
        else:
            checks.append(
                Check(
                    "file",
                    False,
                    f"{path.name} is not the signed file: sha256 {digest[:16]}... "
                    f"({size} bytes), signed {statement['sha256'][:16]}... "
                    f"({statement['size']} bytes)",
                )
            )
    kind = (
        statement.get("kind", "file")
        if statement
        else ("evidence-pack" if zipfile.is_zipfile(path) else "file")
    )
    manifest = None
    if kind == "evidence-pack":
        manifest = _check_pack(path, statement, checks, image)
        if statement is not None and checks and all(c.ok for c in checks if c.name != "file"):
            file_check = next((c for c in checks if c.name == "file"), None)
            if file_check is not None and not file_check.ok:
                checks.append(
                    Check(
                        "pack",
                        False,
                        "the members and manifest match, but the pack's bytes differ from "
                        "the signed pack (zip headers or comment changed)",
                    )
                )
    return VerifyResult(path, tuple(checks), signer, kind, manifest)


# ---- signatures in the ecosystem's formats (cra-fw sign --format openpgp|sigstore) -------------

_FOREIGN_SUFFIXES = (".asc", ".sigstore.json", ".sigstore")


def _find_signature(path: Path) -> Path:
    """PATH.sig (cra-fw's own), else PATH.asc or PATH.sigstore.json when one of those exists."""
    native = default_signature_path(path)
    if native.exists():
        return native
    for suffix in _FOREIGN_SUFFIXES:
        cand = Path(str(path) + suffix)
        if cand.exists():
            return cand
    return native


def _foreign_format(sig_path: Path) -> str:
    """``openpgp`` or ``sigstore`` when the signature file is one of those, else ``""``."""
    if not sig_path.is_file():
        return ""
    from cra_fw.bundles.detect import detect_signature_format

    try:
        fmt = detect_signature_format(sig_path)
    except OSError:
        return ""
    return fmt if fmt in ("openpgp", "sigstore") else ""


def _verify_foreign(
    path: Path, sig_path: Path, fmt: str, trust: Sequence[Path], image: Path | None
) -> VerifyResult:
    """The signature through cra-fw's verifier for that format, then the pack's manifest and members."""
    from cra_fw.bundles import TrustStore, TrustStoreError, verify_bundle

    try:
        store = TrustStore.load(list(trust))
    except TrustStoreError as exc:
        raise KeyFileError(str(exc)) from exc
    if store.empty:
        raise KeyFileError(f"give the {fmt} trust anchor with --trust")
    if not path.is_file():
        return VerifyResult(path, (Check("file", False, f"{path}: no such file"),))
    verdict = verify_bundle(path, store, signature=sig_path, fmt=fmt)
    who = f" by {verdict.signer}" if verdict.signer else ""
    checks = [
        Check(
            "signature",
            verdict.ok,
            f"{fmt} signature {sig_path.name}{who}: {verdict.verdict.value}: {verdict.reason}",
        )
    ]
    kind = "evidence-pack" if zipfile.is_zipfile(path) else "file"
    manifest = None
    if kind == "evidence-pack":
        if verdict.ok:
            checks.append(
                Check("manifest", True, f"{PACK_MANIFEST} is covered by the signature over the whole pack")
            )
        manifest = _check_pack(path, None, checks, image)
    return VerifyResult(path, tuple(checks), verdict.key_fingerprint, kind, manifest)
