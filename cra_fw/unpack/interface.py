"""What an extraction backend does, and the records it returns.

A backend looks at ONE file and reports the regions (chunks) it recognised,
each extracted into its own folder under the output folder it was given.
Recursion, safety limits, sandboxing and layer records are the walker's job,
so every backend yields the same layer tree.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Carve:
    """One region a backend recognised in a file."""

    format: str  # canonical name (formats.toml)
    start: int
    end: int
    backend_name: str  # the backend's own name for it (handler, description)
    extracted: str = ""  # folder holding its files ("" when nothing was extracted)
    error: str = ""  # why extraction failed, if it did
    container: bool = True
    unsupported: bool = False  # recognised, but this backend has no extractor for it
    details: dict[str, str] = field(default_factory=dict)  # facts a handler read beyond the header
    # set by the walker's extraction child, not by backends:
    retried_with: str = ""  # the backend that extracted it after this one stopped partway
    hostile: tuple[tuple[str, str, str], ...] = ()  # (rule, member, target) of hostile archive members


@dataclass(frozen=True)
class BackendResult:
    carves: tuple[Carve, ...] = ()
    note: str = ""


class Backend(abc.ABC):
    """An extraction backend (unblob, binwalk...)."""

    name: str = ""

    @abc.abstractmethod
    def available(self) -> str | None:
        """None when usable, else a message saying what to install."""

    @abc.abstractmethod
    def carve(self, path: Path, outdir: Path) -> BackendResult:
        """Recognise regions of ``path`` and extract each into a folder under ``outdir``.

        Runs inside a sandboxed, time-limited child process; may raise anything.
        """
