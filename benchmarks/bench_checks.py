#!/usr/bin/env python3
"""Benchmark the checks stage.

1. All checks on the largest squashfs fixture image (unpacked with unsquashfs,
   inventoried by the real inventory stage).
2. All checks on a ~200 MB tree built from the unpacked fixture root filesystems
   (copied until the size is reached; real Debian binaries, real configs).
3. The hardening pass (ELF facts read by the inventory's reader + verdicts) vs
   checksec.py on the same ELF files, in one run.

    python benchmarks/bench_checks.py [--size-mb 200] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cra_fw.checks import run  # noqa: E402
from cra_fw.checks.hardening import verdicts  # noqa: E402
from cra_fw.context import ScanOptions  # noqa: E402
from cra_fw.inventory.elf import read_elf_info  # noqa: E402
from tests.checks.conftest import tree_context  # noqa: E402

IMAGES = ROOT / "fixtures" / "images"


def unsquash(image: Path, dest: Path) -> Path:
    subprocess.run(
        ["unsquashfs", "-no-xattrs", "-q", "-d", str(dest), str(image)], check=True, capture_output=True
    )
    return dest


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def timed_checks(root: Path, workers: int) -> dict:
    opts = ScanOptions(workers=workers, progress=False)
    t0 = time.perf_counter()
    ctx = tree_context(root, opts)
    t1 = time.perf_counter()
    result = run(ctx)
    t2 = time.perf_counter()
    return {
        "files": len(ctx.files),
        "bytes": tree_size(root),
        "inventory_s": round(t1 - t0, 3),
        "checks_s": round(t2 - t1, 3),
        "findings": len(result.findings),
        "services": len(result.services),
        "elf": len(result.hardening),
        "per_check_s": result.timings,
    }


def hardening_vs_checksec(root: Path) -> dict:
    elves = [
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.open("rb").read(4) == b"\x7fELF"
    ]
    # cra-fw: the inventory reads the ELF facts once (shared with identification), then the
    # hardening stage turns facts into verdicts; both are timed, separately and together
    t0 = time.perf_counter()
    infos = [read_elf_info(p.read_bytes()) for p in elves]
    t1 = time.perf_counter()
    ours = sum(
        1
        for p, info in zip(elves, infos, strict=True)
        if info is not None and verdicts(str(p), (), info) is not None
    )
    t2 = time.perf_counter()
    out = {
        "elf_files": len(elves),
        "cra_fw_fact_read_s": round(t1 - t0, 3),
        "cra_fw_verdicts_s": round(t2 - t1, 4),
        "cra_fw_total_s": round(t2 - t0, 3),
        "cra_fw_verdicts": ours,
    }
    try:
        from checksec.elf import ELFSecurity
    except ImportError:
        out["checksec_py"] = "not installed"
        return out
    t3 = time.perf_counter()
    done = 0
    for p in elves:
        try:
            _ = ELFSecurity(p).checksec_state
            done += 1
        except Exception:  # noqa: BLE001 - count what it can do
            pass
    out.update({"checksec_py_s": round(time.perf_counter() - t3, 3), "checksec_py_files": done})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sqfs = sorted(IMAGES.glob("*.sqfs"), key=lambda p: p.stat().st_size)
    if not sqfs or shutil.which("unsquashfs") is None:
        print("need fixtures/images/*.sqfs and unsquashfs", file=sys.stderr)
        return 2
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        tmpd = Path(tmp)
        trees = [unsquash(img, tmpd / img.stem) for img in sqfs]
        largest = sqfs[-1]
        report["largest_fixture"] = {"image": largest.name, **timed_checks(trees[-1], args.workers)}
        print(json.dumps(report["largest_fixture"], indent=1))
        big = tmpd / "big"
        big.mkdir()
        target, copies = args.size_mb * 1024 * 1024, 0
        size = 0
        while size < target:
            for t in trees:
                dest = big / f"copy{copies:03d}-{t.name}"
                shutil.copytree(t, dest, symlinks=True)
                size += tree_size(dest)
                copies += 1
                if size >= target:
                    break
        report["big_tree"] = {"copies": copies, **timed_checks(big, args.workers)}
        print(json.dumps(report["big_tree"], indent=1))
        report["hardening_vs_checksec_py"] = hardening_vs_checksec(big)
        print(json.dumps(report["hardening_vs_checksec_py"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
