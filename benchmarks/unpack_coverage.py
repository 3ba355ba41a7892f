#!/usr/bin/env python3
"""How much of each vendor Linux image cra-fw unpacks: files extracted, share of the image analysed,
and every region left unanalysed.

Runs ``cra-fw unpack --json`` on each image (default: the vendor Linux images in
``../shared/firmware*``) and reads the report: a byte of the image counts as analysed when
it lies in a layer that was extracted or identified all the way down.  Not analysed are:
``unknown`` gaps, ``failed`` and ``unsupported`` layers, and a wrapper's output file (vendor
header payload; a decompressed stream is read as it is) that nothing recognised and that is no file a device
would store (kind ``data``).  A gap inside a decompressed stream (the kernel's code beside an
initramfs it carries) is counted as analysed, since identify reads the stream as it is, and
reported apart as ``code_in_streams_share``.  Nested regions are mapped back to image bytes in proportion:
a region holding a tenth of a file that stands for 1 MB of the image counts as 100 KB.
Layers whose ``note`` says entries were unreadable are listed too.

Usage: python benchmarks/unpack_coverage.py [--json OUT] [IMAGE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CRA_FW = ROOT / ".venv" / "bin" / "cra-fw"

# the vendor Linux images of ../shared/firmware* (MANIFEST.tsv): routers, APs, their dumps
IMAGES = (
    "firmware-more/linux/dlink_DIR-300_REVB5_FIRMWARE_2.15.B01_WW.BIN",
    "firmware-more/linux/dlink_dir300_uart-flash-dump_repaired.bin",
    "firmware-more/linux/openwrt-18.06.1-ramips-mt7620-hc5661-squashfs-sysupgrade.bin",
    "firmware-more/linux/tozed_zlt-s12pro_kernel.uImage.bin",
    "firmware-more/linux/tozed_zlt-s12pro_rootfs_data.jffs2",
    "firmware/librarybox/openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin",
    "firmware/librarybox/openwrt-ar71xx-generic-tl-wr703n-v1-squashfs-factory.bin",
    "firmware/wifirush/openwrt-ar71xx-generic-om2p-squashfs-factory.bin",
    "firmware/wifirush/openwrt-ar71xx-generic-hornet-ub-squashfs-factory.bin",
    "firmware/wifirush/openwrt-ar71xx-generic-tl-wr841n-v8-squashfs-sysupgrade.bin",
    "firmware/binwalk/squashfs_v2.bin",
    "firmware/binwalk/arcadyan.bin",
    "firmware/fact/tpl_test.tpl",
    "firmware/fact/uboot_uboot.image_with_header",
    "firmware/emux/DV-MIPSEL-rootfs-mipsel.tar.bz2",
)

BAD = {"unknown", "failed", "unsupported"}
# layers whose output files are what a device stores: an opaque file in them is just a file
FILESYSTEMS = {
    "squashfs",
    "cramfs",
    "jffs2",
    "ubifs",
    "yaffs",
    "yaffs2",
    "ext",
    "extfs",
    "tar",
    "cpio",
    "zip",
    "romfs",
    "fat",
    "littlefs",
    "iso9660",
    "ar",
    "7z",
    "rar",
}
# a decompressed stream is the content itself (a kernel, a ramdisk): its bytes are read by
# identify as they are, so an unrecognised output of these is still analysed
STREAMS = {"lzma", "xz", "gzip", "bzip2", "zstd", "lz4", "lzo", "lzop", "zlib", "compress"}
NOT_REGULAR = {"directory", "symlink", "device", "fifo", "socket", "hardlink"}


def coverage(report: dict) -> dict:
    """Figures for one report (see the module docstring)."""
    layers = {layer["id"]: layer for layer in report["layers"]}
    size = report["image"]["size"]
    files_of = defaultdict(list)
    for f in report["files"]:
        files_of[f["layer_id"]].append(f)
    file_size = {(f["layer_id"], f["path"]): f["size"] for f in report["files"]}
    children = defaultdict(list)
    for layer in report["layers"]:
        if layer["parent_id"]:
            children[(layer["parent_id"], layer["parent_path"])].append(layer)

    weight: dict[str, float] = {}

    def file_weight(parent_id: str, path: str) -> float:
        if parent_id == "L0" and not path:
            return float(size)
        parent = layers[parent_id]
        outputs = [f for f in files_of[parent_id] if f["kind"] not in NOT_REGULAR]
        total = sum(f["size"] for f in outputs) or 1
        return layer_weight(parent_id) * file_size.get((parent_id, path), 0) / total if parent else 0.0

    def layer_weight(lid: str) -> float:
        if lid in weight:
            return weight[lid]
        layer = layers[lid]
        if layer["parent_id"] is None:
            weight[lid] = float(size)
            return weight[lid]
        parent_file = size if layer["parent_id"] == "L0" and not layer["parent_path"] else None
        if parent_file is None:
            parent_file = file_size.get((layer["parent_id"], layer["parent_path"]), 0)
        w = file_weight(layer["parent_id"], layer["parent_path"])
        weight[lid] = w * layer["size"] / parent_file if parent_file else 0.0
        return weight[lid]

    missing: list[dict] = []
    code = 0.0
    for layer in report["layers"]:
        parent = layers.get(layer["parent_id"] or "")
        if layer["format"] == "unknown" and parent is not None and parent["format"] in STREAMS:
            # a gap in a decompressed kernel beside its initramfs: code, read as it is
            code += layer_weight(layer["id"])
            continue
        if layer["status"] in BAD:
            missing.append(
                {
                    "what": f"{layer['id']} {layer['format']} {layer['status']}",
                    "where": f"{layer['parent_path'] or '/'} @{layer['offset']:#x} size={layer['size']}",
                    "image_bytes": round(layer_weight(layer["id"])),
                    "note": layer.get("note", "") or f"entropy {layer.get('entropy')}",
                }
            )
    wrappers = [layer for layer in report["layers"] if layer["format"] not in FILESYSTEMS | STREAMS | {"raw"}]
    for layer in wrappers:
        if layer["status"] in BAD:
            continue
        for f in files_of[layer["id"]]:
            if f["kind"] != "data" or children.get((layer["id"], f["path"])):
                continue
            missing.append(
                {
                    "what": f"{layer['id']} {layer['format']} output not recognised",
                    "where": f["path"],
                    "image_bytes": round(file_weight(layer["id"], f["path"])),
                    "note": f"{f['size']} bytes, kind data",
                }
            )
    partial = [
        f"{layer['id']} {layer['format']}: {layer['note']}"
        for layer in report["layers"]
        if layer["status"] not in BAD and "unreadable" in (layer.get("note") or "")
    ]
    lost = min(size, sum(m["image_bytes"] for m in missing))
    regular = sum(1 for f in report["files"] if f["kind"] not in NOT_REGULAR)
    return {
        "image": report["image"]["name"],
        "size": size,
        "entries": len(report["files"]),
        "regular_files": regular,
        "layers": len(report["layers"]),
        "chain": " > ".join(
            sorted({layer["format"] for layer in report["layers"] if layer["status"] not in BAD})
        ),
        "analysed_share": round(1 - lost / size, 4) if size else 0.0,
        "code_in_streams_share": round(code / size, 4) if size else 0.0,
        "not_analysed": missing,
        "partial": partial,
        "findings": sorted({f["rule_id"] for f in report["findings"] if f["rule_id"].startswith("unpack.")}),
    }


def run(image: Path, workdir: Path) -> dict:
    out = workdir / image.name
    proc = subprocess.run(
        [str(CRA_FW), "unpack", "--json", "-q", "-o", str(out), str(image)],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    report_path = out / "report.json"
    if not report_path.exists():
        return {"image": image.name, "error": proc.stderr[-500:], "exit": proc.returncode}
    result = coverage(json.loads(report_path.read_text()))
    result["exit"] = proc.returncode
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", type=Path)
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args()
    images = args.images or [SHARED / p for p in IMAGES if (SHARED / p).exists()]
    if not images:
        print("no images (../shared absent)", file=sys.stderr)
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="coverage-") as tmp:
        for image in images:
            r = run(image, Path(tmp))
            results.append(r)
            if "error" in r:
                print(f"{r['image']}: no report (exit {r['exit']}): {r['error']}")
                continue
            print(
                f"{r['image']}: {r['regular_files']} files ({r['entries']} entries), "
                f"{r['analysed_share']:.1%} analysed ({r['code_in_streams_share']:.1%} of it code in a "
                f"decompressed stream), exit {r['exit']}; {r['chain']}"
            )
            for m in r["not_analysed"]:
                print(
                    f"    not analysed: {m['what']} {m['where']} ~{m['image_bytes']} image bytes ({m['note']})"
                )
            for p in r["partial"]:
                print(f"    partial: {p}")
            for f in r["findings"]:
                print(f"    finding: {f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
