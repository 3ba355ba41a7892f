"""The scan stage: update bundles and update verification keys inside a firmware image.

Finds FIT images, RAUC bundles, SWUpdate and Mender artifacts, MCUboot and signed ESP
images among the unpacked files, in the image file itself and in carved ``fit``,
``mcuboot`` and ``esp-app``/``esp-bootloader`` layers, verifies them
(against ``--trust`` when given, else against the update keys the image ships), and lists the keys the
device uses to verify what it installs: RAUC keyring (``/etc/rauc/system.conf``),
SWUpdate public key, Mender ``ArtifactVerifyKey``, and U-Boot control DTBs
with a ``/signature`` node.  Whatever verifies under a publicly known key
(``signatures/keys``) is a high finding, ``update.publicly-known-key``.
"""

from __future__ import annotations

import configparser
import dataclasses
import io
import os
import posixpath
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cra_fw import safejson
from cra_fw.bundles.api import verify_bundle
from cra_fw.bundles.detect import HEAD, TAIL, read_head_tail, sniff_bytes
from cra_fw.bundles.interface import (
    BundleError,
    BundleVerdict,
    EmbeddedBundles,
    TrustStoreError,
    UpdateKey,
    Verdict,
)
from cra_fw.bundles.trust import TrustStore, key_fingerprint
from cra_fw.context import ScanContext
from cra_fw.errors import CraFwError
from cra_fw.parsers import ParseError
from cra_fw.parsers.fdt import Fdt
from cra_fw.records import FileEntry, FileKind, Finding, Location, Severity
from cra_fw.regions import copy_region

CATEGORY = "update"
CRA_UPDATE = ("Annex I Part I (2)(c)", "Annex I Part I (2)(f)", "Annex I Part II 7")
MAX_BUNDLES = 256
MAX_REGION = 512 * 1024 * 1024  # carved regions are copied out before verifying
_SKIP_KINDS = {FileKind.SYMLINK, FileKind.DIRECTORY, FileKind.DEVICE}

_SEVERITY = {
    Verdict.UNSIGNED: Severity.HIGH,
    Verdict.PARTIALLY_SIGNED: Severity.HIGH,
    Verdict.INVALID_SIGNATURE: Severity.HIGH,
    Verdict.DIGEST_MISMATCH: Severity.HIGH,
    Verdict.UNTRUSTED_SIGNER: Severity.HIGH,
    Verdict.WEAK_ALGORITHM: Severity.MEDIUM,
    Verdict.CERTIFICATE_EXPIRED: Severity.MEDIUM,
    Verdict.CERTIFICATE_NOT_YET_VALID: Severity.MEDIUM,
    Verdict.REVOKED: Severity.HIGH,
    Verdict.SIGNATURE_EXPIRED: Severity.MEDIUM,
    Verdict.MALFORMED: Severity.LOW,
}
_TITLE = {
    Verdict.UNSIGNED: "Unsigned update bundle",
    Verdict.PARTIALLY_SIGNED: "Update bundle installs content no signature covers",
    Verdict.INVALID_SIGNATURE: "Update bundle signature does not verify",
    Verdict.DIGEST_MISMATCH: "Update bundle content does not match its signed digest",
    Verdict.UNTRUSTED_SIGNER: "Update bundle signed by a key outside the trust anchors",
    Verdict.WEAK_ALGORITHM: "Update bundle signed with a weak algorithm",
    Verdict.CERTIFICATE_EXPIRED: "Update bundle signer certificate expired",
    Verdict.CERTIFICATE_NOT_YET_VALID: "Update bundle signer certificate not yet valid",
    Verdict.REVOKED: "Update bundle signed by a revoked key",
    Verdict.SIGNATURE_EXPIRED: "Update bundle signature has expired",
    Verdict.MALFORMED: "Update bundle could not be parsed",
}


