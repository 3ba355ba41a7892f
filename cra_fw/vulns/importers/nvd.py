"""NVD CVE JSON 2.0: yearly/modified feed files and API 2.0 pages (same ``vulnerabilities`` array)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from cra_fw.errors import FeedError
from cra_fw.vulns.cpe import try_parse
from cra_fw.vulns.importers.jsonstream import iter_array
from cra_fw.vulns.store import AdvisoryRow, CpeMatchRow, ParsedAdvisory


def _pick_metric(entries: Any) -> dict:
    """The NVD's own (Primary) metric if present, else the first one."""
    if not isinstance(entries, list) or not entries:
        return {}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("type") == "Primary":
            return entry.get("cvssData") or {}
    first = entries[0]
    return first.get("cvssData") or {} if isinstance(first, dict) else {}


def _score(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def parse_cve(item: dict) -> ParsedAdvisory:
    """One ``vulnerabilities[]`` item to an advisory with its vulnerable CPE ranges."""
    cve = item["cve"] if "cve" in item else item
    cve_id = str(cve["id"])
    summary = ""
    for desc in cve.get("descriptions") or []:
        if isinstance(desc, dict) and desc.get("lang") == "en":
            summary = str(desc.get("value", ""))
            break
    metrics = cve.get("metrics") or {}
    v3 = _pick_metric(metrics.get("cvssMetricV31")) or _pick_metric(metrics.get("cvssMetricV30"))
    v4 = _pick_metric(metrics.get("cvssMetricV40"))
    v2 = _pick_metric(metrics.get("cvssMetricV2"))
    advisory = AdvisoryRow(
        id=cve_id,
        source="nvd",
        published=str(cve.get("published", "")),
        modified=str(cve.get("lastModified", "")),
        summary=summary,
        cvss31_vector=str(v3.get("vectorString", "")),
        cvss31_score=_score(v3.get("baseScore")),
        cvss4_vector=str(v4.get("vectorString", "")),
        cvss4_score=_score(v4.get("baseScore")),
        cvss2_score=_score(v2.get("baseScore")),
        withdrawn=cve.get("vulnStatus") == "Rejected",
    )
    ranges: list[CpeMatchRow] = []
    for config in cve.get("configurations") or []:
        for node in (config or {}).get("nodes") or []:
            if not isinstance(node, dict) or node.get("negate"):
                continue
            for m in node.get("cpeMatch") or []:
                if not isinstance(m, dict) or not m.get("vulnerable"):
                    continue
                c = try_parse(str(m.get("criteria", "")))
                if c is None:
                    continue
                ranges.append(
                    CpeMatchRow(
                        cve_id,
                        c.part,
                        c.vendor,
                        c.product,
                        c.version,
                        c.update,
                        c.edition,
                        c.language,
                        c.sw_edition,
                        c.target_sw,
                        c.target_hw,
                        c.other,
                        str(m.get("versionStartIncluding", "")),
                        str(m.get("versionStartExcluding", "")),
                        str(m.get("versionEndIncluding", "")),
                        str(m.get("versionEndExcluding", "")),
                    )
                )
    # the same criterion often appears in several configurations
    return ParsedAdvisory(advisory, tuple(dict.fromkeys(ranges)))


def iter_nvd(fh: IO[str], errors: list[str]) -> Iterator[ParsedAdvisory]:
    """Parse an NVD 2.0 feed/API page stream; bad items are skipped and counted in ``errors``."""
    meta: dict[str, Any] = {}
    for item in iter_array(fh, "vulnerabilities", meta):
        if meta.get("format") not in (None, "NVD_CVE"):
            raise FeedError(f"not an NVD CVE feed (format {meta.get('format')!r})")
        try:
            yield parse_cve(item)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if len(errors) < 20:
                errors.append(f"skipped a malformed NVD item: {type(exc).__name__}: {exc}")
