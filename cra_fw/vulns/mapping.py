"""The curated CPE mapping (``signatures/cpe-mapping.toml``): component -> NVD vendor:product."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir


@dataclass(frozen=True)
class ProductRule:
    names: tuple[str, ...]
    part: str
    cpes: tuple[tuple[str, str], ...]  # (vendor, product)
    version_regex: re.Pattern[str] | None


@dataclass(frozen=True)
class CpeMapping:
    products: dict[str, ProductRule]  # lower-case name -> rule
    corrections: dict[tuple[str, str], tuple[str, str]]

    def rule_for(self, *names: str) -> ProductRule | None:
        for name in names:
            rule = self.products.get(name.strip().lower())
            if rule:
                return rule
        return None

    def correct(self, vendor: str, product: str) -> tuple[str, str]:
        return self.corrections.get((vendor, product), (vendor, product))


def _pair(text: str, where: str) -> tuple[str, str]:
    vendor, sep, product = str(text).strip().lower().partition(":")
    if not sep or not vendor or not product or ":" in product:
        raise SignatureDataError(f"{where}: {text!r} must be vendor:product; fix the mapping file")
    return vendor, product


@functools.lru_cache(maxsize=4)
def load_mapping(path: Path | None = None) -> CpeMapping:
    """Load and validate the mapping (cached)."""
    path = path or signatures_dir() / "cpe-mapping.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SignatureDataError(f"cannot read {path}: {exc}") from exc
    products: dict[str, ProductRule] = {}
    for i, entry in enumerate(data.get("product", [])):
        where = f"{path.name} product #{i + 1}"
        names = tuple(str(n).lower() for n in entry.get("names", []))
        if not names or not entry.get("cpe"):
            raise SignatureDataError(f"{where}: needs names and cpe")
        part = str(entry.get("part", "a"))
        if part not in ("a", "o", "h"):
            raise SignatureDataError(f"{where}: part must be a, o or h")
        regex = entry.get("version_regex")
        try:
            compiled = re.compile(regex) if regex else None
        except re.error as exc:
            raise SignatureDataError(f"{where}: bad version_regex: {exc}") from exc
        rule = ProductRule(names, part, tuple(_pair(c, where) for c in entry["cpe"]), compiled)
        for name in names:
            products[name] = rule
    corrections = {}
    for i, entry in enumerate(data.get("correction", [])):
        where = f"{path.name} correction #{i + 1}"
        corrections[_pair(entry.get("wrong", ""), where)] = _pair(entry.get("right", ""), where)
    return CpeMapping(products, corrections)


def mapping_tests(path: Path | None = None) -> list[dict]:
    """The ``[[test]]`` vectors of the mapping file."""
    path = path or signatures_dir() / "cpe-mapping.toml"
    return list(tomllib.loads(path.read_text(encoding="utf-8")).get("test", []))
