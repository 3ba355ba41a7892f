"""Match components against the imported feeds.

* by CPE: the component's CPE (corrected by the curated mapping) and the
  mapping's vendor:product pairs for its name, against NVD ``cpeMatch`` ranges;
* by purl: package-database components against OSV ranges of their ecosystem.

For Debian packages the distribution's own OSV records win over upstream
(NVD) ranges: a CVE the Debian record says is fixed in the installed package
version is not reported from the NVD range (backported fixes).
"""

from __future__ import annotations

import gc
import json
import operator
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from packageurl import PackageURL

from cra_fw.records import Component
from cra_fw.versions import compare, generic_key, scheme_for_ecosystem, sortable, upstream_of_debian
from cra_fw.vulns.cpe import (
    ANY,
    NA,
    Cpe,
    CpeCriterion,
    compile_criterion,
    compiled_matches,
    describe_range,
    try_parse,
)
from cra_fw.vulns.cvss import severity_of
from cra_fw.vulns.mapping import CpeMapping, load_mapping
from cra_fw.vulns.records import ARTICLE14_NOTE, Triage, VulnMatch, vuln_match

if TYPE_CHECKING:
    import sqlite_utils

# purl type -> OSV ecosystem (base name)
PURL_ECOSYSTEMS = {
    "deb": "Debian",
    "apk": "Alpine",
    "pypi": "PyPI",
    "npm": "npm",
    "cargo": "crates.io",
    "golang": "Go",
    "maven": "Maven",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "swift": "SwiftURL",
}
_DEB_NAMESPACES = {"debian": "Debian", "ubuntu": "Ubuntu"}


_first = operator.itemgetter(0)


class _Hit(NamedTuple):
    # a tuple: matching creates one per (component, advisory), tens of thousands per image
    advisory_id: str
    method: str
    matched_range: str
    fixed: str
    open_end: bool = False  # no upper bound: every version from the start on is affected


class _DistroVerdict(NamedTuple):
    """A distribution's record saying its package version is not affected by an advisory."""

    record_id: str
    where: str  # "Debian:12/expat"
    fixed: str  # the distro version that fixed it ("" when the record says never affected)


class _Found(NamedTuple):
    component: Component
    canonical: str
    hit: _Hit
    aliases: frozenset[str]
    source: str
    analysis: Triage | None  # the distribution's verdict, when it overrules the upstream range
    possible: bool


def parse_purl(text: str) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def normalize_ref(ref: str) -> str:
    """A triage key for a component: canonical purl without qualifiers/subpath, or the text as given.

    ``arch=``/``distro=`` differ between releases of the same component, and ``+`` may be written
    raw or as ``%2B``; none of that should lose a decision.
    """
    ref = ref.strip()
    purl = parse_purl(ref) if ref.startswith("pkg:") else None
    if purl is None:
        return ref
    return PackageURL(purl.type, purl.namespace, purl.name, purl.version).to_string()


def component_cpes(component: Component, mapping: CpeMapping | None = None) -> list[Cpe]:
    """The CPEs to look a component up under (curated corrections applied)."""
    mapping = mapping or load_mapping()
    purl = parse_purl(component.purl)
    names = [component.name]
    if purl:
        names.append(purl.name)
        upstream = (purl.qualifiers or {}).get("upstream", "")
        if upstream:
            names.append(upstream.split("@", 1)[0])
    rule = mapping.rule_for(*names)
    parsed = try_parse(component.cpe) if component.cpe else None
    version, update = component.version, ANY
    if parsed and parsed.version not in (ANY, NA):
        version, update = parsed.version, parsed.update
    elif purl and purl.type == "deb":
        version = upstream_of_debian(version)
    if rule and rule.version_regex:
        m = rule.version_regex.match(version)
        if m:
            version = m.group(1)
    out: list[Cpe] = []
    if parsed:
        vendor, product = mapping.correct(parsed.vendor, parsed.product)
        out.append(parsed.with_vendor_product(vendor, product).with_version(version, update))
    if rule:
        for vendor, product in rule.cpes:
            out.append(Cpe(rule.part, vendor, product, version.lower(), update))
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for cpe in out:
        key = (cpe.vendor, cpe.product, cpe.effective_version)
        if key not in seen and cpe.version not in (ANY, NA, ""):
            seen.add(key)
            unique.append(cpe)
    return unique


