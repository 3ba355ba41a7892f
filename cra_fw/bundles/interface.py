"""Records, verdicts and typed errors of bundle verification.

Verifiers raise a :class:`BundleError` subclass for every failure; the
top-level :func:`cra_fw.bundles.verify_bundle` turns it into a
:class:`BundleVerdict`.  While a verifier works it notes what it learned
(signer, algorithms, covered items) on a :class:`Notebook`, so a
failing verdict still carries every detail gathered before the failure.
"""

from __future__ import annotations

import datetime as dt
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cra_fw.errors import VerificationError
from cra_fw.parsers import ParseError
from cra_fw.records import Finding

if TYPE_CHECKING:
    from cra_fw.bundles.trust import TrustStore


class Verdict(enum.StrEnum):
    """The one verdict vocabulary of ``cra-fw verify``, for every format."""

    VALID = "valid"
    INVALID_SIGNATURE = "invalid_signature"
    DIGEST_MISMATCH = "digest_mismatch"
    UNTRUSTED_SIGNER = "untrusted_signer"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    WEAK_ALGORITHM = "weak_algorithm"
    REVOKED = "revoked"
    SIGNATURE_EXPIRED = "signature_expired"
    UNSIGNED = "unsigned"
    PARTIALLY_SIGNED = "partially_signed"
    MALFORMED = "malformed"
    UNSUPPORTED_FORMAT = "unsupported_format"  # no verifier knows the file: never read as "unsigned"
    ENCRYPTED = "encrypted"  # the signature is encrypted for its recipients: not checked without the key


@dataclass(frozen=True)
class BundleVerdict:
    """Outcome of verifying one bundle or signed file.

    ``covered`` lists what the signature protects (files, images, regions);
    ``uncovered`` what gets installed without being protected.  Timestamps
    are ISO 8601 UTC.  ``trusted`` tells whether trust anchors were given at
    all (without them nothing can be ``valid``).  ``anchor`` names the trust
    anchor the signature chains to (its file, subject and key fingerprint); for
    ``cra-fw scan`` without ``--trust`` it is the key shipped in the image that the
    bundle verified against (``kind:layer:path``), or ``shipped`` when none of
    them accepts it.  ``sha256`` is the hash of the bundle file that was verified.  ``known_key`` is set when the signature verifies under a key
    whose private half is public: then the bundle is as good as unsigned and
    ``ok`` is False even for a ``valid`` verdict.
    """

    path: str
    format: str
    verdict: Verdict
    reason: str = ""
    signer: str = ""
    key_fingerprint: str = ""
    algorithms: tuple[str, ...] = ()
    covered: tuple[str, ...] = ()
    uncovered: tuple[str, ...] = ()
    signed_at: str = ""
    cert_not_before: str = ""
    cert_not_after: str = ""
    verified_at: str = ""
    trusted: bool = True
    notes: tuple[str, ...] = ()
    anchor: str = ""  # the trust anchor that validated it (scan without --trust: kind:layer:path)
    sha256: str = ""  # of the bundle file as verified
    known_key: str = ""  # id of the publicly known key (signatures/keys) the signature verifies under
    known_key_text: str = ""  # that key's name and where its private half was published

    @property
    def ok(self) -> bool:
        """Valid, and not signed with a key anyone can sign with."""
        return self.verdict is Verdict.VALID and not self.known_key


