"""Load and validate the component signatures in ``signatures/components/*.toml``.

Each file holds one component: identity (name, CPE vendor:product, purl template,
supplier, licences), where to look (file globs, SONAME globs, package names),
content patterns (a literal anchor plus a regex with a named ``version`` group),
file-name regexes (with an optional ``filename_map`` from library version to release) and
test vectors.  Everything is checked once at load time; a malformed file raises
:class:`SignatureDataError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cra_fw.errors import SignatureDataError
from cra_fw.identify.records import Pattern, Signature, Vector
from cra_fw.paths import signatures_dir

KINDS = {"library", "application", "operating-system", "firmware", "framework"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9.+_\-]*$")
_CPE_VP = re.compile(r"^[a-z0-9_\-.!~]+:[a-z0-9_\-.+!~]+$")
_KNOWN_KEYS = {
    "name",
    "kind",
    "cpe",
    "purl",
    "supplier",
    "licenses",
    "files",
    "sonames",
    "packages",
    "confidence",
    "pattern",
    "filename",
    "filename_map",
    "vector",
    "negative",
    "note",
}
_RELEASE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_~\-]*")


@dataclass(frozen=True)
class SignatureSet:
    """All signatures, plus a digest of their source text (part of the cache key)."""

    signatures: tuple[Signature, ...]
    digest: str

    def by_name(self) -> dict[str, Signature]:
        return {s.name: s for s in self.signatures}

    def by_package(self) -> dict[str, Signature]:
        out: dict[str, Signature] = {}
        for sig in self.signatures:
            for pkg in sig.packages:
                out[pkg] = sig
        return out


def components_dir() -> Path:
    return signatures_dir() / "components"


@lru_cache(maxsize=8)
def _load_cached(folder: str, stamp: tuple) -> SignatureSet:
    return load_signatures(Path(folder))


def _stamp(folder: Path) -> tuple:
    try:
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*.toml")))
    except OSError:
        return ()


def load_signatures_cached(folder: Path) -> SignatureSet:
    """Like load_signatures, parsed once per process while the files are unchanged."""
    return _load_cached(str(folder), _stamp(folder))


def default_signatures() -> SignatureSet:
    """The shipped signatures, loaded once per process."""
    return load_signatures_cached(components_dir())


def load_signatures(folder: Path) -> SignatureSet:
    """Load every ``*.toml`` under ``folder``; raise SignatureDataError on the first bad file."""
    if not folder.is_dir():
        raise SignatureDataError(
            f"signature folder {folder} not found: set CRA_FW_SIGNATURES to the project's signatures/ folder"
        )
    sigs: list[Signature] = []
    h = hashlib.sha256()
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        raw = path.read_bytes()
        h.update(path.name.encode() + b"\0" + raw)
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SignatureDataError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
        sig = parse_signature(doc, str(path))
        if sig.name in seen:
            raise SignatureDataError(f"{path}: component {sig.name!r} is also defined in {seen[sig.name]}")
        seen[sig.name] = str(path)
        sigs.append(sig)
    if not sigs:
        raise SignatureDataError(f"no component signatures in {folder}")
    return SignatureSet(tuple(sigs), h.hexdigest())


def _req_str(doc: dict, key: str, where: str, allow_empty: bool = False) -> str:
    value = doc.get(key, "" if allow_empty else None)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SignatureDataError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _str_list(doc: dict, key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SignatureDataError(f"{where}: field {key!r} must be a list of non-empty strings")
    return tuple(value)


def _bytes(text: str) -> bytes:
    # Patterns are written as text; binary bytes use \xNN escapes inside the regex itself.
    return text.encode("latin-1")


def _parse_pattern(p: dict, pw: str, doc: dict) -> Pattern:
    """One [[pattern]] table of a signature (``pw`` names it in errors), validated."""
    unknown_p = set(p) - {
        "anchor",
        "regex",
        "before",
        "after",
        "version",
        "static_only",
        "versionless",
        "requires",
        "unless",
        "scope",
        "version_prefix",
    }
    if unknown_p:
        raise SignatureDataError(f"{pw}: unknown field(s) {sorted(unknown_p)}")
    anchor = _req_str(p, "anchor", pw, allow_empty=True)
    requires = tuple(_bytes(t) for t in _str_list(p, "requires", pw))
    unless = tuple(_bytes(t) for t in _str_list(p, "unless", pw))
    if any(len(t) < 4 for t in requires + unless):
        raise SignatureDataError(f"{pw}: requires/unless literals need 4 characters at least")
    scope = p.get("scope", "window")
    if scope not in ("window", "file"):
        raise SignatureDataError(f"{pw}: scope must be 'window' (around the anchor) or 'file'")
    prefix = p.get("version_prefix", "")
    if not isinstance(prefix, str) or not _NAME.match(prefix or "a"):
        raise SignatureDataError(f"{pw}: version_prefix must be a short lower-case string")
    if p.get("versionless", False):
        # identity without a release (e.g. only a symbol version set): listed, never given a version
        if p["versionless"] is not True or len(anchor) < 4 or {"regex", "version"} & set(p):
            raise SignatureDataError(
                f"{pw}: a versionless pattern has an anchor of 4+ characters, "
                "'versionless = true' and no regex or version"
            )
        if not doc.get("files"):
            raise SignatureDataError(f"{pw}: a versionless pattern must be restricted with 'files' globs")
        return Pattern(
            _bytes(anchor),
            None,
            versionless=True,
            static_only=bool(p.get("static_only", False)),
            requires=requires,
            unless=unless,
        )
    fixed = p.get("version", "")
    if fixed:
        if not isinstance(fixed, str) or not anchor or "regex" in p:
            raise SignatureDataError(f"{pw}: a marker pattern has an anchor and a version string, no regex")
        return Pattern(
            _bytes(anchor),
            None,
            fixed_version=fixed,
            static_only=bool(p.get("static_only", False)),
            requires=requires,
            unless=unless,
        )
    regex_text = _req_str(p, "regex", pw)
    if not anchor and not doc.get("files"):
        raise SignatureDataError(
            f"{pw}: a pattern without anchor is searched in whole files, so the "
            "signature must restrict them with 'files' globs"
        )
    try:
        regex = re.compile(_bytes(regex_text), re.DOTALL)
    except (re.error, UnicodeEncodeError) as exc:
        raise SignatureDataError(f"{pw}: regex does not compile ({exc})") from exc
    if "version" not in regex.groupindex:
        raise SignatureDataError(f"{pw}: regex needs a named group (?P<version>...)")
    if anchor and len(anchor) < 4:
        raise SignatureDataError(f"{pw}: anchor {anchor!r} is too short (4 characters at least)")
    before, after = p.get("before", 0), p.get("after", 200)
    if not (
        isinstance(before, int) and isinstance(after, int) and 0 <= before <= 4096 and 0 <= after <= 4096
    ):
        raise SignatureDataError(f"{pw}: before/after must be integers in 0..4096")
    if scope == "file" and len(anchor) < 8:
        raise SignatureDataError(f"{pw}: a whole-file pattern needs an anchor of 8+ characters that gates it")
    return Pattern(
        _bytes(anchor),
        regex,
        before,
        after,
        static_only=bool(p.get("static_only", False)),
        whole_file=scope == "file",
        version_prefix=prefix,
        requires=requires,
        unless=unless,
    )


def parse_signature(doc: dict, where: str) -> Signature:
    """Build one Signature from a parsed TOML document, validating every field."""
    unknown = set(doc) - _KNOWN_KEYS
    if unknown:
        raise SignatureDataError(
            f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}"
        )
    name = _req_str(doc, "name", where)
    if not _NAME.match(name):
        raise SignatureDataError(f"{where}: name {name!r} must be lower-case letters, digits, . + _ -")
    kind = doc.get("kind", "library")
    if kind not in KINDS:
        raise SignatureDataError(f"{where}: kind {kind!r} must be one of {sorted(KINDS)}")
    cpe = _req_str(doc, "cpe", where, allow_empty=True)
    if cpe and not _CPE_VP.match(cpe):
        raise SignatureDataError(
            f"{where}: cpe {cpe!r} must be 'vendor:product' in NVD's lower-case spelling"
        )
    purl = _req_str(doc, "purl", where)
    if not purl.startswith("pkg:") or "{version}" not in purl:
        raise SignatureDataError(f"{where}: purl {purl!r} must start with 'pkg:' and contain '{{version}}'")
    confidence = doc.get("confidence", 0.9)
    if not isinstance(confidence, (int, float)) or not 0 < confidence <= 1:
        raise SignatureDataError(f"{where}: confidence must be a number in (0, 1]")
    patterns = []
    raw_patterns = doc.get("pattern", [])
    if not isinstance(raw_patterns, list) or not (raw_patterns or doc.get("filename")):
        raise SignatureDataError(
            f"{where}: at least one [[pattern]] (anchor, regex) or filename regex is required"
        )
    for i, p in enumerate(raw_patterns):
        patterns.append(_parse_pattern(p, f"{where}: pattern {i + 1}", doc))

    filenames = []
    for i, text in enumerate(_str_list(doc, "filename", where)):
        try:
            rx = re.compile(text)
        except re.error as exc:
            raise SignatureDataError(f"{where}: filename {i + 1} does not compile ({exc})") from exc
        if "version" not in rx.groupindex:
            raise SignatureDataError(f"{where}: filename {i + 1} needs a named group (?P<version>...)")
        filenames.append(rx)
    filename_map = _filename_map(doc, where, bool(filenames))

    # a positive vector of a versionless pattern, or of a file name missing from filename_map,
    # says version = "" explicitly
    has_versionless = any(p.versionless for p in patterns) or bool(filename_map)

    def vectors(key: str, positive: bool) -> tuple[Vector, ...]:
        out = []
        for i, v in enumerate(doc.get(key, [])):
            vw = f"{where}: {key} {i + 1}"
            text = _req_str(v, "text", vw, allow_empty=bool(v.get("path")))
            version = _req_str(v, "version", vw, allow_empty=has_versionless) if positive else ""
            source = _req_str(v, "source", vw)
            out.append(Vector(text, version, source, v.get("path", ""), bool(v.get("static", False))))
        return tuple(out)

    return Signature(
        name=name,
        kind=kind,
        cpe=cpe,
        purl=purl,
        supplier=_req_str(doc, "supplier", where, allow_empty=True),
        licenses=_str_list(doc, "licenses", where),
        files=_str_list(doc, "files", where),
        patterns=tuple(patterns),
        filenames=tuple(filenames),
        filename_map=filename_map,
        sonames=_str_list(doc, "sonames", where),
        packages=_str_list(doc, "packages", where),
        confidence=float(confidence),
        vectors=vectors("vector", True),
        negatives=vectors("negative", False),
        source_file=where,
    )


def _filename_map(doc: dict, where: str, has_filenames: bool) -> tuple[tuple[str, str], ...]:
    """``[filename_map]``: captured library version -> release, e.g. ``"6.18.3" = "2.12.1"``."""
    if "filename_map" not in doc:
        return ()
    table = doc["filename_map"]
    if not isinstance(table, dict) or not table:
        raise SignatureDataError(
            f'{where}: filename_map must be a non-empty table of "captured value" = "release"'
        )
    if not has_filenames:
        raise SignatureDataError(
            f"{where}: filename_map maps what a 'filename' regex captures; add the regex"
        )
    out = []
    for key, release in table.items():
        if not isinstance(release, str) or not _RELEASE.fullmatch(release) or not key.strip():
            raise SignatureDataError(
                f"{where}: filename_map entry {key!r} = {release!r}: the release must be a version string "
                '(quote keys that contain dots: "6.18.3" = "2.12.1")'
            )
        out.append((key, release))
    return tuple(out)


def names(sigs: Iterable[Signature]) -> list[str]:
    return sorted(s.name for s in sigs)
