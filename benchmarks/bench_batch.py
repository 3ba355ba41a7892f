#!/usr/bin/env python3
"""`cra-fw batch` with 1 and 2 workers on the same 50 images: speed-up, same results, memory.

The images are the fixture images and the real ones in ../shared/firmware* (when
present), repeated with distinct bytes (a 32-byte trailer naming the copy) until
there are ``--images`` of them.  Both runs use the embedded LocalCluster, the
fixture feeds, and empty output folders; each is timed from the command's start
to its exit (cluster start-up included).  Load average is recorded before and
after each run: a speed-up measured while other processes compete for the cores
means nothing, and the output says so (``quiet`` false) when the 1-minute load
before a run exceeded ``--max-load``.

Also measured: the client's ledger write per release (the one serial part), and
per-image cost (CPU seconds of the scan children, from the workers' reports).

    python benchmarks/bench_batch.py [--images 50] [--out benchmarks/results/batch.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "fixtures" / "images"
MAX_IMAGE = 16 << 20


def sources() -> list[Path]:
    found = sorted(p for p in FIXTURES.iterdir() if p.is_file() and p.suffix != ".json")  # ground truth
    for folder in ("firmware", "firmware-more"):
        base = SHARED / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if (
                path.is_file()
                and path.name != "MANIFEST.tsv"
                and "keys" not in path.parts
                and 50_000 <= path.stat().st_size <= MAX_IMAGE
            ):
                found.append(path)
    return found


def make_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    base = sources()
    out = []
    for i in range(count):
        src = base[i % len(base)]
        dst = folder / f"{i:03d}-{src.name}"
        with open(src, "rb") as fh, open(dst, "wb") as w:
            shutil.copyfileobj(fh, w)
            w.write(f"cra-fw-bench copy {i:05d}".encode().ljust(32, b"\0"))
        out.append(dst)
    return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class TreeSampler(threading.Thread):
    """Peak memory of each Dask worker's process tree (worker, its scan runner, the scan child).

    The LocalCluster's workers are the command's children started by multiprocessing's
    spawn; each tree's memory is the sum of its processes' PSS (shared pages counted
    once; RSS where PSS is unavailable), sampled every 0.5 s.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self.stop = threading.Event()

    @staticmethod
    def _mem(proc) -> int:
        import psutil

        try:
            return int(proc.memory_full_info().pss)
        except (psutil.Error, AttributeError):
            try:
                return int(proc.memory_info().rss)
            except psutil.Error:
                return 0

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.wait(0.5):
            try:
                children = root.children()
            except psutil.Error:
                return
            for child in children:
                try:
                    cmd = " ".join(child.cmdline())
                    if "spawn_main" not in cmd or "resource_tracker" in cmd:
                        continue
                    tree = [child, *child.children(recursive=True)]
                except psutil.Error:
                    continue
                total = sum(self._mem(p) for p in tree)
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), total)


def run_batch(images: Path, out: Path, workers: int, db: Path, manifest: Path | None) -> dict:
    args = [sys.executable, "-m", "cra_fw", "batch", str(manifest or images), "-o", str(out)]
    args += ["--workers", str(workers), "--db", str(db), "--json"]
    before = loadavg()
    start = time.monotonic()
    cpu_before = os.times()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        stdout, _ = proc.communicate()
        sampler.stop.set()
        sampler.join()
        err.seek(0)
        stderr = err.read()
    seconds = time.monotonic() - start
    cpu_after = os.times()
    after = loadavg()
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    results = [e for e in lines if e["event"] == "image"]
    per_worker: dict[str, int] = {}
    for r in results:
        per_worker[r["worker"]] = max(per_worker.get(r["worker"], 0), r["peak_rss"])
    cpu = [r["cpu_seconds"] for r in results if r["status"] == "analysed"]
    return {
        "workers": workers,
        "exit": proc.returncode,
        "seconds": round(seconds, 2),
        "load_before": before,
        "load_after": after,
        "images": len(results),
        "analysed": sum(1 for r in results if r["status"] == "analysed"),
        "failed": [(r["name"], r["reason"]) for r in results if r["status"] == "failed"],
        "scan_seconds_sum": round(sum(r["seconds"] for r in results), 2),
        "scan_cpu_seconds_sum": round(sum(cpu), 2),
        "scan_cpu_seconds_median": round(statistics.median(cpu), 3) if cpu else None,
        # everything the command and its processes used (client, scheduler, workers, scans)
        "cpu_seconds_all": round(
            (cpu_after.children_user + cpu_after.children_system)
            - (cpu_before.children_user + cpu_before.children_system),
            2,
        ),
        "peak_scan_rss_mib_per_worker": {w: round(v / 2**20, 1) for w, v in sorted(per_worker.items())},
        "peak_worker_tree_mib": sorted(round(v / 2**20, 1) for v in sampler.peaks.values()),
        "stderr_tail": stderr[-500:] if proc.returncode not in (0, 1) else "",
    }


