"""Typed records passed between stages.

Data flows one way: image -> layers -> files -> components/findings -> reports.
Every stage takes and returns these frozen dataclasses; nothing passes dicts
of dicts.  Fields named with a leading underscore, or declared with
``metadata={"internal": True}``, stay on this machine and are never
serialised into report.json (e.g. absolute paths in the workspace).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # each stage owns the records it makes; records.py only names them
    from cra_fw.bundles.interface import BundleVerdict
    from cra_fw.checks.interface import ElfHardening, HardeningSummary, Service
    from cra_fw.vulns.records import VulnMatch

SCHEMA_VERSION = "1.0"

INTERNAL = {"internal": True}


class Severity(enum.StrEnum):
    """Finding severity, ordered from most to least severe."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        return cls(value.strip().lower())


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class FileKind(enum.StrEnum):
    ELF = "elf"
    SCRIPT = "script"
    CONFIG = "config"
    CERTIFICATE = "certificate"
    KEY = "key"
    KERNEL = "kernel"
    ARCHIVE = "archive"
    DATA = "data"
    SYMLINK = "symlink"
    DEVICE = "device"
    DIRECTORY = "directory"


class LayerStatus(enum.StrEnum):
    EXTRACTED = "extracted"  # unpacked; its files are in the inventory
    IDENTIFIED = "identified"  # recognised, nothing to unpack (e.g. kernel blob)
    UNKNOWN = "unknown"  # no format recognised: an unidentified region
    FAILED = "failed"  # recognised, but extraction failed
    PARTIAL = "partial"  # extraction stopped partway: what it wrote is analysed, the rest is not
    UNSUPPORTED = "unsupported"  # recognised, the backend cannot extract it
    LIMITED = "limited"  # stopped by a safety limit


def layer_chain(by_id: Mapping[str, Layer], layer_id: str) -> tuple[str, ...]:
    """'id:format' items from the image down to ``layer_id`` (``by_id``: every layer by id)."""
    chain: list[str] = []
    cur = by_id.get(layer_id)
    while cur is not None:
        chain.append(f"{cur.id}:{cur.format}")
        cur = by_id.get(cur.parent_id) if cur.parent_id else None
    return tuple(reversed(chain))


class AssessmentStatus(enum.StrEnum):
    COMPLETE = "complete"  # assessed over everything the scan could read
    PARTIAL = "partial"  # assessed, but over part of the image or with incomplete data
    NOT_ASSESSED = "not_assessed"  # did not run or had nothing to work with: never shown as zero


@dataclass(frozen=True)
class Assessment:
    """Whether one part of the analysis covered the image, and why not when it did not.

    Every count that depends on a topic (unpack coverage, components, vulnerabilities,
    KEV, checks, bundles) is shown as "not assessed" with ``reason`` unless its
    assessment is complete.  ``share`` is the fraction of the image's bytes the topic
    did not cover, where that is measurable (unpack).
    """

    topic: str  # unpack, components, vulnerabilities, kev, checks, bundles
    status: AssessmentStatus
    reason: str = ""
    share: float = 0.0

    @property
    def complete(self) -> bool:
        return self.status == AssessmentStatus.COMPLETE


