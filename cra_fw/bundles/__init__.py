"""Signed update bundles: one verdict vocabulary for FIT, RAUC, SWUpdate, Mender and detached signatures.

Entry points: :func:`verify_bundle` (one file against a :class:`TrustStore`)
and :func:`scan_embedded` (the scan pipeline's stage).
"""

from __future__ import annotations

from cra_fw.bundles.api import verify_bundle
from cra_fw.bundles.detect import detect_format
from cra_fw.bundles.embedded import scan_embedded
from cra_fw.bundles.interface import (
    BundleError,
    BundleVerdict,
    EmbeddedBundles,
    TrustStoreError,
    UnknownFormat,
    UpdateKey,
    Verdict,
    Verifier,
)
from cra_fw.bundles.registry import VERIFIERS
from cra_fw.bundles.trust import TrustedKey, TrustStore

__all__ = [
    "VERIFIERS",
    "BundleError",
    "BundleVerdict",
    "EmbeddedBundles",
    "TrustStore",
    "TrustStoreError",
    "TrustedKey",
    "UnknownFormat",
    "UpdateKey",
    "Verdict",
    "Verifier",
    "detect_format",
    "scan_embedded",
    "verify_bundle",
]