def scan_embedded(ctx: ScanContext) -> EmbeddedBundles:
    """Verify bundles found in the image and report shipped update keys; never raises for bad input."""
    findings: list[Finding] = []
    try:
        trust = TrustStore.load(list(ctx.options.trust))
    except TrustStoreError as exc:
        trust = TrustStore()
        findings.append(
            Finding(
                rule_id="update.trust-unusable",
                category=CATEGORY,
                severity=Severity.INFO,
                title="Trust anchors for update bundles could not be loaded",
                cra_reference=(),
                evidence=str(exc),
                remediation="Pass PEM/DER certificates or public keys with --trust.",
            )
        )
    verdicts: list[BundleVerdict] = []
    keys: list[UpdateKey] = []
    seen: set[tuple[str, int, int]] = set()
    targets: list[_Target] = []
    for entry, fmt_or_dtb in _candidates(ctx):
        if fmt_or_dtb == "dtb":
            key = _dtb_keys(ctx, entry)
            if key is not None:
                keys.append(key)
            continue
        targets.append(
            _Target(
                entry.layer_id,
                entry.path,
                Path(entry.abs_path),
                0,
                entry.size,
                fmt_or_dtb,
                f"{entry.layer_id}:{entry.path}",
            )
        )
    targets += _region_targets(ctx)
    # shipped keys first: without --trust, bundles are checked against what the device uses
    for key in (*_rauc_keys(ctx, findings), *_swupdate_keys(ctx), *_mender_keys(ctx, findings)):
        keys.append(key)
    shipped = _shipped_stores(ctx, keys) if trust.empty else {}
    count = 0
    for target in targets:
        key_id = (os.path.realpath(target.file), target.offset, target.size)
        if key_id in seen:  # the same bytes reached as a file and as a carved layer
            continue
        seen.add(key_id)
        count += 1
        if count > MAX_BUNDLES:
            findings.append(
                Finding(
                    rule_id="update.bundle-limit",
                    category=CATEGORY,
                    severity=Severity.INFO,
                    title=f"Only the first {MAX_BUNDLES} update bundles were verified",
                    cra_reference=(),
                    remediation="Verify the remaining bundles with `cra-fw verify`.",
                )
            )
            break
        verdict = _verify_target(target, trust)
        candidates = shipped.get(target.fmt, [])
        if candidates and verdict.verdict is Verdict.UNTRUSTED_SIGNER:
            first = verdict
            verdict = _verify_shipped(target, candidates)
            if not verdict.known_key:
                verdict = dataclasses.replace(
                    verdict, known_key=first.known_key, known_key_text=first.known_key_text
                )
        verdicts.append(verdict)
        finding = _bundle_finding(ctx, target, verdict, trusted=not trust.empty or bool(verdict.anchor))
        if finding is not None:
            findings.append(finding)
        if verdict.known_key:
            findings.append(_known_key_finding(ctx, target, verdict))
    for key in keys:
        findings.append(_key_finding(ctx, key))
    return EmbeddedBundles(verdicts=tuple(verdicts), findings=tuple(findings), keys=tuple(keys))


# ------------------------------------------------------------------ bundles