def _osv_targets(component: Component) -> tuple[list[str], list[str], str, str]:
    """(package names, ecosystems, version, scheme) to look up in OSV, or empty lists."""
    purl = parse_purl(component.purl)
    if not purl or not purl.version:
        return [], [], "", ""
    base = PURL_ECOSYSTEMS.get(purl.type)
    if purl.type == "deb":
        base = _DEB_NAMESPACES.get((purl.namespace or "").lower(), "Debian")
    if not base:
        return [], [], "", ""
    quals = purl.qualifiers or {}
    names = [purl.name if purl.type != "golang" or not purl.namespace else f"{purl.namespace}/{purl.name}"]
    if purl.type == "maven" and purl.namespace:
        names = [f"{purl.namespace}:{purl.name}"]
    if purl.type == "npm" and purl.namespace:
        names = [f"{purl.namespace}/{purl.name}"]
    for extra in (quals.get("upstream", ""), quals.get("source", ""), component.name):
        name = extra.split("@", 1)[0] if extra else ""
        if name and name not in names:
            names.append(name)
    ecosystems = [base]
    distro = quals.get("distro", "")
    m = re.search(r"(\d+(?:\.\d+)?)", distro)
    if purl.type in ("deb", "apk") and m:
        release = m.group(1)
        if base == "Debian":
            release = release.split(".")[0]
        ecosystems = [f"{base}:{release}", f"{base}:v{release}"]
    return names, ecosystems, purl.version, scheme_for_ecosystem(base)


def _osv_row_affects(row: tuple, version: str, scheme: str) -> bool:
    range_type, introduced, fixed, last_affected, limit, versions = row
    if range_type == "VERSIONS":
        listed = json.loads(versions) if versions else []
        return any(v == version or compare(v, version, scheme) == 0 for v in listed)
    if introduced not in ("", "0") and compare(version, introduced, scheme) < 0:
        return False
    if fixed:
        return compare(version, fixed, scheme) < 0
    if last_affected:
        return compare(version, last_affected, scheme) <= 0
    if limit:
        return compare(version, limit, scheme) < 0
    return True


def _describe_osv(ecosystem: str, name: str, row: tuple) -> str:
    range_type, introduced, fixed, last_affected, limit, versions = row
    if range_type == "VERSIONS":
        return f"{ecosystem}/{name} listed version"
    bits = []
    if introduced not in ("", "0"):
        bits.append(f">={introduced}")
    if fixed:
        bits.append(f"<{fixed}")
    if last_affected:
        bits.append(f"<={last_affected}")
    if limit:
        bits.append(f"<{limit}")
    return f"{ecosystem}/{name} {' '.join(bits) or 'all versions'}"