@dataclass(frozen=True)
class OutputFile:
    """A file this scan wrote beside report.json (the evidence pack holds exactly these)."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ImageInfo:
    """The firmware image that was scanned."""

    name: str
    size: int
    sha256: str
    sha512: str
    md5: str
    path: str = field(default="", metadata=INTERNAL)


@dataclass(frozen=True)
class Layer:
    """One node of the unpacking tree.

    The root layer is the image itself.  A child layer is a region of a
    parent's file (``parent_path`` inside the parent layer, at ``offset``),
    recognised as ``format``; when it was unpacked its files live under
    ``root`` in the workspace.
    """

    id: str
    parent_id: str | None
    format: str
    offset: int
    size: int
    sha256: str
    status: LayerStatus
    depth: int
    parent_path: str = ""
    extractor: str = ""
    details: dict[str, str] = field(default_factory=dict)
    entropy: float | None = None
    file_count: int = 0
    note: str = ""
    root: str = field(default="", metadata=INTERNAL)


@dataclass(frozen=True)
class ElfInfo:
    """Facts read once from an ELF header; enough for identification and hardening."""

    arch: str  # arm, aarch64, mips, x86, x86_64, powerpc, powerpc64, riscv, ...
    bits: int
    endian: str  # "little" | "big"
    elf_type: str  # EXEC, DYN, REL, CORE
    static: bool
    interpreter: str = ""
    soname: str = ""
    needed: tuple[str, ...] = ()
    rpath: str = ""
    runpath: str = ""
    # hardening facts (verdicts are computed by checks.hardening)
    gnu_stack: bool = False  # PT_GNU_STACK present
    exec_stack: bool = False  # PT_GNU_STACK has PF_X
    gnu_relro: bool = False
    bind_now: bool = False
    pie_flag: bool = False  # DF_1_PIE set
    stack_chk: bool = False  # __stack_chk_fail / __stack_chk_guard referenced or defined
    fortify_funcs: tuple[str, ...] = ()  # *_chk functions referenced
    has_symtab: bool = False
    stripped: bool = True
    flags: str = ""  # e.g. MIPS ABI flags, ARM EABI version
    capped: tuple[str, ...] = ()  # "field:original count" of lists cut to the per-file cap


@dataclass(frozen=True)
class SpecialFile:
    """A device, FIFO or socket that unpacking found (and removed) in a layer; inventory lists it."""

    path: str  # '/'-rooted path inside the layer
    mode: int
    rdev: int = 0


@dataclass(frozen=True)
class FileEntry:
    """One file of an unpacked layer."""

    layer_id: str
    path: str  # POSIX path relative to the layer root, with a leading '/'
    kind: FileKind
    size: int
    mode: int
    sha256: str = ""
    link_target: str | None = None
    elf: ElfInfo | None = None
    mime_hint: str = ""
    abs_path: str = field(default="", metadata=INTERNAL)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Location:
    """Where a finding was made: the layer chain from the image, a path, a line or offset."""

    layer_chain: tuple[str, ...] = ()  # "id:format" items, image first
    path: str = ""
    line: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Finding:
    """A problem found in the image, or in the analysis of it."""

    __json_extra__ = ("id",)

    rule_id: str
    category: str  # unpack, credentials, secrets, services, hardening, vulnerability, update, sbom
    severity: Severity
    title: str
    cra_reference: tuple[str, ...]
    location: Location = field(default_factory=Location)
    evidence: str = ""
    remediation: str = ""
    fingerprint: str = ""
    suppressed: bool = False
    suppression_reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable id: rule plus a hash of where it was found."""
        import hashlib

        key = "|".join(
            (
                self.rule_id,
                "/".join(self.location.layer_chain),
                self.location.path,
                str(self.location.line or ""),
                str(self.location.offset or ""),
                self.fingerprint,
            )
        )
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.rule_id}:{digest[:12]}"


@dataclass(frozen=True)
class Evidence:
    """How one component was identified."""

    method: str  # package-db, signature, symbol, filename, banner, manifest
    confidence: float
    path: str = ""
    layer_id: str = ""
    detail: str = ""
    offset: int = -1  # byte offset of ``detail`` in the file at ``path`` (-1: not a file offset)


@dataclass(frozen=True)
class Component:
    """A software component found in the image."""

    name: str
    version: str
    purl: str = ""
    cpe: str = ""
    supplier: str = ""
    licenses: tuple[str, ...] = ()
    kind: str = "library"  # library, application, operating-system, firmware, framework
    evidence: tuple[Evidence, ...] = ()
    files: tuple[str, ...] = ()  # "layer_id:/path" occurrences
    hashes: dict[str, str] = field(default_factory=dict)  # alg -> hex, of the main file
    # how well the version is known: exact, lower-bound or range (then ``version_range`` in purl
    # "vers" notation, e.g. "vers:generic/>=2.36"), unknown when there is no version
    version_certainty: str = "exact"
    version_range: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Dependency:
    """A component (by bom key) that loads other components."""

    ref: str
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class ToolInfo:
    name: str
    version: str


@dataclass
class ScanReport:
    """Everything one scan learned. Stages append; writers serialise."""

    image: ImageInfo
    tool: ToolInfo
    started: str
    finished: str = ""
    extractor: str = ""
    layers: list[Layer] = field(default_factory=list)
    files: list[FileEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    # the analysis stages' own records (vulns, checks, bundles)
    vulnerabilities: list[VulnMatch] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    bundles: list[BundleVerdict] = field(default_factory=list)
    hardening: list[ElfHardening] = field(default_factory=list)  # one per ELF file
    hardening_summary: list[HardeningSummary] = field(default_factory=list)  # one per architecture
    stats: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    outputs: list[OutputFile] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION
    workspace: Path | None = field(default=None, metadata=INTERNAL)

    def assessment(self, topic: str) -> Assessment:
        """The topic's assessment; a topic nothing recorded was not assessed."""
        for item in reversed(self.assessments):
            if item.topic == topic:
                return item
        return Assessment(topic, AssessmentStatus.NOT_ASSESSED, "the stage did not run")

    def layer(self, layer_id: str) -> Layer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(layer_id)

    def layer_chain(self, layer_id: str) -> tuple[str, ...]:
        """'id:format' from the image down to ``layer_id``, e.g. ('L0:raw', 'L1:squashfs')."""
        return layer_chain({layer.id: layer for layer in self.layers}, layer_id)

    def layer_formats(self, layer_id: str) -> tuple[str, ...]:
        """Formats from the image down to ``layer_id``, e.g. ('raw', 'uimage', 'squashfs')."""
        return tuple(item.split(":", 1)[1] for item in self.layer_chain(layer_id))
