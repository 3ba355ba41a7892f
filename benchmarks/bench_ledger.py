#!/usr/bin/env python3
"""Ledger benchmark: `monitor` after a feed update, and `cases`, on a large ledger.

Builds (at benchmark time, in a temporary folder) a ledger of PRODUCTS x RELEASES x
COMPONENTS (default 1,000 x 20 x 300), written straight into the ledger tables
with bulk SQL (recording 20,000 scans is not what is measured), and synthetic NVD
and KEV feeds in their real formats, imported with the real importers.  Then:

1. import feed A, run monitor (baseline: everything is new);
2. import feed B (more advisories, some of them KEV-listed), run monitor: timed,
   target < 60 s; it opens the Article 14 cases;
3. list the cases with their clocks, overdue first: timed, target < 1 s.

    python benchmarks/bench_ledger.py [--products 1000 --releases 20 --components 300]

The advisories are synthetic (ids CVE-2099-*, products bench-pkg-*); only the
formats are real.  Prints one JSON object with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cra_fw.db import transaction  # noqa: E402
from cra_fw.ledger.clocks import format_utc, urgency_key  # noqa: E402
from cra_fw.ledger.monitor import run_monitor  # noqa: E402
from cra_fw.ledger.store import list_cases, open_ledger  # noqa: E402

NAMES = 900  # package names in the whole estate
VERSIONS = 8  # versions of each package over time
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _cpe(name: str, version: str) -> str:
    return f"cpe:2.3:a:{name}:{name}:{version}:*:*:*:*:*:*:*"


def build_ledger(db, products: int, releases: int, per_release: int, rng: random.Random) -> dict[str, int]:
    conn = db.conn
    stamp = format_utc(T0)
    comp_ids: dict[tuple[int, int], int] = {}
    with transaction(db):
        rows = []
        cid = 0
        for n in range(NAMES):
            for v in range(VERSIONS):
                cid += 1
                comp_ids[(n, v)] = cid
                name, version = f"bench-pkg-{n}", f"1.{v}.0"
                rows.append(
                    (
                        cid,
                        name,
                        version,
                        f"pkg:generic/{name}@{version}",
                        _cpe(name, version),
                        "",
                        "library",
                        "[]",
                    )
                )
        conn.executemany(
            "INSERT INTO components (id, name, version, purl, cpe, supplier, kind, licenses) "
            "VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO products (id, name, manufacturer, model, category, markets, created) "
            "VALUES (?,?,?,?,?,?,?)",
            [(p + 1, f"product-{p:04d}", "Bench GmbH", "", "", '["DE"]', stamp) for p in range(products)],
        )
        rid = 0
        for p in range(products):
            names = rng.sample(range(NAMES), per_release)
            rel_rows, link_rows = [], []
            for r in range(releases):
                rid += 1
                released = format_utc(T0 + timedelta(days=30 * r))
                rel_rows.append(
                    (rid, p + 1, f"{r}.0", released, f"{rid:064x}", f"fw-{rid}.bin", released, "", stamp)
                )
                # each release moves about a tenth of its packages to a newer version
                version_of = min(VERSIONS - 1, r * VERSIONS // releases)
                for i, n in enumerate(names):
                    v = version_of if (i + r) % 10 else max(0, version_of - 1)
                    link_rows.append((rid, comp_ids[(n, v)]))
            conn.executemany(
                "INSERT INTO releases (id, product_id, version, released_at, image_sha256, image_name, "
                "on_market_since, withdrawn_at, created) VALUES (?,?,?,?,?,?,?,?,?)",
                rel_rows,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO release_components (release_id, component_id) VALUES (?, ?)", link_rows
            )
    return {
        "components": len(comp_ids),
        "releases": rid,
        "release_components": conn.execute("SELECT COUNT(*) FROM release_components").fetchone()[0],
    }


def nvd_feed(path: Path, advisories: list[tuple[str, int, str]], modified: str) -> None:
    """(cve id, package index, end-excluding version) -> NVD CVE JSON 2.0 file."""
    items = []
    for cve, n, end in advisories:
        name = f"bench-pkg-{n}"
        items.append(
            {
                "cve": {
                    "id": cve,
                    "published": "2026-01-01T00:00:00.000",
                    "lastModified": modified,
                    "vulnStatus": "Analyzed",
                    "descriptions": [{"lang": "en", "value": f"Synthetic benchmark advisory for {name}."}],
                    "metrics": {
                        "cvssMetricV31": [
                            {
                                "type": "Primary",
                                "cvssData": {
                                    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": 9.8,
                                },
                            }
                        ]
                    },
                    "configurations": [
                        {
                            "nodes": [
                                {
                                    "operator": "OR",
                                    "negate": False,
                                    "cpeMatch": [
                                        {
                                            "vulnerable": True,
                                            "criteria": f"cpe:2.3:a:{name}:{name}:*:*:*:*:*:*:*:*",
                                            "versionEndExcluding": end,
                                        }
                                    ],
                                }
                            ]
                        }
                    ],
                }
            }
        )
    path.write_text(
        json.dumps({"format": "NVD_CVE", "version": "2.0", "timestamp": modified, "vulnerabilities": items})
    )


def kev_feed(path: Path, cves: list[str], released: str) -> None:
    path.write_text(
        json.dumps(
            {
                "title": "synthetic",
                "catalogVersion": released[:10].replace("-", "."),
                "dateReleased": released,
                "count": len(cves),
                "vulnerabilities": [
                    {
                        "cveID": c,
                        "vendorProject": "bench",
                        "product": "bench",
                        "vulnerabilityName": "synthetic",
                        "dateAdded": released[:10],
                        "shortDescription": "",
                        "requiredAction": "",
                        "dueDate": "",
                        "knownRansomwareCampaignUse": "Unknown",
                        "notes": "",
                    }
                    for c in cves
                ],
            }
        )
    )


def populate(db, work: Path, args: argparse.Namespace, rng: random.Random) -> dict[str, object]:
    """Build the ledger, import feed A, monitor, import feed B and KEV, monitor again (timed)."""
    from cra_fw.vulns.importers import import_path

    out: dict[str, object] = {}
    db.conn.execute("PRAGMA synchronous=NORMAL")
    t = time.monotonic()
    out.update(build_ledger(db, args.products, args.releases, args.components, rng))
    out["build_seconds"] = round(time.monotonic() - t, 1)

    feed_a = [
        (f"CVE-2099-{i:05d}", rng.randrange(NAMES), f"1.{rng.randrange(1, VERSIONS)}.0")
        for i in range(args.advisories)
    ]
    extra = [
        (f"CVE-2099-{args.advisories + i:05d}", rng.randrange(NAMES), f"1.{rng.randrange(1, VERSIONS)}.0")
        for i in range(max(1, args.advisories // 10))
    ]
    nvd_feed(work / "nvd-a.json", feed_a, "2026-06-01T00:00:00.000")
    nvd_feed(work / "nvd-b.json", extra, "2026-06-02T00:00:00.000")
    kev_feed(
        work / "kev-b.json",
        [c for c, _n, _e in rng.sample(feed_a + extra, args.kev)],
        "2026-06-02T00:00:00.000Z",
    )

    import_path(db, work / "nvd-a.json")
    t = time.monotonic()
    base = run_monitor(db, T0 + timedelta(days=600))
    out["monitor_baseline_seconds"] = round(time.monotonic() - t, 2)
    out["monitor_baseline_changes"] = len(base.changes)

    import_path(db, work / "nvd-b.json")
    import_path(db, work / "kev-b.json")
    t, c = time.monotonic(), time.process_time()
    update = run_monitor(db, T0 + timedelta(days=601))
    out["monitor_after_update_seconds"] = round(time.monotonic() - t, 2)
    out["monitor_after_update_cpu_seconds"] = round(time.process_time() - c, 2)
    out["monitor_after_update_changes"] = len(update.changes)
    out["cases_opened"] = len(update.cases_opened)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--components", type=int, default=300)
    parser.add_argument("--advisories", type=int, default=2000, help="advisories in feed A (B adds 10%%)")
    parser.add_argument("--kev", type=int, default=25, help="advisories of feed B that are KEV-listed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--keep", type=Path, default=None, help="keep the database at this path")
    args = parser.parse_args()

    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    out: dict[str, object] = {
        "products": args.products,
        "releases_per_product": args.releases,
        "components_per_release": args.components,
    }
    try:
        db = open_ledger(args.keep or work / "ledger.db")
        out.update(populate(db, work, args, rng))

        now = T0 + timedelta(days=603)
        t, c = time.monotonic(), time.process_time()
        cases = sorted(list_cases(db), key=lambda c: urgency_key(c.clocks, now, c.id))
        out["cases_seconds"] = round(time.monotonic() - t, 3)
        out["cases_cpu_seconds"] = round(time.process_time() - c, 3)
        out["cases_listed"] = len(cases)
        out["load_average"] = [round(x, 1) for x in os.getloadavg()]  # wall times suffer on a busy machine
        out["targets_met_in_cpu_time"] = (
            out["monitor_after_update_cpu_seconds"] < 60 and out["cases_cpu_seconds"] < 1
        )
        out["targets_met"] = out["monitor_after_update_seconds"] < 60 and out["cases_seconds"] < 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0 if out.get("targets_met") else 1


if __name__ == "__main__":
    sys.exit(main())
