"""One root error; one subclass per stage.  Messages say what to do next."""

from __future__ import annotations


class CraFwError(Exception):
    """Root of every error cra-fw raises on purpose."""


class InputError(CraFwError):
    """The input file cannot be read or is not usable at all."""


class UnpackError(CraFwError):
    """An extraction backend failed on one region (recorded, the scan goes on)."""


class OutputError(CraFwError):
    """The output folder cannot be used, or an output could not be written."""


class LimitExceeded(UnpackError):
    """A safety limit (bytes, ratio, depth, file count, time) stopped a branch."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class BackendUnavailable(UnpackError):
    """An extraction backend or one of its external tools is not installed."""


class SignatureDataError(CraFwError):
    """A data file under signatures/ is malformed."""


class VerificationError(CraFwError):
    """Base for bundle verification failures (see cra_fw.bundles)."""


class FeedError(CraFwError):
    """A vulnerability feed could not be imported."""


class LedgerError(CraFwError):
    """The SQLite ledger refused an operation."""


class PolicyError(CraFwError):
    """A policy or suppression file is malformed."""