def normalised_reports(out: Path) -> dict[str, dict]:
    sys.path.insert(0, str(ROOT / "scripts"))
    import report_snapshot

    found = {}
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and len(p.name) == 64):
        data = {}
        for name in report_snapshot.OUTPUTS.values():
            path = folder / name
            if path.exists():
                # the scan ran in OUTDIR/.partial/<sha>-<random>/out before its folder was renamed
                text = re.sub(r"/\.partial/[0-9a-f]{16}-[a-z0-9_]+/out", "/" + folder.name, path.read_text())
                data[name] = report_snapshot.normalise(json.loads(text), str(folder))
        found[folder.name] = data
    return found


def differences(one: Path, two: Path) -> list[str]:
    """Where the two runs' per-image outputs differ (after removing timestamps and paths)."""
    import report_snapshot

    a, b = normalised_reports(one), normalised_reports(two)
    problems: list[str] = [f"only in one run: {sha}" for sha in sorted(set(a) ^ set(b))]
    for sha in sorted(set(a) & set(b)):
        found: list[str] = []
        report_snapshot._diff(a[sha], b[sha], "", found)
        problems += [f"{sha[:12]} {p}" for p in found[:5]]
    return problems


def ledger_cost(out: Path, db: Path, work: Path, manifest_items: list[tuple[str, str]]) -> dict:
    """Seconds per release for the client's ledger writer, on the reports the batch wrote."""
    from cra_fw.batch.ledger import LedgerWriter
    from cra_fw.batch.records import BatchItem, ImageResult, ImageStatus

    ledger = work / "ledger-timing.db"
    shutil.copy(db, ledger)
    writer = LedgerWriter(ledger)
    times = []
    for i, (path, sha) in enumerate(manifest_items):
        item = BatchItem(path=path, product=f"product-{i % 10}", version=f"1.{i}", sha256=sha)
        result = ImageResult(sha, Path(path).name, 0, ImageStatus.ANALYSED)
        start = time.monotonic()
        status = writer.record(result, item, out)
        times.append(time.monotonic() - start)
        assert status == "recorded", status
    writer.close()
    return {
        "releases": len(times),
        "seconds_median": round(statistics.median(times), 4),
        "seconds_max": round(max(times), 4),
        "seconds_total": round(sum(times), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument(
        "--max-load", type=float, default=1.0, help="1-minute load above which a run is not quiet"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    import report_snapshot

    with tempfile.TemporaryDirectory(prefix="cra-fw-bench-batch-") as tmp:
        work = Path(tmp)
        images = make_images(work / "images", args.images)
        db = work / "feeds.db"
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        report_snapshot.build_feed_db(db, env)
        runs = []
        for workers in (1, 2):
            runs.append(run_batch(work / "images", work / f"out-{workers}", workers, db, None))
            print(json.dumps(runs[-1]), file=sys.stderr)
        diffs = differences(work / "out-1", work / "out-2")
        same = not diffs
        shas = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in images}
        ledger = ledger_cost(work / "out-1", db, work, [(str(p), s) for s, p in shas.items()])
        sizes = [p.stat().st_size for p in images]
    one, two = runs
    result = {
        "benchmark": "bench_batch",
        "machine": {"cpus": os.cpu_count()},
        "images": args.images,
        "distinct_sources": len(sources()),
        "bytes_total": sum(sizes),
        "runs": runs,
        "speedup_2_over_1": round(one["seconds"] / two["seconds"], 3) if two["seconds"] else None,
        "same_results": same,
        "differences": diffs[:20],
        "per_image_seconds_1_worker": round(one["seconds"] / args.images, 3),
        "per_image_scan_seconds_mean": round(one["scan_seconds_sum"] / max(1, one["images"]), 3),
        "per_image_scan_cpu_seconds_mean": round(one["scan_cpu_seconds_sum"] / max(1, one["analysed"]), 3),
        "per_image_cpu_seconds_all_1_worker": round(one["cpu_seconds_all"] / args.images, 3),
        "ledger_write_per_release": ledger,
        "quiet": all(r["load_before"][0] <= args.max_load for r in runs),
        "max_load": args.max_load,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if same and one["analysed"] == two["analysed"] and not one["failed"] and not two["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
