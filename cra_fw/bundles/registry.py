"""The verifier interface and the registry: adding a format is one class."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from cra_fw.bundles.interface import Evidence
from cra_fw.bundles.trust import TrustStore

VERIFIERS: dict[str, type[Verifier]] = {}


class Verifier(ABC):
    """One bundle format.  ``verify`` returns normally only when the bundle is valid."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 50  # lower sniffs first

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
        self, path: Path, trust: TrustStore, ev: Evidence, *, signature: Path | None, now: dt.datetime
    ) -> None:
        """Check everything; raise a BundleError subclass on the first failure."""


def register(cls: type[Verifier]) -> type[Verifier]:
    VERIFIERS[cls.name] = cls
    return cls
