#!/usr/bin/env python3
"""Scan fixture images and keep their normalised reports, to show a change alters no behaviour.

    scripts/report_snapshot.py scan OUT [--images DIR] [--only NAME ...] [--source TREE] [-j N]
    scripts/report_snapshot.py compare BEFORE AFTER

``scan`` runs the real CLI (``python -m cra_fw scan``) on every image in
``fixtures/images/`` (or ``--images``), with a feed database built from
``fixtures/feeds/`` and an empty HOME and cache, and writes one
``<image>.json`` per image: the exit status plus report.json, CycloneDX,
SPDX, SARIF and VEX with what legitimately differs between two runs removed
(timestamps, timings, serial numbers, the output folder).  ``--source TREE``
scans with the cra_fw package of another checkout (e.g. a ``git worktree`` of
main), so "before" and "after" come from one script.  ``compare`` prints the
first differences per image and exits 1 when any image differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEEDS = (
    "nvd/nvdcve-2.0-fixture.json.gz",
    "nvd/api-page-0.json",
    "osv/Debian-all.zip",
    "kev/known_exploited_vulnerabilities.json",
    "epss/epss_scores-fixture.csv.gz",
)
OUTPUTS = {
    "report": "report.json",
    "cyclonedx": "sbom.cdx.json",
    "spdx": "sbom.spdx.json",
    "sarif": "findings.sarif",
    "vex": "vex.cdx.json",
}
# Keys whose values are times of day or run-specific ids, at any depth.
VOLATILE_KEYS = {
    "started",
    "finished",
    "timestamp",
    "created",
    "serialNumber",
    "verified_at",
    "startTimeUtc",
    "endTimeUtc",
    "documentNamespace",
    "age_days",  # feed age: grows with the wall clock between two runs
}
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalise(value: object, outdir: str) -> object:
    """``value`` with run-specific parts replaced by fixed markers."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            if key in VOLATILE_KEYS and isinstance(item, str):
                out[key] = "<volatile>"
            elif key == "outputs" and isinstance(item, list):
                # the files' own hashes change with their timestamps; the files are compared normalised
                out[key] = [
                    {k: ("<volatile>" if k == "sha256" else v) for k, v in o.items()}
                    if isinstance(o, dict)
                    else o
                    for o in item
                ]
            elif key == "stats" and isinstance(item, dict):
                out[key] = {k: v for k, v in item.items() if not k.startswith("seconds_")}
            else:
                out[key] = normalise(item, outdir)
        return out
    if isinstance(value, list):
        return [normalise(item, outdir) for item in value]
    if isinstance(value, str):
        text = value.replace(outdir, "<out>")
        text = re.sub(r"<out>/\.work-[A-Za-z0-9_]+", "<out>/<work>", text)
        text = re.sub(r"/tmp/[A-Za-z0-9_.-]+", "<tmp>", text)
        text = _TIMESTAMP.sub("<time>", text)
        return _UUID.sub("<uuid>", text)
    return value


def build_feed_db(path: Path, env: dict[str, str]) -> None:
    for rel in FEEDS:
        cmd = [sys.executable, "-m", "cra_fw", "db", "import", str(ROOT / "fixtures" / "feeds" / rel)]
        proc = subprocess.run(
            [*cmd, "--db", str(path)], capture_output=True, text=True, env=env, cwd=path.parent, check=False
        )
        if proc.returncode != 0:
            raise SystemExit(f"feed import failed: {' '.join(cmd)}\n{proc.stderr}")


def scan_one(image: Path, work: Path, db: Path, env: dict[str, str]) -> dict[str, object]:
    outdir = work / "out" / image.name
    proc = subprocess.run(
        [sys.executable, "-m", "cra_fw", "scan", str(image), "-o", str(outdir), "-q", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,  # not the checkout: `python -m` puts the working folder first on sys.path
        check=False,
        timeout=1800,
    )
    snap: dict[str, object] = {"image": image.name, "exit": proc.returncode}
    for name, filename in OUTPUTS.items():
        path = outdir / filename
        snap[name] = normalise(json.loads(path.read_text()), str(outdir)) if path.exists() else None
    if snap["report"] is None:  # say why, or a broken scan would only show as a missing report
        snap["stderr"] = normalise(proc.stderr[-2000:], str(outdir))
    shutil.rmtree(outdir, ignore_errors=True)
    return snap


def images_in(folder: Path, only: list[str]) -> list[Path]:
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "ground-truth.json")
    return [p for p in found if not only or p.name in only]


def cmd_scan(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cra-fw-snapshot-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CRA_FW_"))}
        env.update(HOME=str(work / "home"), XDG_CACHE_HOME=str(work / "cache"))
        source = Path(args.source).resolve() if args.source else ROOT
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH", "")]))
        if (source / "signatures").is_dir():  # that checkout's detection data, not the installed one
            env["CRA_FW_SIGNATURES"] = str(source / "signatures")
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        db = work / "feeds.db"
        build_feed_db(db, env)
        images = images_in(Path(args.images), args.only)
        with ThreadPoolExecutor(args.jobs) as pool:
            snaps = list(pool.map(lambda image: scan_one(image, work, db, env), images))
    for snap in snaps:
        (out / f"{snap['image']}.json").write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
        print(f"{snap['image']}: exit {snap['exit']}")
    return 0


def _diff(a: object, b: object, where: str, out: list[str], limit: int = 10) -> None:
    if len(out) >= limit or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key not in a else 'before'}")
            else:
                _diff(a[key], b[key], f"{where}.{key}", out, limit)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{where}[{i}]", out, limit)
        return
    out.append(f"{where}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}")


def cmd_compare(args: argparse.Namespace) -> int:
    before, after = Path(args.before), Path(args.after)
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    differing = 0
    for name in names:
        if not (before / name).exists() or not (after / name).exists():
            print(f"{name}: only in {'after' if not (before / name).exists() else 'before'}")
            differing += 1
            continue
        problems: list[str] = []
        # normalised again, so snapshots taken before a normalisation rule was added compare too
        old = normalise(json.loads((before / name).read_text()), "\0")
        new = normalise(json.loads((after / name).read_text()), "\0")
        _diff(old, new, "", problems)
        if problems:
            differing += 1
            print(f"{name}: differs")
            for line in problems:
                print(f"  {line}")
        else:
            print(f"{name}: equal")
    print(f"{len(names) - differing} of {len(names)} images equal")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="scan the images, write normalised snapshots into OUT")
    scan.add_argument("out")
    scan.add_argument("--images", default=str(ROOT / "fixtures" / "images"))
    scan.add_argument("--only", action="append", default=[], help="image file name (repeatable)")
    scan.add_argument("--source", help="checkout whose cra_fw package is scanned with (default: this one)")
    scan.add_argument("-j", "--jobs", type=int, default=2)
    compare = sub.add_parser("compare", help="compare two snapshot folders")
    compare.add_argument("before")
    compare.add_argument("after")
    args = parser.parse_args(argv)
    return cmd_scan(args) if args.command == "scan" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
