"""Records of the identify stage (its own; shared ones live in cra_fw.records)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cra_fw.records import Component, Dependency, Finding


@dataclass(frozen=True)
class Vector:
    """One test string of a signature, with where it came from."""

    text: str
    version: str = ""  # expected version; "" for a negative vector
    source: str = ""  # e.g. "zlib1g 1:1.2.13.dfsg-1 amd64 (bookworm)"
    path: str = ""  # file path the vector is tested against ("" = any matching path)
    static: bool = False  # the string comes from a statically linked ELF


@dataclass(frozen=True)
class Pattern:
    """A content pattern: a literal anchor that must occur, and a regex with a ``version`` group
    searched in a window around each anchor occurrence."""

    anchor: bytes
    regex: re.Pattern[bytes] | None
    before: int = 0  # bytes before the anchor included in the search window
    after: int = 200  # bytes after the anchor
    fixed_version: str = ""  # a marker pattern: the anchor alone means "at least this version"
    static_only: bool = False  # only in statically linked ELF files
    versionless: bool = False  # the anchor proves the component, but no release can be read from it
    # file-level conditions: every ``requires`` literal must occur in the same file, no ``unless``
    # literal may (libjpeg-turbo carries IJG libjpeg's version string; it is not IJG libjpeg)
    requires: tuple[bytes, ...] = ()
    unless: tuple[bytes, ...] = ()
    whole_file: bool = False  # the anchor only gates: the regex is searched in the whole file, once
    version_prefix: str = ""  # prepended to the captured release (iproute2's "ss" + "100224")


@dataclass(frozen=True)
class Signature:
    """Declarative description of one component (loaded from signatures/components/*.toml)."""

    name: str
    kind: str  # library, application, operating-system, firmware
    cpe: str  # "vendor:product" as NVD names it ("" when NVD has none)
    purl: str  # template with {version}
    supplier: str
    licenses: tuple[str, ...]
    files: tuple[str, ...]  # fnmatch globs on the file path; () = any scanned file
    patterns: tuple[Pattern, ...]
    filenames: tuple[re.Pattern[str], ...] = ()  # basename regexes with a version group
    # (captured value, release) pairs: when present, a filename capture is a library version
    # (libfreetype.so.6.18.3), not a release, and only a value listed here gives one
    filename_map: tuple[tuple[str, str], ...] = ()
    sonames: tuple[str, ...] = ()  # SONAME globs that belong to this component
    packages: tuple[str, ...] = ()  # package names (dpkg/opkg) of this component
    confidence: float = 0.9
    vectors: tuple[Vector, ...] = ()
    negatives: tuple[Vector, ...] = ()
    source_file: str = ""

    def release_for_filename(self, captured: str) -> str:
        """The release a file-name capture stands for; "" when ``filename_map`` does not list it."""
        if not self.filename_map:
            return captured
        return next((release for value, release in self.filename_map if value == captured), "")

    def purl_for(self, version: str) -> str:
        return make_purl(self.purl, version)

    def cpe_for(self, version: str) -> str:
        if not self.cpe:
            return ""
        vendor, product = self.cpe.split(":", 1)
        return f"cpe:2.3:{'o' if self.kind == 'operating-system' else 'a'}:{vendor}:{product}:{_cpe_escape(version) or '*'}:*:*:*:*:*:*:*"


@dataclass(frozen=True)
class Hit:
    """One signature match in one file."""

    name: str
    version: str
    method: str  # signature, soname, filename, banner, package-db, manifest
    confidence: float
    detail: str = ""  # the matched text, cut short
    offset: int = -1  # byte offset of the matched text in the file (-1: not from file content)


@dataclass(frozen=True)
class Detection:
    """A hit placed in the image: which layer and file."""

    hit: Hit
    layer_id: str
    path: str
    sha256: str = ""
    sha512: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdentifyResult:
    components: list[Component]
    dependencies: list[Dependency]
    findings: list[Finding]


def make_purl(template: str, version: str) -> str:
    """Fill a purl template (``pkg:generic/zlib@{version}``) with a version, encoded per the purl spec."""
    if not template:
        return ""
    from packageurl import PackageURL

    base = PackageURL.from_string(template.replace("{version}", "0"))
    return PackageURL(
        type=base.type,
        namespace=base.namespace,
        name=base.name,
        version=version or None,
        qualifiers=base.qualifiers,
        subpath=base.subpath,
    ).to_string()


def _cpe_escape(value: str) -> str:
    return re.sub(r"([^A-Za-z0-9._\-])", r"\\\1", value)
