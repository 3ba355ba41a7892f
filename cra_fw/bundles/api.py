"""``verify_bundle``: pick a verifier, run it, turn its typed error into a verdict."""

from __future__ import annotations

import datetime as dt
import lzma
import struct
import tarfile
import zlib
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.x509 import InvalidVersion

from cra_fw.bundles import knownkeys
from cra_fw.bundles.cms import utcnow
from cra_fw.bundles.detached import SIDECARS, find_sidecar
from cra_fw.bundles.detect import detect_format, detect_signature_format, looks_like
from cra_fw.bundles.interface import (
    BundleError,
    BundleVerdict,
    Notebook,
    UnknownFormat,
    Verdict,
    as_bundle_error,
)
from cra_fw.bundles.registry import FALLBACK, names, verifier
from cra_fw.bundles.trust import TrustStore
from cra_fw.errors import InputError
from cra_fw.parsers import ParseError
from cra_fw.regions import file_sha256

# Parsing a hostile file can fail anywhere inside the standard library; these
# failures mean "malformed", never a traceback.
_PARSE_ERRORS = (
    ValueError,
    KeyError,
    IndexError,
    struct.error,
    EOFError,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    UnicodeDecodeError,
    OverflowError,
    RecursionError,
    UnsupportedAlgorithm,
    InvalidVersion,
)


def verify_bundle(
    path: Path,
    trust: TrustStore,
    *,
    signature: Path | None = None,
    fmt: str | None = None,
    now: dt.datetime | None = None,
    known_keys: bool = True,
) -> BundleVerdict:
    """Verify ``path`` against ``trust``; never raises for bad bundle content.

    Raises :class:`InputError` when ``path`` (or ``signature``) cannot be read
    and :class:`UnknownFormat` for an unknown ``fmt``.  With ``known_keys`` a bundle
    signed with a publicly known key (``signatures/keys``) says so in ``known_key``,
    whatever the trust anchors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a readable file")
    if signature is not None and not Path(signature).is_file():
        raise InputError(f"signature {signature} is not a readable file")
    now = now or utcnow()
    try:
        name = fmt or (detect_signature_format(signature) if signature is not None else detect_format(path))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if verifier(name) is None:
        raise UnknownFormat(f"unknown format {name!r}; choose one of {', '.join(names())}")
    if name == FALLBACK and fmt is None and signature is None and find_sidecar(path) is None:
        # no verifier knows the file and no detached signature is beside it: that is not
        # "unsigned" (an MCUboot or vendor-signed image carries its signature inside)
        ev, verdict = Notebook(), Verdict.UNSUPPORTED_FORMAT
        reason = (
            f"no verifier recognises this file (it looks like {looks_like(path)}) and no "
            f"{', '.join(SIDECARS)} signature is beside it: whether it is signed is not known"
        )
        name = "unknown"
    else:
        ev, verdict, reason = _run(name, path, trust, signature, now)
    known = (
        _known_signer(name, path, signature, now, ev, verdict) if known_keys and name != "unknown" else None
    )
    return BundleVerdict(
        path=str(path),
        format=name,
        verdict=verdict,
        reason=reason,
        signer=ev.signer,
        key_fingerprint=ev.key_fingerprint,
        algorithms=tuple(ev.algorithms),
        covered=tuple(ev.covered),
        uncovered=tuple(ev.uncovered),
        signed_at=ev.signed_at,
        cert_not_before=ev.cert_not_before,
        cert_not_after=ev.cert_not_after,
        verified_at=now.isoformat(timespec="seconds"),
        trusted=not trust.empty,
        notes=tuple(ev.notes),
        known_key=known.id if known is not None else "",
        known_key_text=known.summary if known is not None else "",
        anchor=trust.describe_anchor((ev.key_fingerprint, *ev.chain_fingerprints))
        if verdict in _SIGNED_BY_ANCHOR
        else "",
        sha256=file_sha256(path),
    )


def _run(
    name: str, path: Path, trust: TrustStore, signature: Path | None, now: dt.datetime
) -> tuple[Notebook, Verdict, str]:
    ev = Notebook()
    verdict = Verdict.VALID
    reason = "every installable byte is covered by a signature chaining to a trust anchor"
    try:
        verifier_cls = verifier(name)
        assert verifier_cls is not None  # checked by verify_bundle
        verifier_cls().verify(path, trust, ev, signature=signature, now=now)
        if trust.empty:  # belt and braces: nothing is valid without an anchor
            verdict, reason = Verdict.UNTRUSTED_SIGNER, "no trust anchor given"
    except (BundleError, ParseError) as exc:
        error = as_bundle_error(exc)
        verdict, reason = error.verdict, str(error)
    except _PARSE_ERRORS as exc:
        verdict, reason = Verdict.MALFORMED, f"{name} bundle cannot be parsed: {type(exc).__name__}: {exc}"
    except PermissionError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except OSError as exc:
        verdict, reason = Verdict.MALFORMED, f"{name} bundle cannot be read: {exc.strerror or exc}"
    return ev, verdict, reason


# a signature that verifies under a known key, even if its certificate is out of date or
# its algorithm weak, was made with that key
_SIGNED_BY_ANCHOR = frozenset(
    {Verdict.VALID, Verdict.CERTIFICATE_EXPIRED, Verdict.CERTIFICATE_NOT_YET_VALID, Verdict.WEAK_ALGORITHM}
)


def _known_signer(
    name: str, path: Path, signature: Path | None, now: dt.datetime, ev: Notebook, verdict: Verdict
) -> knownkeys.KnownKey | None:
    """The publicly known key the bundle is signed with, proven by a verifying signature, or None."""
    if verdict in _SIGNED_BY_ANCHOR:
        hit = _first_known(ev)
        if hit is not None:
            return hit
    if verdict not in (Verdict.UNTRUSTED_SIGNER, Verdict.INVALID_SIGNATURE):
        return None  # tampered or unparsable: no signature to attribute
    # the signer is not among the given anchors: does it verify under a published key?
    ev2, verdict2, _ = _run(name, path, knownkeys.trust_store(), signature, now)
    return _first_known(ev2) if verdict2 in _SIGNED_BY_ANCHOR else None


def _first_known(ev: Notebook) -> knownkeys.KnownKey | None:
    for fp in (ev.key_fingerprint, *ev.chain_fingerprints):
        hit = knownkeys.find(fp)
        if hit is not None:
            return hit
    return None