@dataclass(frozen=True)
class EmbeddedBundles:
    """What the scan pipeline gets from :func:`cra_fw.bundles.scan_embedded`."""

    verdicts: tuple[BundleVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    keys: tuple[UpdateKey, ...] = ()


@dataclass(frozen=True)
class UpdateKey:
    """An update verification key or keyring shipped inside the image."""

    kind: str  # rauc-keyring, swupdate-key, uboot-dtb, mender-key
    layer_id: str
    path: str
    fingerprints: tuple[str, ...] = ()
    detail: str = ""


class Notebook:
    """Mutable notebook a verifier fills while it works (internal, never serialised)."""

    def __init__(self) -> None:
        self.signer = ""
        self.key_fingerprint = ""
        self.algorithms: list[str] = []
        self.covered: list[str] = []
        self.uncovered: list[str] = []
        self.signed_at = ""
        self.cert_not_before = ""
        self.cert_not_after = ""
        self.notes: list[str] = []
        self.chain_fingerprints: list[str] = []  # keys of the certificates the signer chains through

    def algorithm(self, name: str) -> None:
        if name and name not in self.algorithms:
            self.algorithms.append(name)

    def cover(self, item: str) -> None:
        if item not in self.covered:
            self.covered.append(item)

    def uncover(self, item: str) -> None:
        if item not in self.uncovered:
            self.uncovered.append(item)


# ---------------------------------------------------------------- the verifier contract


class Verifier(ABC):
    """One bundle format.  ``verify`` returns normally only when the bundle is valid."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        """True when the first/last bytes of the file look like this format."""

    @classmethod
    def claims_signature(cls, head: bytes) -> bool:
        """True when a signature file given with ``--signature`` is this format's (default: no)."""
        return False

    @abstractmethod
    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        """Check everything; raise a BundleError subclass on the first failure."""


# ---------------------------------------------------------------- errors


class BundleError(VerificationError):
    """A bundle failed verification; ``verdict`` says how."""

    verdict: Verdict = Verdict.MALFORMED


class MalformedBundle(BundleError):
    """The bundle or signature cannot be parsed (truncated, corrupt, unsupported)."""

    verdict = Verdict.MALFORMED


class InvalidSignature(BundleError):
    """A signature does not verify over the data it claims to sign."""

    verdict = Verdict.INVALID_SIGNATURE


class DigestMismatch(BundleError):
    """A payload does not match the digest recorded in signed metadata."""

    verdict = Verdict.DIGEST_MISMATCH


class UntrustedSigner(BundleError):
    """The signature is intact but does not chain to any given trust anchor."""

    verdict = Verdict.UNTRUSTED_SIGNER


class CertificateExpired(BundleError):
    """A certificate of the signer chain is past its notAfter."""

    verdict = Verdict.CERTIFICATE_EXPIRED


class CertificateNotYetValid(BundleError):
    """A certificate of the signer chain is before its notBefore."""

    verdict = Verdict.CERTIFICATE_NOT_YET_VALID


class WeakAlgorithm(BundleError):
    """The signature uses SHA-1, MD5 or an RSA key under 2048 bits."""

    verdict = Verdict.WEAK_ALGORITHM


class Revoked(BundleError):
    """The signing key (or its certificate) was revoked."""

    verdict = Verdict.REVOKED


class SignatureExpired(BundleError):
    """The signature carries an expiry time that has passed."""

    verdict = Verdict.SIGNATURE_EXPIRED


class Unsigned(BundleError):
    """The bundle carries no signature at all."""

    verdict = Verdict.UNSIGNED


class UnsupportedFormat(BundleError):
    """No verifier knows this file's format: it is not known to be signed or unsigned."""

    verdict = Verdict.UNSUPPORTED_FORMAT


class Encrypted(BundleError):
    """The bundle's signature is encrypted for its recipients and no decryption key was given."""

    verdict = Verdict.ENCRYPTED


class PartiallySigned(BundleError):
    """Something installable is not covered by a verified signature."""

    verdict = Verdict.PARTIALLY_SIGNED


def as_bundle_error(exc: BundleError | ParseError) -> BundleError:
    """A parser's :class:`ParseError` as the ``malformed`` verdict's error; a BundleError as it is."""
    return exc if isinstance(exc, BundleError) else MalformedBundle(str(exc))


class TrustStoreError(VerificationError):
    """A --trust file cannot be read or holds no usable certificate or key."""


class UnknownFormat(VerificationError):
    """No verifier recognises the file (or ``--format`` names no verifier)."""


ERROR_FOR_VERDICT: dict[Verdict, type[BundleError]] = {
    cls.verdict: cls
    for cls in (
        MalformedBundle,
        InvalidSignature,
        DigestMismatch,
        UntrustedSigner,
        CertificateExpired,
        CertificateNotYetValid,
        WeakAlgorithm,
        Revoked,
        SignatureExpired,
        Unsigned,
        PartiallySigned,
        UnsupportedFormat,
        Encrypted,
    )
}

__all__ = [
    "BundleError",
    "BundleVerdict",
    "CertificateExpired",
    "CertificateNotYetValid",
    "DigestMismatch",
    "EmbeddedBundles",
    "Encrypted",
    "Notebook",
    "Verifier",
    "InvalidSignature",
    "MalformedBundle",
    "PartiallySigned",
    "Revoked",
    "SignatureExpired",
    "TrustStoreError",
    "UnknownFormat",
    "UnsupportedFormat",
    "Unsigned",
    "UntrustedSigner",
    "UpdateKey",
    "Verdict",
    "WeakAlgorithm",
    "as_bundle_error",
]
