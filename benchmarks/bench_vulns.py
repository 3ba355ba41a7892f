#!/usr/bin/env python3
"""Benchmark the vulnerability feeds: import a synthetic full-size NVD, then match 1,000 components.

The feed is generated at run time in the NVD CVE JSON 2.0 schema (yearly
``nvdcve-2.0-YYYY.json.gz`` files) with the full NVD's size: about 300,000 CVEs,
a skewed product popularity over 100,000 products (the kernel alone has tens of
thousands of ranges, the median product one or two CVEs), 1-4 branch ranges per
affected product, CVSS v3.1 metrics and descriptions.  The 1,000 components are
5 kernels, openssl, busybox, glibc, then half from the 2,000 most popular
products and half from the whole pool.

The distro path (issue 17): a synthetic OSV ``Debian`` ecosystem of the real one's size
(``--osv-debian``, default 60,000 DEBIAN-CVE records over 30,000 source packages, each in
1-4 Debian releases with a fixed revision or none, and enumerated affected versions) is
imported as ``Debian-all.zip``, and half of the 1,000 components are Debian packages
(``pkg:deb/debian/NAME@VERSION?distro=debian-12`` plus the upstream CPE), so each is
matched by CPE against the NVD and by purl against Debian's records, the distro record
deciding.

Measures: import time and peak memory (the real ``cra-fw db import`` in a child
process), database size, an incremental re-import of one year, match time for
1,000 components, and the matcher's peak memory.

    python benchmarks/bench_vulns.py                 # full size (targets: import < 300 s, match < 2 s)
    python benchmarks/bench_vulns.py --cves 20000 --osv-debian 5000   # quick run
    python benchmarks/bench_vulns.py --osv-debian 0  # NVD only, as before issue 17
    python benchmarks/bench_vulns.py --workdir DIR --keep        # keep DIR/bench.db for later runs
    python benchmarks/bench_vulns.py --workdir DIR --reuse-db    # time matching only, on DIR/bench.db

On a shared machine wall time mostly measures the neighbours: the CPU time of the
matching (``match_cpu_s``) is the fair figure; the load average is printed with it.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

YEARS = list(range(2002, 2026))
PRODUCTS = 100_000
VECTORS = [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
]
WORDS = [
    "buffer",
    "overflow",
    "use-after-free",
    "heap",
    "stack",
    "memory",
    "remote",
    "attacker",
    "crafted",
    "request",
    "denial",
    "service",
    "privilege",
    "escalation",
    "injection",
    "authentication",
    "bypass",
    "integer",
    "out-of-bounds",
    "read",
    "write",
]


def products(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    out = [
        ("o", "linux", "linux_kernel"),
        ("a", "openssl", "openssl"),
        ("a", "busybox", "busybox"),
        ("a", "gnu", "glibc"),
        ("a", "thekelleys", "dnsmasq"),
    ]
    for i in range(count - len(out)):
        out.append(("a", f"vendor{i % (count // 3 + 1)}", f"product{i}"))
    return out


def version(rng: random.Random) -> str:
    return f"{rng.randint(0, 6)}.{rng.randint(0, 20)}.{rng.randint(0, 40)}"


def cve_item(rng: random.Random, cve_id: str, year: int, prods: list, cum_weights: list) -> dict:
    matches = []
    for part, vendor, product in rng.choices(prods, cum_weights=cum_weights, k=rng.choice((1, 1, 2, 3))):
        crit = f"cpe:2.3:{part}:{vendor}:{product}:*:*:*:*:*:*:*:*"
        for _ in range(rng.choice((1, 2, 3, 4))):
            kind = rng.random()
            if kind < 0.15:  # one listed version
                matches.append(
                    {
                        "vulnerable": True,
                        "criteria": crit.replace(":*:*:*:*:*:*:*:*", f":{version(rng)}:*:*:*:*:*:*:*"),
                        "matchCriteriaId": f"{rng.getrandbits(64):016X}",
                    }
                )
                continue
            # a branch range as the NVD writes them: x.y.a up to x.y.b (or to the next minor)
            major, minor, patch = rng.randint(0, 6), rng.randint(0, 20), rng.randint(0, 30)
            lo = f"{major}.{minor}.{patch}"
            hi = (
                f"{major}.{minor}.{patch + rng.randint(1, 12)}"
                if rng.random() < 0.7
                else f"{major}.{minor + 1}"
            )
            m = {
                "vulnerable": True,
                "criteria": crit,
                "matchCriteriaId": f"{rng.getrandbits(64):016X}",
                "versionEndExcluding" if kind < 0.8 else "versionEndIncluding": hi,
            }
            if kind < 0.6:
                m["versionStartIncluding"] = lo
            matches.append(m)
    vector, score = rng.choice(VECTORS)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    return {
        "cve": {
            "id": cve_id,
            "sourceIdentifier": "cve@mitre.org",
            "published": f"{year}-{month:02d}-{day:02d}T10:15:00.000",
            "lastModified": f"{min(year + 1, 2025)}-{month:02d}-{day:02d}T10:15:00.000",
            "vulnStatus": "Analyzed",
            "descriptions": [{"lang": "en", "value": " ".join(rng.choices(WORDS, k=40))}],
            "metrics": {
                "cvssMetricV31": [
                    {
                        "source": "nvd@nist.gov",
                        "type": "Primary",
                        "cvssData": {"version": "3.1", "vectorString": vector, "baseScore": score},
                    }
                ]
            },
            "weaknesses": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "description": [{"lang": "en", "value": "CWE-787"}],
                }
            ],
            "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}],
            "references": [{"url": f"https://example.org/advisories/{cve_id}", "source": "cve@mitre.org"}],
        }
    }


def generate(outdir: Path, total: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    prods = products(rng, PRODUCTS)
    # Zipf tail 1/(rank+50) over 100,000 products sums to ~7.6: the most popular product gets
    # ~800 CVEs, rank 1,000 ~40, the median product 1-2, as in the real NVD; the kernel ~6%
    weights = [0.5, 0.06, 0.03, 0.03, 0.02] + [1.0 / (i + 50) for i in range(len(prods) - 5)]
    cum_weights = list(itertools.accumulate(weights))
    per_year = total // len(YEARS)
    files = []
    serial = 0
    for year in YEARS:
        n = per_year if year != YEARS[-1] else total - per_year * (len(YEARS) - 1)
        path = outdir / f"nvdcve-2.0-{year}.json.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
            fh.write(
                f'{{"resultsPerPage": {n}, "startIndex": 0, "totalResults": {n}, "format": "NVD_CVE", '
                '"version": "2.0", "timestamp": "2025-11-01T00:00:00.000", "vulnerabilities": ['
            )
            for i in range(n):
                serial += 1
                if i:
                    fh.write(",")
                item = cve_item(rng, f"CVE-{year}-{serial:06d}", year, prods, cum_weights)
                fh.write(json.dumps(item))
                if NVD_PRODUCTS is not None:
                    crit = item["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0]["criteria"]
                    NVD_PRODUCTS.append((item["cve"]["id"], crit.split(":")[4]))
            fh.write("]}")
        files.append(path)
    return files


DEBIAN_RELEASES = ("10", "11", "12", "13")
# (CVE, product) of the generated NVD records: most Debian records are about CVEs the NVD has too
NVD_PRODUCTS: list[tuple[str, str]] | None = []
SOURCE_PACKAGES = 30_000


def osv_debian(outdir: Path, total: int, seed: int = 13) -> Path:
    """``Debian-all.zip`` with ``total`` DEBIAN-CVE records in OSV's schema (the real ecosystem's shape)."""
    rng = random.Random(seed)
    prods = products(random.Random(11), PRODUCTS)
    # source packages: the NVD pool's products (so components match both ways), Zipf popularity
    names = [p[2] for p in prods[:SOURCE_PACKAGES]]
    cum = list(itertools.accumulate(1.0 / (i + 20) for i in range(len(names))))
    path = outdir / "Debian-all.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        shipped = set(names)
        known = [(c, p) for c, p in (NVD_PRODUCTS or []) if p in shipped]
        rng.shuffle(known)
        for i in range(total):
            year = rng.choice(YEARS)
            if i < len(known) and rng.random() < 0.9:
                cve, name = known[i]  # the Debian record of an NVD CVE: here the distro decides
            else:
                name = rng.choices(names, cum_weights=cum)[0]
                cve = f"CVE-{year}-{9_000_000 + i:07d}"
            affected = []
            for release in rng.sample(DEBIAN_RELEASES, rng.randint(1, 4)):
                upstream = version(rng)
                events: list[dict] = [{"introduced": "0"}]
                if rng.random() < 0.8:  # most are fixed, often by a backport revision
                    events.append(
                        {"fixed": f"{upstream}-{rng.randint(1, 5)}+deb{release}u{rng.randint(1, 9)}"}
                    )
                affected.append(
                    {
                        "package": {
                            "ecosystem": f"Debian:{release}",
                            "name": name,
                            "purl": f"pkg:deb/debian/{name}?arch=source",
                        },
                        "ranges": [{"type": "ECOSYSTEM", "events": events}],
                        "versions": [f"{version(rng)}-{k}" for k in range(rng.randint(0, 12))],
                    }
                )
            record = {
                "id": f"DEBIAN-{cve}",
                "modified": f"{min(year + 1, 2025)}-01-01T00:00:00Z",
                "published": f"{year}-01-01T00:00:00Z",
                "upstream": [cve],
                "summary": " ".join(rng.choices(WORDS, k=8)),
                "affected": affected,
            }
            zf.writestr(f"DEBIAN-{cve}.json", json.dumps(record))
    return path


def components(count: int, seed: int = 11, debian: bool = True):
    from cra_fw.records import Component

    rng = random.Random(seed)
    prods = products(rng, PRODUCTS)
    out = [Component("linux", f"5.{rng.randint(0, 19)}.{rng.randint(0, 200)}") for _ in range(5)]
    out += [Component("openssl", "1.0.2k"), Component("busybox", "1.35.0"), Component("glibc", "2.36")]
    while len(out) < count:
        # half from the popular head (hundreds of CVEs each), half from the whole product pool
        popular = len(out) % 2 == 1
        pool = prods[5:2000] if popular else prods[5:]
        part, vendor, product = rng.choice(pool)
        v1, v2 = version(rng), version(rng)
        cpe = f"cpe:2.3:{part}:{vendor}:{product}:{v2}"
        if debian and popular:
            # a Debian package of a product the distribution ships: the distro purl and the upstream
            # CPE, as a scan of a dpkg database finds it
            rev = f"{v2}-{rng.randint(1, 5)}+deb12u{rng.randint(0, 9)}"
            purl = f"pkg:deb/debian/{product}@{rev.replace('+', '%2B')}?arch=amd64&distro=debian-12"
            out.append(Component(product, rev, cpe=cpe, purl=purl))
            continue
        out.append(Component(product, v1, cpe=cpe))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cves", type=int, default=300_000)
    ap.add_argument("--components", type=int, default=1000)
    ap.add_argument(
        "--osv-debian",
        type=int,
        default=60_000,
        help="DEBIAN-CVE records in the synthetic OSV Debian ecosystem",
    )
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument(
        "--reuse-db",
        action="store_true",
        help="skip generation and import; match against the database a --keep run left in --workdir",
    )
    args = ap.parse_args()
    if args.reuse_db and args.workdir is None:
        ap.error("--reuse-db needs --workdir (the folder of a --keep run)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cra-fw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "bench.db"
    results: dict[str, float | int | str] = {
        "cves": args.cves,
        "osv_debian_records": args.osv_debian,
        "components": args.components,
    }
    if args.reuse_db:
        if not db_path.exists():
            ap.error(f"--reuse-db: {db_path} does not exist; run once with --workdir {work} --keep")
        results = {"components": args.components, "reused_db": str(db_path)}
        return _match_only(db_path, args.components, results)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    try:
        t0 = time.perf_counter()
        files = generate(work, args.cves)
        osv = [osv_debian(work, args.osv_debian)] if args.osv_debian else []
        results["generate_s"] = round(time.perf_counter() - t0, 1)
        results["feed_gz_mb"] = round(sum(f.stat().st_size for f in files) / 1e6, 1)
        if osv:
            results["osv_zip_mb"] = round(osv[0].stat().st_size / 1e6, 1)

        env = {**os.environ, "CRA_FW_DB": str(db_path)}
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cra_fw", "db", "import", *map(str, files + osv)],
            env=env,
            capture_output=True,
            text=True,
        )
        results["import_s"] = round(time.perf_counter() - t0, 1)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time too: on a shared machine wall time mostly measures the neighbours
        results["import_cpu_s"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        results["import_peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        )
        size = sum(
            Path(str(db_path) + s).stat().st_size for s in ("", "-wal") if Path(str(db_path) + s).exists()
        )
        results["db_size_mb"] = round(size / 1e6, 1)

        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cra_fw", "db", "import", str(files[-1])],
            env=env,
            capture_output=True,
            text=True,
        )
        results["reimport_one_year_s"] = round(time.perf_counter() - t0, 1)
        results["reimport_output"] = proc.stdout.strip()[:120]

        _measure_match(db_path, args.components, results)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return _report(results)


def _measure_match(db_path: Path, count: int, results: dict) -> None:
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns import match_components

    t0 = time.perf_counter()
    db = open_feed_db(db_path)  # applies pending schema migrations (a one-time index build) before timing
    results["open_db_s"] = round(time.perf_counter() - t0, 1)
    results["cpe_match_rows"] = db.conn.execute("SELECT COUNT(*) FROM cpe_match").fetchone()[0]
    results["osv_affected_rows"] = db.conn.execute("SELECT COUNT(*) FROM osv_affected").fetchone()[0]
    comps = components(count, debian=results.get("osv_debian_records", 1) != 0)
    results["debian_components"] = sum(1 for c in comps if c.purl.startswith("pkg:deb/"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["load_avg_before_match"] = round(os.getloadavg()[0], 2)
    t0, c0 = time.perf_counter(), time.process_time()
    matches = match_components(comps, db)
    results["match_s"] = round(time.perf_counter() - t0, 2)
    results["match_cpu_s"] = round(time.process_time() - c0, 2)
    results["matches"] = len(matches)
    results["matches_by_purl"] = sum(1 for m in matches if m.match_method == "purl")
    results["resolved_by_distro"] = sum(
        1 for m in matches if m.triage is not None and m.triage.source.startswith("distro:")
    )
    results["match_peak_rss_mb"] = round(
        max(rss_before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), 1
    )
    results["load_avg_after_match"] = round(os.getloadavg()[0], 2)
    db.conn.close()


def _match_only(db_path: Path, count: int, results: dict) -> int:
    _measure_match(db_path, count, results)
    return _report(results)


def _report(results: dict) -> int:
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    checks = [("import < 300 s", results["import_s"] < 300)] if "import_s" in results else []
    checks.append(("match < 2 s CPU", results["match_cpu_s"] < 2))
    checks.append(("match < 2 s wall", results["match_s"] < 2))
    for name, ok in checks:
        print(f"target {name}:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
