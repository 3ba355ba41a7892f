"""Records the batch client, its tasks and its writers pass to each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ImageStatus(enum.StrEnum):
    ANALYSED = "analysed"  # scanned; outputs in OUTDIR/<sha256>/
    NOT_ANALYSED = "not-analysed"  # read, but nothing in it could be analysed (scan exit 3)
    FAILED = "failed"  # no outputs: timeout, crash, memory, worker lost twice, unreadable
    INTERRUPTED = "interrupted"  # not scanned: the batch was stopped first


@dataclass(frozen=True)
class BatchItem:
    """One input: an image file, with what a manifest said about it."""

    path: str
    product: str = ""
    version: str = ""
    manufacturer: str = ""
    released: str = ""  # ISO date or time
    sha256: str = ""  # filled by hashing (or given by the manifest, then checked by the scan)
    size: int = 0

    @property
    def release_label(self) -> str:
        return f"{self.product}@{self.version}" if self.product and self.version else ""


@dataclass(frozen=True)
class ScanTask:
    """What a worker needs to scan one distinct image."""

    path: str
    sha256: str
    outdir: str  # the batch OUTDIR (shared by client and workers)
    scan_args: tuple[str, ...]  # options passed to `cra-fw scan` unchanged
    timeout: float
    memory: int  # bytes of resident memory for the scan's process tree; 0: no limit
    fail_on: str | None = None
    fail_on_vuln: tuple[str, ...] = ()
    feeds_snapshot: str = ""  # on a cluster: the feed database snapshot each node copies locally


@dataclass(frozen=True)
class ImageResult:
    """What is known about one distinct image after the batch (or an earlier one)."""

    sha256: str
    name: str
    size: int
    status: ImageStatus
    reason: str = ""  # why it failed, or was not analysed
    exit_status: int | None = None  # `cra-fw scan`'s, when it ran to the end
    components: int | None = None  # None: not assessed
    vulnerabilities: int | None = None  # open matches; None: not assessed (no feed database...)
    kev: int | None = None
    findings: dict[str, int] | None = None  # unsuppressed, by severity
    gate: str = "none"  # pass | fail | not-analysed | none (no gate given)
    gate_reasons: int = 0
    vulns_not_assessed_reason: str = ""
    seconds: float = 0.0
    peak_rss: int = 0  # bytes, largest process of the scan (0: unknown)
    cpu_seconds: float = 0.0  # user + system time of the scan's process tree
    worker: str = ""
    resumed: bool = False  # finished by an earlier run
    gate_options: tuple[str, ...] = ()  # the gate these verdicts were evaluated with
    paths: tuple[str, ...] = field(default=())  # input paths with these bytes


@dataclass(frozen=True)
class VerifyTask:
    path: str
    trust: tuple[str, ...]
    timeout: float
    memory: int


@dataclass(frozen=True)
class VerifyResult:
    path: str
    verdict: str  # valid, invalid, unsigned, unsupported_format, ... or "error"
    format: str = ""
    reason: str = ""
    signer: str = ""
    known_key: bool = False
    seconds: float = 0.0