def _open_regular(entry: FileEntry) -> int | None:
    if not entry.abs_path:
        return None
    try:
        fd = os.open(entry.abs_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _candidates(ctx: ScanContext) -> Iterator[tuple[FileEntry, str]]:
    for entry in ctx.files:
        if entry.kind in _SKIP_KINDS or entry.size < 64:
            continue
        fd = _open_regular(entry)
        if fd is None:
            continue
        try:
            with os.fdopen(fd, "rb", closefd=False) as fh:
                head = fh.read(HEAD)
                size = fh.seek(0, 2)
                fh.seek(max(0, size - TAIL))
                tail = fh.read(TAIL)
        finally:
            os.close(fd)
        fmt = sniff_bytes(head, tail, size, Path(entry.abs_path))
        if fmt is not None:
            yield entry, fmt
        elif head[:4] == b"\xd0\x0d\xfe\xed" and size <= 4 * 1024 * 1024:
            yield entry, "dtb"  # a control DTB may hold update keys


@dataclass(frozen=True)
class _Target:
    """Bytes to verify: ``size`` bytes at ``offset`` of ``file``, reported at (layer_id, path)."""

    layer_id: str
    path: str
    file: Path
    offset: int
    size: int
    fmt: str
    label: str
    report_offset: int | None = None


# layers the unpacker carves whose region is a signed image: layer format -> verifier
_LAYER_VERIFIER = {
    "fit": "fit",
    "mcuboot": "mcuboot",
    "esp-app": "esp-secure-boot",
    "esp-bootloader": "esp-secure-boot",
}


def _region_targets(ctx: ScanContext) -> list[_Target]:
    """The image file itself when it is a bundle, and every carved layer that is a signed image."""
    out: list[_Target] = []
    image_path = Path(ctx.image.path) if ctx.image.path else None
    if image_path is not None and _is_regular(image_path):
        try:
            head, tail, size = read_head_tail(image_path)
        except OSError:
            head, tail, size = b"", b"", 0
        fmt = sniff_bytes(head, tail, size, image_path) if size >= 64 else None
        if fmt is not None:
            root = ctx.layers[0].id if ctx.layers else "L0"
            out.append(_Target(root, ctx.image.name, image_path, 0, size, fmt, f"{root}:{ctx.image.name}"))
    for layer in ctx.layers:
        fmt = _LAYER_VERIFIER.get(layer.format)
        if fmt is None or layer.size <= 0:
            continue
        # a child layer is the region [offset, offset+size) of its parent's file: the
        # image when parent_path is empty, else that file inside the parent layer
        if not layer.parent_path:
            parent, where = image_path, ctx.image.name
        else:
            entry = ctx.lookup(layer.parent_id or "", layer.parent_path)
            parent = Path(entry.abs_path) if entry is not None and entry.abs_path else None
            where = layer.parent_path
        if parent is None or not _is_regular(parent):
            continue
        if layer.offset < 0 or layer.offset + layer.size > parent.stat().st_size:
            continue
        out.append(
            _Target(
                layer.id,
                where,
                parent,
                layer.offset,
                layer.size,
                fmt,
                f"{layer.id}:{where}@{layer.offset:#x}",
                report_offset=layer.offset,
            )
        )
    return out


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _verify_target(target: _Target, trust: TrustStore, known_keys: bool = True) -> BundleVerdict:
    try:
        if target.offset == 0 and target.size == target.file.stat().st_size:
            verdict = verify_bundle(target.file, trust, fmt=target.fmt, known_keys=known_keys)
        elif target.size > MAX_REGION:
            return BundleVerdict(
                path=target.label,
                format=target.fmt,
                verdict=Verdict.MALFORMED,
                reason=f"region of {target.size} bytes is over the {MAX_REGION} byte limit; "
                "carve it and run `cra-fw verify` on it",
                trusted=not trust.empty,
            )
        else:
            with tempfile.TemporaryDirectory(prefix="cra-fw-region-") as tmp:
                region = Path(tmp) / "region.bin"
                copy_region(target.file, target.offset, target.offset + target.size, region)
                verdict = verify_bundle(region, trust, fmt=target.fmt, known_keys=known_keys)
    except (CraFwError, OSError) as exc:
        return BundleVerdict(
            path=target.label,
            format=target.fmt,
            verdict=Verdict.MALFORMED,
            reason=str(exc),
            trusted=not trust.empty,
        )
    return dataclasses.replace(verdict, path=target.label)


# which shipped key kind the device uses for which bundle format
_KEY_KIND_FOR = {
    "fit": "uboot-dtb",
    "rauc": "rauc-keyring",
    "swupdate": "swupdate-key",
    "mender": "mender-key",
}
MAX_SHIPPED_KEYS = 16


def _shipped_stores(ctx: ScanContext, keys: list[UpdateKey]) -> dict[str, list[tuple[UpdateKey, TrustStore]]]:
    """format -> (shipped key, trust store holding just that key), for the key kinds that format uses."""
    out: dict[str, list[tuple[UpdateKey, TrustStore]]] = {}
    for key in keys[:MAX_SHIPPED_KEYS]:
        fmt = next((f for f, kind in _KEY_KIND_FOR.items() if kind == key.kind), None)
        entry = ctx.lookup(key.layer_id, key.path)
        entry = ctx.resolve(entry) if entry is not None else None
        if fmt is None or entry is None or not key.fingerprints:
            continue
        store = TrustStore()
        try:
            store.add_bytes(ctx.read_bytes(entry, 16 * 1024 * 1024), key.path)
        except (TrustStoreError, BundleError, ParseError, ValueError):
            continue
        if not store.empty:
            out.setdefault(fmt, []).append((key, store))
    return out


def _verify_shipped(target: _Target, candidates: list[tuple[UpdateKey, TrustStore]]) -> BundleVerdict:
    """Verify against each key the image ships for this format; the first that accepts it wins."""
    verdict: BundleVerdict | None = None
    for key, store in candidates:
        verdict = _verify_target(target, store, known_keys=False)
        anchor = f"{key.kind}:{key.layer_id}:{key.path}"
        if verdict.verdict is Verdict.VALID:
            return dataclasses.replace(
                verdict,
                anchor=anchor,
                notes=(
                    *verdict.notes,
                    f"verified against the {key.kind} shipped in this image ({key.path}), "
                    "not against an independent --trust anchor",
                ),
            )
    assert verdict is not None
    names = ", ".join(f"{k.kind} {k.path}" for k, _ in candidates)
    return dataclasses.replace(
        verdict,
        anchor="shipped",
        notes=(*verdict.notes, f"does not verify against the keys shipped in this image: {names}"),
    )


def _bundle_finding(ctx: ScanContext, target: _Target, v: BundleVerdict, trusted: bool) -> Finding | None:
    if v.verdict is Verdict.VALID and v.anchor.startswith(tuple(_KEY_KIND_FOR.values())):
        return Finding(
            rule_id="update.bundle-verified-shipped-key",
            category=CATEGORY,
            severity=Severity.INFO,
            title=f"Update bundle verifies against the update key shipped in the image ({v.format})",
            cra_reference=CRA_UPDATE,
            location=Location(
                layer_chain=ctx.layer_chain(target.layer_id), path=target.path, offset=target.report_offset
            ),
            evidence=f"{v.format}: signed by {v.signer or '?'} ({', '.join(v.algorithms)}); chains to {v.anchor}",
            remediation="Check with --trust that the shipped key is the vendor's release key.",
            fingerprint=v.key_fingerprint,
            extra={"format": v.format, "verdict": v.verdict.value, "signer": v.signer, "anchor": v.anchor},
        )
    if v.verdict is Verdict.VALID:
        return None
    severity = _SEVERITY[v.verdict]
    title = _TITLE[v.verdict]
    remediation = (
        "Sign update bundles so that every installed byte is covered, and verify them on the device."
    )
    if v.verdict is Verdict.UNTRUSTED_SIGNER and not trusted:
        severity = Severity.INFO
        title = "Signed update bundle (signer not verified: no --trust given)"
        remediation = "Re-run with --trust pointing to the vendor's CA certificate or public key."
    evidence = f"{v.format}: {v.verdict.value}: {v.reason}"
    if v.uncovered:
        evidence += "; not covered: " + ", ".join(v.uncovered[:5])
    return Finding(
        rule_id=f"update.bundle-{v.verdict.value.replace('_', '-')}",
        category=CATEGORY,
        severity=severity,
        title=f"{title} ({v.format})",
        cra_reference=CRA_UPDATE,
        location=Location(
            layer_chain=ctx.layer_chain(target.layer_id), path=target.path, offset=target.report_offset
        ),
        evidence=evidence[:1000],
        remediation=remediation,
        fingerprint=v.key_fingerprint,
        extra={"format": v.format, "verdict": v.verdict.value, "signer": v.signer},
    )


def _known_key_finding(ctx: ScanContext, target: _Target, v: BundleVerdict) -> Finding:
    return Finding(
        rule_id="update.publicly-known-key",
        category=CATEGORY,
        severity=Severity.HIGH,
        title=f"Update signed with a publicly known key ({v.format}): as good as unsigned",
        cra_reference=CRA_UPDATE,
        location=Location(
            layer_chain=ctx.layer_chain(target.layer_id), path=target.path, offset=target.report_offset
        ),
        evidence=f"{v.format}: signature verifies under {v.known_key_text}"[:1000],
        remediation="Generate a private release signing key, keep it out of public repositories, "
        "provision its public half in the bootloader or update client, and re-sign.",
        fingerprint=v.key_fingerprint,
        extra={"format": v.format, "verdict": v.verdict.value, "known_key": v.known_key},
    )


# ------------------------------------------------------------------ shipped keys


def _key_finding(ctx: ScanContext, key: UpdateKey) -> Finding:
    return Finding(
        rule_id=f"update.key-{key.kind}",
        category=CATEGORY,
        severity=Severity.INFO,
        title=f"Update verification key shipped ({key.kind})",
        cra_reference=CRA_UPDATE,
        location=Location(layer_chain=ctx.layer_chain(key.layer_id), path=key.path),
        evidence=(key.detail + "; " if key.detail else "")
        + "keys: "
        + (", ".join(key.fingerprints) or "none"),
        remediation="Check that these keys belong to the vendor's release signing and that "
        "bundles are verified against them.",
        fingerprint=key.fingerprints[0] if key.fingerprints else "",
    )


def _fingerprints(data: bytes, source: str) -> tuple[str, ...]:
    store = TrustStore()
    try:
        store.add_bytes(data, source)
    except (TrustStoreError, BundleError, ParseError, ValueError):
        return ()
    out = [key_fingerprint(c.public_key()) for c in store.certificates]
    out += [k.fingerprint for k in store.keys]
    return tuple(dict.fromkeys(out))


def _dtb_keys(ctx: ScanContext, entry: FileEntry) -> UpdateKey | None:
    data = ctx.read_bytes(entry, 4 * 1024 * 1024)
    try:
        fdt = Fdt(io.BytesIO(data))
    except ParseError:
        return None
    sig = fdt.node("/signature")
    if sig is None or not sig.children:
        return None
    fps = _fingerprints(data, entry.path)
    names = ", ".join(
        f"{n.name} ({n.str('algo')}, required={n.str('required') or 'no'})" for n in sig.children.values()
    )
    return UpdateKey("uboot-dtb", entry.layer_id, entry.path, fps, f"U-Boot /signature keys: {names}")


def _same_layer(ctx: ScanContext, entry: FileEntry, path: str) -> FileEntry | None:
    found = ctx.lookup(entry.layer_id, posixpath.normpath(path))
    return ctx.resolve(found) if found is not None else None


def _config_finding(
    ctx: ScanContext,
    conf: FileEntry,
    rule_id: str,
    severity: Severity,
    title: str,
    evidence: str,
    remediation: str,
) -> Finding:
    """A finding about an update client's configuration file (``conf``)."""
    return Finding(
        rule_id=rule_id,
        category=CATEGORY,
        severity=severity,
        title=title,
        cra_reference=CRA_UPDATE,
        location=Location(ctx.layer_chain(conf.layer_id), conf.path),
        evidence=evidence,
        remediation=remediation,
    )


def _rauc_keys(ctx: ScanContext, findings: list[Finding]) -> Iterator[UpdateKey]:
    for conf in ctx.iter_files(globs=["*/etc/rauc/system.conf"]):
        conf = ctx.resolve(conf)
        if conf is None:
            continue
        cfg = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            cfg.read_string(ctx.read_text(conf, 256 * 1024))
        except configparser.Error:
            continue
        root = conf.path[: -len("/etc/rauc/system.conf")] or ""
        ring = cfg.get("keyring", "path", fallback="")
        if not ring:
            findings.append(
                _config_finding(
                    ctx,
                    conf,
                    "update.rauc-no-keyring",
                    Severity.HIGH,
                    "RAUC is configured without a keyring",
                    "[keyring] path= is missing in system.conf",
                    "Set [keyring] path= to the vendor CA so bundles are verified.",
                )
            )
            continue
        # relative keyring paths are relative to the directory of system.conf
        full = root + ring if ring.startswith("/") else posixpath.join(root + "/etc/rauc", ring)
        ring_entry = _same_layer(ctx, conf, full)
        if ring_entry is None:
            findings.append(
                _config_finding(
                    ctx,
                    conf,
                    "update.rauc-keyring-missing",
                    Severity.MEDIUM,
                    "RAUC keyring named in system.conf is not in the image",
                    f"keyring path={ring}",
                    "Ship the keyring in the image, or check it is provisioned another way.",
                )
            )
            continue
        fps = _fingerprints(ctx.read_bytes(ring_entry, 16 * 1024 * 1024), ring_entry.path)
        yield UpdateKey(
            "rauc-keyring", ring_entry.layer_id, ring_entry.path, fps, f"RAUC keyring from {conf.path}"
        )


_SWU_KEY = re.compile(rb'public-key-file\s*=\s*"([^"]+)"|(?:^|\s)-k\s+(/\S+)', re.M)


def _swupdate_keys(ctx: ScanContext) -> Iterator[UpdateKey]:
    seen: set[tuple[str, str]] = set()
    configs = ctx.iter_files(
        globs=[
            "*/etc/swupdate.cfg",
            "*/etc/swupdate/*",
            "*/etc/default/swupdate*",
            "*/swupdate/conf.d/*",
            "*/systemd/system/swupdate*.service",
        ]
    )
    for conf in configs:
        if conf.kind in _SKIP_KINDS or conf.size > 256 * 1024:
            continue
        data = ctx.read_bytes(conf, 256 * 1024)
        for m in _SWU_KEY.finditer(data):
            path = (m.group(1) or m.group(2)).decode("utf-8", "replace").strip("\"'")
            if (conf.layer_id, path) in seen:
                continue
            seen.add((conf.layer_id, path))
            root = conf.path.split("/etc/")[0] if "/etc/" in conf.path else ""
            key_entry = _same_layer(ctx, conf, root + path) or _same_layer(ctx, conf, path)
            fps = _fingerprints(ctx.read_bytes(key_entry, 1024 * 1024), key_entry.path) if key_entry else ()
            yield UpdateKey(
                "swupdate-key",
                conf.layer_id,
                key_entry.path if key_entry else path,
                fps,
                f"SWUpdate public key named in {conf.path}" + ("" if key_entry else " (not in image)"),
            )


def _mender_keys(ctx: ScanContext, findings: list[Finding]) -> Iterator[UpdateKey]:
    for conf in ctx.iter_files(globs=["*/etc/mender/mender.conf"]):
        conf = ctx.resolve(conf)
        if conf is None:
            continue
        try:
            cfg = safejson.loads(ctx.read_text(conf, 256 * 1024))
        except ValueError:
            continue
        if not isinstance(cfg, dict):
            continue
        paths = cfg.get("ArtifactVerifyKeys") or (
            [cfg["ArtifactVerifyKey"]] if cfg.get("ArtifactVerifyKey") else []
        )
        if not paths:
            findings.append(
                _config_finding(
                    ctx,
                    conf,
                    "update.mender-no-verify-key",
                    Severity.HIGH,
                    "Mender client accepts unsigned artifacts (no ArtifactVerifyKey)",
                    "mender.conf sets neither ArtifactVerifyKey nor ArtifactVerifyKeys",
                    "Set ArtifactVerifyKey so the device installs only signed artifacts.",
                )
            )
            continue
        root = conf.path[: -len("/etc/mender/mender.conf")]
        for p in paths:
            if not isinstance(p, str):
                continue
            key_entry = _same_layer(ctx, conf, root + p)
            fps = _fingerprints(ctx.read_bytes(key_entry, 1024 * 1024), key_entry.path) if key_entry else ()
            yield UpdateKey(
                "mender-key",
                conf.layer_id,
                key_entry.path if key_entry else p,
                fps,
                f"Mender ArtifactVerifyKey from {conf.path}" + ("" if key_entry else " (not in image)"),
            )
