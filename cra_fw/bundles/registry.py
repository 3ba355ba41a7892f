"""Every bundle verifier, one line each: adding a format is one class in its module and one line here.

Detection tries the verifiers in this order (the first whose ``sniff`` matches
wins); ``detached`` is the fallback for a file plus its signature, never sniffed.
"""

from __future__ import annotations

from cra_fw.bundles.detached import DetachedVerifier
from cra_fw.bundles.espsecure import EspSecureBootVerifier
from cra_fw.bundles.fit import FitVerifier
from cra_fw.bundles.interface import Verifier
from cra_fw.bundles.mcuboot import McubootVerifier
from cra_fw.bundles.mender import MenderVerifier
from cra_fw.bundles.openpgp import OpenPgpVerifier
from cra_fw.bundles.rauc import RaucVerifier
from cra_fw.bundles.sigstore import SigstoreVerifier
from cra_fw.bundles.swupdate import SwupdateVerifier

VERIFIERS: tuple[type[Verifier], ...] = (
    FitVerifier,
    RaucVerifier,
    SwupdateVerifier,
    McubootVerifier,
    MenderVerifier,
    EspSecureBootVerifier,
    OpenPgpVerifier,  # after the container formats: a FIT with an .asc beside it is verified as a FIT
    SigstoreVerifier,
    DetachedVerifier,
)
FALLBACK = DetachedVerifier.name


def verifier(name: str) -> type[Verifier] | None:
    """The verifier called ``name``, if there is one."""
    return next((cls for cls in VERIFIERS if cls.name == name), None)


def names() -> list[str]:
    """Names of every verifier, sorted (for messages and ``--format`` choices)."""
    return sorted(cls.name for cls in VERIFIERS)
