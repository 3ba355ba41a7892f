#!/usr/bin/env python3
"""Unpacking speed and memory: cra-fw vs plain unblob vs `binwalk -Me`, same inputs, same run.

Inputs: every fixture image, the real images in ../shared/firmware when present, and a
large (>= 200 MB) flash image built here from real files (cached in benchmarks/results/).
Prints wall time and peak RSS per tool and input, and the ratios cra-fw/unblob.

Plain unblob needs `sasquatch` for squashfs, which Debian lacks; so that it does the same
work, it gets a `sasquatch` shim on PATH that calls squashfs-tools' unsquashfs (the tool
cra-fw uses).  Usage: python benchmarks/bench_unpack.py [--skip-large] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "firmware"
sys.path.insert(0, str(ROOT / "benchmarks"))
from rss_by_process import process_tree  # noqa: E402

LARGE_CACHE = ROOT / "benchmarks" / ".cache"  # built images, not committed

SHIM = """#!/bin/sh
# sasquatch stand-in for the benchmark: drop sasquatch-only options, call unsquashfs
args=""
for a in "$@"; do
  case "$a" in -le|-be|-no-exit-code|-c) ;; *) args="$args '$a'";; esac
done
eval exec unsquashfs -no-progress $args
"""


def _anon_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, int, int, int]:
    """(wall seconds, peak RSS in KiB of the largest process, peak anonymous KiB of the whole
    process tree, exit status).

    Peak RSS (getrusage) also counts pages of files a tool maps, such as the image itself;
    anonymous memory (heap, sampled every 50 ms from /proc) is what grows when a tool loads
    data instead of streaming it.
    """
    start = time.monotonic()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M", *cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_anon = 0
    while proc.poll() is None:
        peak_anon = max(peak_anon, sum(_anon_kib(p) for p in process_tree(proc.pid)[1:]))
        time.sleep(0.05)
    stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.monotonic() - start
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip().isdigit()]
    rss = int(lines[-1]) if lines else 0
    return wall, rss, peak_anon, proc.returncode


def build_large(target: Path, size_mb: int = 200) -> Path:
    """A flash image: uImage(kernel) + squashfs(gzip) at 0x200000 + 0xFF padding.

    The squashfs holds the same ~48 MB of real files (the host's /usr/bin and libraries)
    whatever ``size_mb`` is, plus incompressible asset files that make up the size: images of
    different sizes then differ in bytes, not in file count, which is what "memory flat in
    image size" is about (per-file metadata in the report grows with the file count).
    """
    if target.exists() and target.stat().st_size >= size_mb * 1024 * 1024 * 0.9:
        return target
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        t = Path(tmp)
        root = t / "root"
        root.mkdir()
        budget = 48 * 1024 * 1024
        copied = 0
        for source in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
            for src in sorted(Path(source).iterdir()):
                if copied >= budget:
                    break
                if src.is_symlink() or not src.is_file():
                    continue
                dest = root / src.relative_to("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(src, dest)
                except OSError:
                    continue
                copied += dest.stat().st_size
        assets = root / "usr" / "share" / "assets"
        assets.mkdir(parents=True)
        filler = max(0, size_mb - 24) * 1024 * 1024  # the real files compress to about 20 MB
        pieces = 8
        for i in range(pieces):
            with open(assets / f"blob-{i}.bin", "wb") as out:
                left = filler // pieces
                while left > 0:
                    n = min(left, 1 << 20)
                    out.write(os.urandom(n))
                    left -= n
        sqfs = t / "rootfs.sqfs"
        subprocess.run(
            ["mksquashfs", str(root), str(sqfs), "-comp", "gzip", "-noappend", "-quiet", "-processors", "2"],
            check=True,
        )
        kernel = t / "kernel.bin"
        kernel.write_bytes(os.urandom(1024) * 1024)
        uimage = t / "kernel.uimg"
        subprocess.run(
            [
                "mkimage",
                "-A",
                "arm",
                "-O",
                "linux",
                "-T",
                "kernel",
                "-C",
                "none",
                "-a",
                "0x8000",
                "-e",
                "0x8000",
                "-n",
                "bench",
                "-d",
                str(kernel),
                str(uimage),
            ],
            check=True,
            capture_output=True,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            out.write(uimage.read_bytes())
            out.write(b"\xff" * (0x200000 - out.tell()))
            with open(sqfs, "rb") as src:
                shutil.copyfileobj(src, out)
            pad = (-out.tell()) % (1 << 20)
            out.write(b"\xff" * pad)
    return target


def _memory_growth(rows: list[dict], large: list[str], tools: list[str]) -> dict:
    """Peak RSS of each tool on the smallest vs the largest large image: flat means ~1.0x."""
    by_name = {r["input"]: r for r in rows}
    present = [by_name[n] for n in large if n in by_name]
    if len(present) < 2:
        return {}
    small, big = min(present, key=lambda r: r["bytes"]), max(present, key=lambda r: r["bytes"])
    out: dict = {
        "small": small["input"],
        "large": big["input"],
        "size_ratio": round(big["bytes"] / small["bytes"], 2),
        "lines": [],
    }
    for tool in tools:
        a, b = small[tool]["peak_rss_kib"], big[tool]["peak_rss_kib"]
        c, d = small[tool]["peak_anon_kib"], big[tool]["peak_anon_kib"]
        out[tool] = {
            "small_mib": round(a / 1024, 1),
            "large_mib": round(b / 1024, 1),
            "rss_ratio": round(b / max(a, 1), 2),
            "anon_small_mib": round(c / 1024, 1),
            "anon_large_mib": round(d / 1024, 1),
            "anon_ratio": round(d / max(c, 1), 2),
        }
        out["lines"].append(
            f"{tool}: peak RSS {a / 1024:.0f} MiB at {small['bytes'] / 1e6:.0f} MB, "
            f"{b / 1024:.0f} MiB at {big['bytes'] / 1e6:.0f} MB (x{b / max(a, 1):.2f}); "
            f"peak anonymous memory of all its processes {c / 1024:.0f} -> {d / 1024:.0f} MiB "
            f"(x{d / max(c, 1):.2f})"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument(
        "--large-sizes",
        default="50,200",
        help="sizes in MB of the large flash images (two or more show whether memory is flat)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and input (median wall time)")
    ap.add_argument("--repeat-large", type=int, default=1, help="runs per tool on the large images")
    ap.add_argument("--only", action="append", default=[], help="substring of input names to run")
    ap.add_argument("--out", type=Path, default=RESULTS / "unpack.json", help="where the JSON results go")
    args = ap.parse_args()
    inputs = sorted(
        p for p in (ROOT / "fixtures" / "images").iterdir() if p.is_file() and not p.name.endswith(".json")
    )
    if SHARED.exists():
        inputs += sorted(
            p for p in SHARED.glob("*/*") if p.is_file() and p.suffix in (".bin", ".itb", ".img")
        )
    large: list[Path] = []
    if not args.skip_large:
        for mb in (int(x) for x in args.large_sizes.split(",") if x.strip()):
            large.append(build_large(LARGE_CACHE / f"large-flash-{mb}.bin", mb))
        inputs += large
    if args.only:
        inputs = [p for p in inputs if any(s in p.name for s in args.only)]
    cra = shutil.which("cra-fw") or str(Path(sys.executable).with_name("cra-fw"))
    unblob = shutil.which("unblob") or str(Path(sys.executable).with_name("unblob"))
    shim_dir = Path(tempfile.mkdtemp(prefix="bench-shim-"))
    (shim_dir / "sasquatch").write_text(SHIM)
    (shim_dir / "sasquatch").chmod(0o755)
    shim_env = dict(os.environ, PATH=f"{shim_dir}:{os.environ['PATH']}")
    tools = {
        "cra-fw": lambda img, out: [cra, "unpack", str(img), "-o", str(out), "-q"],
        "unblob": lambda img, out: [unblob, "-e", str(out), str(img)],
        "binwalk": lambda img, out: ["binwalk", "-Me", "--run-as=root", "-q", "-C", str(out), str(img)],
    }
    if inputs:
        # one untimed run per tool first: the first run of each pays for cold imports from disk
        for name, make in tools.items():
            with tempfile.TemporaryDirectory(prefix=f"bench-warm-{name}-") as tmp:
                out = Path(tmp) / "out"
                out.mkdir()
                timed(make(inputs[0], out), Path(tmp), shim_env if name == "unblob" else None)
    rows = []
    print(
        f"{'input':<58} {'MB':>7} "
        + " ".join(f"{t + ' s':>10} {t + ' MiB':>11}" for t in tools)
        + f" {'cra/unblob':>10}"
    )
    for image in inputs:
        row = {"input": image.name, "bytes": image.stat().st_size}
        for name, make in tools.items():
            walls, rsss, anons = [], [], []
            for _ in range(args.repeat_large if image in large else args.repeat):
                with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                    out = Path(tmp) / "out"
                    out.mkdir()
                    wall, rss, anon, status = timed(
                        make(image, out), Path(tmp), shim_env if name == "unblob" else None
                    )
                walls.append(wall)
                rsss.append(rss)
                anons.append(anon)
            row[name] = {
                "seconds": round(statistics.median(walls), 3),
                "peak_rss_kib": max(rsss),
                "peak_anon_kib": max(anons),
                "status": status,
            }
        row["ratio_cra_unblob"] = round(row["cra-fw"]["seconds"] / max(row["unblob"]["seconds"], 1e-6), 3)
        rows.append(row)
        print(
            f"{image.name[:58]:<58} {row['bytes'] / 1e6:>7.1f} "
            + " ".join(f"{row[t]['seconds']:>10.2f} {row[t]['peak_rss_kib'] / 1024:>11.1f}" for t in tools)
            + f" {row['ratio_cra_unblob']:>10.2f}"
        )
    total = {t: sum(r[t]["seconds"] for r in rows) for t in tools}
    print(
        f"{'TOTAL':<58} {'':>7} "
        + " ".join(f"{total[t]:>10.2f} {'':>11}" for t in tools)
        + f" {total['cra-fw'] / max(total['unblob'], 1e-6):>10.2f}"
    )
    flat = _memory_growth(rows, [p.name for p in large], list(tools))
    for line in flat.get("lines", []):
        print(line)
    fixture_rows = [r for r in rows if r["input"] not in {p.name for p in large}]
    ratios = sorted(r["ratio_cra_unblob"] for r in fixture_rows)
    summary = {
        "max_ratio_cra_unblob": ratios[-1] if ratios else None,
        "median_ratio_cra_unblob": statistics.median(ratios) if ratios else None,
        "repeat": args.repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"rows": rows, "total_seconds": total, "summary": summary, "memory_growth": flat}, indent=1
        )
    )
    shutil.rmtree(shim_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