class Matcher:
    """Matches components against one database; caches per vendor:product and package."""

    def __init__(self, db: sqlite_utils.Database, mapping: CpeMapping | None = None) -> None:
        self.db = db
        self.mapping = mapping or load_mapping()
        self._aliases: dict[str, tuple[str, ...]] = {}
        self._cpe_cache: dict[Cpe, tuple[_Hit, ...]] = {}

    # Three index-only range scans on idx_cpe_match_range (vendor, product, exact_key, end_key,
    # start_key, ..., every other column): rows naming the version, open-ended ranges, and ranges
    # ending at or above it.  Sorted by rowid afterwards (in Python: cheaper than SQLite's temp
    # b-tree), i.e. feed order: a CVE's first matching range is the one reported.  ``plain``
    # flags rows whose key test is exact (no named version, wildcards after it), so the usual
    # row comes back as eight small values.
    _CPE_COLS = (
        "rowid, advisory_id, part, start_incl, start_excl, end_incl, end_excl, "
        "(version IN ('*', '') AND edition = '*' AND language = '*' AND sw_edition = '*' "
        "AND target_sw = '*' AND target_hw = '*' AND other = '*') AS plain "
        "FROM cpe_match WHERE vendor = ?1 AND product = ?2 AND "
    )
    _START_OK = "(start_key IS NULL OR start_key < ?3 OR (start_key = ?3 AND start_key_incl = 1))"
    _CPE_SQL = (
        f"SELECT {_CPE_COLS} exact_key IN (?3, ?4)"
        f" UNION ALL SELECT {_CPE_COLS} exact_key IS NULL AND end_key IS NULL AND {_START_OK}"
        f" UNION ALL SELECT {_CPE_COLS} exact_key IS NULL AND end_key >= ?3 AND (end_key > ?3 OR end_key_incl = 1)"
        f" AND {_START_OK}"
    )
    _ROW_SQL = (
        "SELECT version, update_, edition, language, sw_edition, target_sw, target_hw, other "
        "FROM cpe_match WHERE rowid = ?"
    )

    def _cpe_hits(self, component: Component) -> list[_Hit]:
        """NVD criteria the component's CPEs fall under.

        SQLite does the range test on the sortable version keys in an index-only scan (even for
        the kernel's tens of thousands of ranges).  For a plain range row (no named version,
        wildcards after it) that test is exact; other rows are checked again with the full CPE
        rules.  Results are cached per CPE: firmware repeats components, and the ledger matches
        release after release with one Matcher.
        """
        hits: list[_Hit] = []
        for target in component_cpes(component, self.mapping):
            cached = self._cpe_cache.get(target)
            if cached is None:
                cached = self._cpe_cache[target] = self._query_cpe(target)
            hits.extend(cached)
        return hits

    def _query_cpe(self, target: Cpe) -> tuple[_Hit, ...]:
        key, key_plain = sortable(target.effective_version), sortable(target.version)
        vendor, product, target_part = target.vendor, target.product, target.part
        prefix = f"cpe:2.3:{{}}:{vendor}:{product} "
        gkey = None
        described_cache: dict[tuple[str, ...], str] = {}  # one product's ranges repeat across its CVEs
        hits = []
        conn = self.db.conn
        rows = conn.execute(self._CPE_SQL, (vendor, product, key, key_plain)).fetchall()
        rows.sort(key=_first)
        for rowid, advisory_id, part, si, se, ei, ee, plain in rows:
            open_end = not (ei or ee)
            if plain and (part == target_part or ANY in (part, target_part)):
                # the index scan's key test was exact
                range_key = (part, si, se, ei, ee)
                described = described_cache.get(range_key)
                if described is None:
                    described = described_cache[range_key] = prefix.format(part) + describe_range(
                        si, se, ei, ee, ANY
                    )
            else:
                if gkey is None:
                    gkey = generic_key(target.effective_version)
                rest = conn.execute(self._ROW_SQL, (rowid,)).fetchone()
                compiled = compile_criterion(CpeCriterion(Cpe(part, vendor, product, *rest), si, se, ei, ee))
                if not compiled_matches(compiled, target, gkey):
                    continue
                described = prefix.format(part) + compiled.criterion.describe()
                open_end = open_end and rest[0] in (ANY, "")
            hits.append(_Hit(advisory_id, "cpe", described, ee, open_end))
        return tuple(hits)

    def _osv_hits(self, component: Component) -> tuple[list[_Hit], dict[str, _DistroVerdict]]:
        """Hits, and per advisory id (and alias) the distro record whose ranges say 'not affected'."""
        names, ecosystems, version, scheme = _osv_targets(component)
        if not names:
            return [], {}
        marks = ",".join("?" * len(names))
        rows = self.db.conn.execute(
            f"SELECT advisory_id, ecosystem, name, range_type, introduced, fixed, last_affected, limit_, "
            f"versions FROM osv_affected WHERE name IN ({marks})",
            names,
        ).fetchall()
        affected: dict[str, _Hit] = {}
        covered: dict[str, _DistroVerdict] = {}
        for advisory_id, ecosystem, name, *rng in rows:
            if not any(
                ecosystem == e or (":" not in e and ecosystem.split(":", 1)[0] == e) for e in ecosystems
            ):
                continue
            fixed = rng[2] if rng[0] != "VERSIONS" else ""
            prev_verdict = covered.get(advisory_id)
            if prev_verdict is None or (fixed and compare(fixed, version, scheme) <= 0):
                covered[advisory_id] = _DistroVerdict(advisory_id, f"{ecosystem}/{name}", fixed)
            if _osv_row_affects(tuple(rng), version, scheme):
                prev = affected.get(advisory_id)
                if prev is None or (fixed and not prev.fixed):
                    open_end = rng[0] != "VERSIONS" and not (rng[2] or rng[3] or rng[4])
                    affected[advisory_id] = _Hit(
                        advisory_id, "purl", _describe_osv(ecosystem, name, tuple(rng)), fixed, open_end
                    )
        not_affected: dict[str, _DistroVerdict] = {}
        for advisory_id, verdict in covered.items():
            if advisory_id in affected:
                continue
            if verdict.fixed and compare(verdict.fixed, version, scheme) > 0:
                verdict = verdict._replace(fixed="")  # the fix is later: the range excluded us otherwise
            not_affected[advisory_id] = verdict
            for alias in self._alias_of(advisory_id):
                not_affected.setdefault(alias, verdict)
        return list(affected.values()), not_affected

    def _alias_of(self, advisory_id: str) -> tuple[str, ...]:
        if advisory_id not in self._aliases:
            row = self.db.conn.execute(
                "SELECT aliases FROM advisories WHERE id = ? AND source = 'osv'", (advisory_id,)
            ).fetchone()
            self._aliases[advisory_id] = tuple(json.loads(row[0])) if row and row[0] else ()
        return self._aliases[advisory_id]

    def match(self, components: Iterable[Component]) -> list[VulnMatch]:
        """All matches for the components, enriched with severity, KEV, EPSS and triage."""
        # tens of thousands of small objects, none of them cyclic: the cyclic collector would
        # rescan them again and again (a third of the time on a 1,000-component image)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._enrich_all(self._find(components))
        finally:
            if gc_was_enabled:
                gc.enable()

    def _find(self, components: Iterable[Component]) -> list[_Found]:
        found: list[_Found] = []
        no_aliases: frozenset[str] = frozenset()
        for component in components:
            osv_hits, distro_fixed = self._osv_hits(component) if component.purl else ([], {})
            uncertain = component.version_certainty not in ("exact", "unknown", "")
            merged: dict[str, tuple[_Hit, set[str], str, Triage | None]] = {}  # canonical id -> ...
            for hit in osv_hits:
                aliases = set(self._alias_of(hit.advisory_id))
                cves = sorted(a for a in aliases if a.startswith("CVE-"))
                canonical = hit.advisory_id if hit.advisory_id.startswith("CVE-") or not cves else cves[0]
                aliases.add(hit.advisory_id)
                aliases.discard(canonical)
                if canonical in merged:
                    merged[canonical][1].update(aliases)
                else:
                    merged[canonical] = (hit, aliases, "osv", None)
            for hit in self._cpe_hits(component):
                if hit.advisory_id in merged:
                    continue
                verdict = distro_fixed.get(hit.advisory_id)
                if verdict is None:
                    merged[hit.advisory_id] = (hit, set(), "nvd", None)
                else:
                    # the distribution's record overrules the upstream range (a backported fix)
                    merged[hit.advisory_id] = (
                        hit,
                        {verdict.record_id},
                        "nvd",
                        _distro_analysis(component, verdict),
                    )
            for canonical, (hit, aliases, source, analysis) in sorted(merged.items()):
                aliases.discard(canonical)
                found.append(
                    _Found(
                        component,
                        canonical,
                        hit,
                        frozenset(aliases) if aliases else no_aliases,
                        source,
                        analysis,
                        uncertain and not hit.open_end,
                    )
                )
        return found

    def _fetch(self, sql: str, keys: Iterable[str]) -> list[tuple]:
        """Run ``sql`` (with one ``{marks}`` IN list) over keys in chunks under SQLite's variable limit."""
        keys = sorted(set(keys))
        rows: list[tuple] = []
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows.extend(self.db.conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
        return rows

    def _facts(self, found: list[_Found]) -> dict[tuple, tuple]:
        """Per (advisory, matched record, aliases): the facts every component with it shares."""
        # one query per table for all matches: a firmware image easily has thousands
        keys = {(f.canonical, f.hit.advisory_id, f.aliases) for f in found}
        ids = {k[0] for k in keys} | {k[1] for k in keys}
        adv: dict[tuple[str, str], tuple] = {}
        for row in self._fetch(
            "SELECT id, source, summary, cvss31_vector, cvss31_score, cvss4_vector, cvss4_score, "
            "severity, cvss2_score FROM advisories WHERE id IN ({marks})",
            ids,
        ):
            adv[(row[0], row[1])] = row[2:]
        cves = {i for i in ids if i.startswith("CVE-")}
        for _, _, aliases in keys:
            if aliases:
                cves.update(a for a in aliases if a.startswith("CVE-"))
        # the KEV catalog is small (about 1,500 entries): read it whole rather than 32,000 ids
        kev = {r[0]: r[1:] for r in self.db.conn.execute("SELECT cve_id, date_added, due_date FROM kev")}
        epss = {}
        if self.db.conn.execute("SELECT 1 FROM epss LIMIT 1").fetchone():  # EPSS is optional
            epss = {
                r[0]: r[1:]
                for r in self._fetch(
                    "SELECT cve_id, score, percentile FROM epss WHERE cve_id IN ({marks})", cves
                )
            }
        facts = {}
        for fact_key in keys:
            canonical, hit_id, aliases = fact_key
            rating = adv.get((canonical, "nvd")) or adv.get((canonical, "osv"))
            if rating is None or not (rating[1] or rating[3] or rating[5]) and rating[6] is None:
                # a purl hit whose CVE is not in the NVD table: use the OSV record's own rating
                rating = adv.get((hit_id, "osv")) or rating
            summary, v3_vec, v3_score, v4_vec, v4_score, text_sev, v2_score = rating or (
                "",
                "",
                None,
                "",
                None,
                "",
                None,
            )
            if aliases:
                alias_list = tuple(sorted(aliases))
                cve_ids = (canonical, *(a for a in alias_list if a.startswith("CVE-")))
                kev_row = next((kev[c] for c in cve_ids if c in kev), None)
                epss_row = next((epss[c] for c in cve_ids if c in epss), None)
            else:  # the common case (NVD-only matches)
                alias_list, kev_row, epss_row = (), kev.get(canonical), epss.get(canonical)
            score = v3_score if v3_score is not None else v4_score
            facts[fact_key] = (
                alias_list,
                summary or "",
                severity_of(score, text_sev or "", v2_score),
                v3_vec or "",
                v3_score,
                v4_vec or "",
                v4_score,
                kev_row is not None,
                kev_row[0] if kev_row else "",
                kev_row[1] if kev_row else "",
                epss_row[0] if epss_row else None,
                epss_row[1] if epss_row else None,
                ARTICLE14_NOTE if kev_row else "",
            )
        return facts

    def _enrich_all(self, found: list[_Found]) -> list[VulnMatch]:
        facts = self._facts(found)
        triage = self._triage_table()
        out = []
        last_component, ident = None, ("", "", "", "")
        for component, canonical, hit, aliases, source, analysis, possible in found:
            if component is not last_component:  # a component's matches are consecutive
                last_component = component
                ident = (component.key, component.purl, component.name, component.version)
            (
                alias_list,
                summary,
                severity,
                v3_vec,
                v3_score,
                v4_vec,
                v4_score,
                kev,
                kev_added,
                kev_due,
                epss,
                epss_pct,
                exploited,
            ) = facts[(canonical, hit.advisory_id, aliases)]
            out.append(
                vuln_match(
                    ident[0],
                    ident[1],
                    ident[2],
                    ident[3],
                    canonical,
                    alias_list,
                    source,
                    summary,
                    severity,
                    v3_vec,
                    v3_score,
                    v4_vec,
                    v4_score,
                    hit.fixed,
                    hit.method,
                    hit.matched_range,
                    kev,
                    kev_added,
                    kev_due,
                    epss,
                    epss_pct,
                    exploited,
                    # a person's decision stands over cra-fw's own analysis
                    (self._triage_for(triage, component, (canonical, *alias_list)) if triage else None)
                    or analysis,
                    component.version_certainty,
                    possible,
                    _settle(component, canonical, hit) if possible else "",
                )
            )
        return out

    def _triage_table(self) -> dict[tuple[str, str], Triage]:
        table = {}
        for row in self.db.conn.execute(
            "SELECT advisory_id, component, state, justification, response, detail, source, updated "
            "FROM triage ORDER BY updated"
        ):
            response = tuple(r for r in (row[4] or "").split(",") if r)
            table[(row[0], row[1])] = Triage(
                row[2], row[3] or "", response, row[5] or "", row[6] or "", row[7] or ""
            )
        return table

    @staticmethod
    def _triage_for(
        table: dict[tuple[str, str], Triage], component: Component, ids: tuple[str, ...]
    ) -> Triage | None:
        if not table:
            return None
        refs = [component.key]
        if component.purl:
            refs += [component.purl, normalize_ref(component.purl)]
        found = [table[(i, r)] for i in ids for r in refs if (i, r) in table]
        return max(found, key=lambda t: t.updated) if found else None


def _distro_analysis(component: Component, verdict: _DistroVerdict) -> Triage:
    """A VEX analysis from the distribution's record: fixed (a backport) or never affected."""
    installed = purl_version(component) or component.version
    if verdict.fixed:
        detail = (
            f"{verdict.where} fixed this in {verdict.fixed} ({verdict.record_id}); "
            f"the installed {installed} includes the fix"
        )
        return Triage("resolved", "", (), detail, f"distro:{verdict.record_id}")
    detail = f"{verdict.where} is not affected according to {verdict.record_id} (installed {installed})"
    return Triage("not_affected", "code_not_present", (), detail, f"distro:{verdict.record_id}")


def purl_version(component: Component) -> str:
    """The version the component's purl names (the full distro version of a distro package)."""
    purl = parse_purl(component.purl)
    return purl.version or "" if purl else ""


def _settle(component: Component, advisory: str, hit: _Hit) -> str:
    known = component.version_range or f"{component.version_certainty} {component.version}"
    fix = f" (fixed in {hit.fixed})" if hit.fixed else ""
    return (
        f"{component.name} is known only as {known}; {advisory} affects {hit.matched_range}{fix}. "
        "The exact version settles it: a package database in the image, the build SBOM "
        "(`cra-fw scan --build-sbom`), or a recorded decision (`cra-fw triage`)."
    )


def match_components(components: Iterable[Component], db: sqlite_utils.Database) -> list[VulnMatch]:
    """Match components against an open feed database (no scan needed; the ledger's monitor uses this).

    ``db`` may have been opened for another namespace only: the feed tables are created if missing.
    """
    from cra_fw.db import migrate
    from cra_fw.feeddb import NAMESPACES

    migrate(db, NAMESPACES)
    return Matcher(db).match(components)
