"""CPE 2.3 formatted strings: parsing, and matching against NVD match criteria.

A CPE 2.3 formatted string has 13 colon-separated parts
(``cpe:2.3:part:vendor:product:version:update:edition:language:sw_edition:
target_sw:target_hw:other``); ``\\:`` escapes a colon.  Missing trailing parts
are read as ``*`` so short forms such as ``cpe:2.3:a:gnu:glibc:2.36`` work.

Vendors put letter releases in two places: ``openssl:1.0.2k`` or
``openssl:1.0.2:k``; kernels use ``linux_kernel:6.8:rc1``.  Matching therefore
compares the *effective* version, version plus update, when the update is set.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from cra_fw.versions import generic_key

ANY = "*"
NA = "-"
_FIELDS = (
    "part",
    "vendor",
    "product",
    "version",
    "update",
    "edition",
    "language",
    "sw_edition",
    "target_sw",
    "target_hw",
    "other",
)


class CpeError(ValueError):
    """Not a CPE 2.3 formatted string."""


@dataclass(frozen=True)
class Cpe:
    """One parsed CPE 2.3 name (values unescaped, lower-case)."""

    part: str
    vendor: str
    product: str
    version: str = ANY
    update: str = ANY
    edition: str = ANY
    language: str = ANY
    sw_edition: str = ANY
    target_sw: str = ANY
    target_hw: str = ANY
    other: str = ANY

    @property
    def effective_version(self) -> str:
        """Version with the update appended when it carries one (``1.0.2`` + ``k``)."""
        if self.update in (ANY, NA, ""):
            return self.version
        return f"{self.version}-{self.update}"

    def with_version(self, version: str, update: str = ANY) -> Cpe:
        return Cpe(
            self.part,
            self.vendor,
            self.product,
            version,
            update,
            self.edition,
            self.language,
            self.sw_edition,
            self.target_sw,
            self.target_hw,
            self.other,
        )

    def with_vendor_product(self, vendor: str, product: str) -> Cpe:
        return Cpe(
            self.part,
            vendor,
            product,
            self.version,
            self.update,
            self.edition,
            self.language,
            self.sw_edition,
            self.target_sw,
            self.target_hw,
            self.other,
        )

    def to_string(self) -> str:
        return "cpe:2.3:" + ":".join(_escape(getattr(self, f)) for f in _FIELDS)


def _escape(value: str) -> str:
    if value in (ANY, NA):
        return value
    return re.sub(r"([:\\!\"#$%&'()+,/;<=>@\[\]^`{|}~?])", r"\\\1", value)


def _split(text: str) -> list[str]:
    if "\\" not in text:
        return text.split(":")  # the common case: nothing escaped
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if ch == ":":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


@functools.lru_cache(maxsize=1 << 15)
def parse(text: str) -> Cpe:
    """Parse a CPE 2.3 formatted string (short forms allowed); raise CpeError."""
    raw = (text or "").strip()
    if not raw.lower().startswith("cpe:2.3:"):
        raise CpeError(f"not a CPE 2.3 string: {raw[:80]!r}")
    parts = _split(raw[8:])
    if len(parts) < 3 or len(parts) > 11:
        raise CpeError(f"a CPE 2.3 string needs part:vendor:product at least: {raw[:80]!r}")
    values = [p.strip().lower() or ANY for p in parts] + [ANY] * (11 - len(parts))
    if values[0] not in ("a", "o", "h", ANY):
        raise CpeError(f"CPE part must be a, o or h: {raw[:80]!r}")
    return Cpe(*values)


def try_parse(text: str) -> Cpe | None:
    try:
        return parse(text)
    except CpeError:
        return None


def _field_matches(criterion: str, value: str) -> bool:
    # a wildcard on either side matches; otherwise compare literally
    if criterion == ANY or value == ANY:
        return True
    return criterion == value


@dataclass(frozen=True)
class CpeCriterion:
    """One NVD ``cpeMatch`` entry: a CPE pattern plus an optional version range."""

    criteria: Cpe
    start_including: str = ""
    start_excluding: str = ""
    end_including: str = ""
    end_excluding: str = ""

    @property
    def has_range(self) -> bool:
        return bool(self.start_including or self.start_excluding or self.end_including or self.end_excluding)

    def describe(self) -> str:
        """The range in words, e.g. ``>=1.0.2 <1.0.2zd`` or ``=2.36``."""
        return describe_range(
            self.start_including,
            self.start_excluding,
            self.end_including,
            self.end_excluding,
            self.criteria.effective_version,
        )


def describe_range(start_incl: str, start_excl: str, end_incl: str, end_excl: str, version: str) -> str:
    """``>=1.0.2 <1.0.2zd``, ``=2.36`` or ``all versions``."""
    bits = []
    if start_incl:
        bits.append(f">={start_incl}")
    if start_excl:
        bits.append(f">{start_excl}")
    if end_incl:
        bits.append(f"<={end_incl}")
    if end_excl:
        bits.append(f"<{end_excl}")
    if not bits:
        bits.append("all versions" if version in (ANY, "") else f"={version}")
    return " ".join(bits)


_EXTRA_FIELDS = ("edition", "language", "sw_edition", "target_sw", "target_hw", "other")


@dataclass(frozen=True)
class CompiledCriterion:
    """A criterion with its version bounds turned into sort keys once (matching runs it many times)."""

    criterion: CpeCriterion
    simple: bool  # every field after update is a wildcard
    exact: tuple | None  # key the component's version must equal, when the criterion names one
    exact_mode: str  # "" (range/all), "any-update", "no-update", "with-update", "never"
    start_incl: tuple | None
    start_excl: tuple | None
    end_incl: tuple | None
    end_excl: tuple | None


def _key(version: str) -> tuple | None:
    return generic_key(version) if version else None


def compile_criterion(criterion: CpeCriterion) -> CompiledCriterion:
    crit = criterion.criteria
    mode, exact = "", None
    if crit.version not in (ANY, ""):
        if crit.version == NA:
            mode = "never"
        elif crit.update in (ANY, ""):
            # strict on purpose: "1.0.2:*" names release 1.0.2, not every 1.0.2 letter release
            mode, exact = "any-update", generic_key(crit.version)
        elif crit.update == NA:
            mode, exact = "no-update", generic_key(crit.version)
        else:
            mode, exact = "with-update", generic_key(crit.effective_version)
    return CompiledCriterion(
        criterion,
        all(getattr(crit, f) == ANY for f in _EXTRA_FIELDS),
        exact,
        mode,
        _key(criterion.start_including),
        _key(criterion.start_excluding),
        _key(criterion.end_including),
        _key(criterion.end_excluding),
    )


def compiled_matches(cc: CompiledCriterion, target: Cpe, target_key: tuple | None = None) -> bool:
    """``matches`` for a compiled criterion; ``target_key`` is generic_key(target.effective_version)."""
    crit = cc.criterion.criteria
    if crit.vendor != target.vendor or crit.product != target.product:
        return False
    if crit.part != target.part and ANY not in (crit.part, target.part):
        return False
    if not cc.simple:
        for name in _EXTRA_FIELDS:
            if not _field_matches(getattr(crit, name), getattr(target, name)):
                return False
    if target.version in (ANY, NA, ""):
        return False  # an unknown version never matches a versioned advisory
    key = target_key if target_key is not None else generic_key(target.effective_version)
    if cc.exact_mode:
        if cc.exact_mode == "never":
            return False
        if cc.exact_mode == "no-update":
            return generic_key(target.version) == cc.exact and target.update in (ANY, NA, "")
        return key == cc.exact
    if cc.start_incl is not None and key < cc.start_incl:
        return False
    if cc.start_excl is not None and key <= cc.start_excl:
        return False
    if cc.end_incl is not None and key > cc.end_incl:
        return False
    if cc.end_excl is not None and key >= cc.end_excl:
        return False
    return True


def matches(criterion: CpeCriterion, target: Cpe) -> bool:
    """Does the component CPE ``target`` fall under one NVD match criterion?"""
    return compiled_matches(compile_criterion(criterion), target)
