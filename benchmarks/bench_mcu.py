"""Benchmark: a 4 MB ESP32-C3 flash dump through cra-fw, esptool image-info and cve-bin-tool.

The input is real: the ESPHome 2025.9.1 factory image from shared/firmware-more/mcu (bootloader,
partition table, app) plus an NVS partition made by Espressif's esp-idf-nvs-partition-gen (Wi-Fi
and MQTT credentials) at the table's nvs offset, merged by ``esptool merge-bin --pad-to-size 4MB``
into fixtures/.cache/mcu-bench/flash-4mb.bin.  Each tool runs on that same file in the same run:

* ``cra-fw scan`` (unpack, identify, checks, SBOMs): wall time, layers, components, MCU findings;
* ``esptool image-info``: what the chip vendor's tool reads from the same file (the first image);
* cve-bin-tool's VersionScanner (offline, see cve_bin_tool_runner.py) on a folder holding only the
  file: wall time and the (vendor, product, version) it finds.

    python benchmarks/bench_mcu.py [--cve-bin-tool VENV/bin/python] [--json benchmarks/results/mcu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTORY = ROOT.parent / "shared" / "firmware-more" / "mcu" / "esp32c3_esphome-2025.9.1_firmware.factory.bin"
CACHE = ROOT / "fixtures" / ".cache" / "mcu-bench"
BIN = Path(sys.executable).parent
NVS_CSV = """key,type,encoding,value
nvs.net80211,namespace,,
sta.ssid,data,string,BenchNet
sta.pswd,data,string,bench-wifi-passphrase
esphome,namespace,,
mqtt_password,data,string,bench-mqtt-secret
"""


def _tool(name: str) -> str:
    local = BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def build() -> Path:
    out = CACHE / "flash-4mb.bin"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "nvs.csv").write_text(NVS_CSV)
    nvs = CACHE / "nvs.bin"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "esp_idf_nvs_partition_gen",
            "generate",
            str(CACHE / "nvs.csv"),
            str(nvs),
            "0x5000",
        ],
        check=True,
        capture_output=True,
    )
    # the factory image's own regions (bootloader + table, app); the NVS goes between them
    factory = FACTORY.read_bytes()
    (CACHE / "head.bin").write_bytes(factory[:0x9000])
    (CACHE / "app.bin").write_bytes(factory[0x10000:])
    subprocess.run(
        [
            _tool("esptool"),
            "--chip",
            "esp32c3",
            "merge-bin",
            "-o",
            str(out),
            "--pad-to-size",
            "4MB",
            "0x0",
            str(CACHE / "head.bin"),
            "0x9000",
            str(nvs),
            "0x10000",
            str(CACHE / "app.bin"),
        ],
        check=True,
        capture_output=True,
    )
    return out


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=1800)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cve-bin-tool", help="python of a virtualenv with cve-bin-tool installed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not FACTORY.exists():
        print(f"{FACTORY} is missing (shared firmware)", file=sys.stderr)
        return 2
    image = build()
    row: dict = {
        "input": "ESPHome 2025.9.1 ESP32-C3 factory image + NVS, merged to 4 MB",
        "bytes": image.stat().st_size,
    }
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HOME=tmp)
        seconds, proc = timed(
            [sys.executable, "-m", "cra_fw", "scan", str(image), "-o", f"{tmp}/out", "-q"], env
        )
        report = json.loads(Path(f"{tmp}/out/report.json").read_text())
        row["cra-fw"] = {
            "command": "cra-fw scan flash-4mb.bin -o OUT",
            "seconds": round(seconds, 2),
            "status": proc.returncode,
            "stage_seconds": {k[8:]: v for k, v in report["stats"].items() if k.startswith("seconds_")},
            "layers": [
                f"{la['format']} {la['parent_path'] or 'image'}@{la['offset']:#x}"
                for la in report["layers"]
                if la["format"] not in ("padding", "unknown")
            ],
            "components": sorted(f"{c['name']} {c['version']}".strip() for c in report["components"]),
            "mcu_findings": sorted(
                {f["rule_id"] for f in report["findings"] if f["rule_id"].startswith("mcu.")}
            ),
        }
        seconds, proc = timed([_tool("esptool"), "--chip", "esp32c3", "image-info", str(image)])
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        row["esptool image-info"] = {
            "command": "esptool --chip esp32c3 image-info flash-4mb.bin",
            "seconds": round(seconds, 2),
            "status": proc.returncode,
            "reads": "the first image header only (the bootloader at 0x0): "
            + "; ".join(
                ln.strip()
                for ln in lines
                if ln.startswith(
                    (
                        "Chip ID",
                        "Checksum",
                        "Validation hash",
                        "Bootloader version",
                        "ESP-IDF",
                        "Compile time",
                    )
                )
            )[:400],
        }
        if args.cve_bin_tool:
            folder = Path(tmp) / "cvebt-input"
            folder.mkdir()
            shutil.copy(image, folder / image.name)
            runner = ROOT / "benchmarks" / "cve_bin_tool_runner.py"
            seconds, proc = timed([args.cve_bin_tool, str(runner), str(folder)], env)
            found: dict = {"found": [], "errors": -1}
            if "@@JSON@@" in proc.stdout:
                found = json.loads(proc.stdout.split("@@JSON@@", 1)[1])
            row["cve-bin-tool"] = {
                "command": "cve-bin-tool VersionScanner (offline) on a folder holding flash-4mb.bin",
                "seconds": round(seconds, 2),
                "status": proc.returncode,
                "components": sorted({f"{v}:{p} {ver}" for v, p, ver, _w in found["found"]}),
                "errors": found["errors"],
            }
            if row["cve-bin-tool"]["seconds"]:
                row["ratio_cra_cvebintool"] = round(
                    row["cra-fw"]["seconds"] / row["cve-bin-tool"]["seconds"], 2
                )
    text = json.dumps({"rows": [row]}, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
