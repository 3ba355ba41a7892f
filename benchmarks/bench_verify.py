#!/usr/bin/env python3
"""Bundle verification speed and memory: `cra-fw verify` vs each format's own verifier.

Builds, in a temporary directory and with the real tools, one bundle per format at each
size (default 10 MB and 100 MB of payload, to show that memory stays flat in bundle
size): FIT (`mkimage -k -K -r`), RAUC plain and verity (`rauc bundle`), Mender
(`mender-artifact write -k`), SWUpdate (`openssl dgst -sign` + `cpio -H crc`),
minisign and detached CMS (`openssl cms -sign`).  Keys are the committed test keys in
fixtures/bundles/out/keys.  The payload is pseudo-random bytes (incompressible, so each
bundle really is that large; squashfs and tar do not shrink it).

Then times `cra-fw verify` and the tool's own check on the same file, under
`/usr/bin/time`, and prints wall time, peak RSS and the ratios cra-fw/tool as JSON
(also written to benchmarks/results/verify.json).  The own checks: `rauc info
--keyring`, `mender-artifact validate -k`, `minisign -V`, `openssl cms -verify`, for
SWUpdate `cpio -i` + `openssl dgst -verify` + `sha256sum -c` (what an auditor runs by
hand), for FIT `fit_check_sign` when installed (Debian ships none).

Usage: python benchmarks/bench_verify.py [--sizes 10,100] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
KEYS = ROOT / "fixtures" / "bundles" / "out" / "keys"
MiB = 1024 * 1024


def sh(*cmd: str | Path, cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.exit(
            f"build step failed: {' '.join(map(str, cmd))}\n{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    return proc.stdout


def timed(cmd: list[str | Path], cwd: Path | None = None) -> dict:
    """Wall seconds, peak RSS (KiB, largest process of the command) and exit status."""
    start = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "RSS %M", *map(str, cmd)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    rss = [
        int(x.split()[1]) for x in proc.stderr.splitlines() if x.startswith("RSS ") and x.split()[1].isdigit()
    ]
    return {
        "wall_s": round(wall, 3),
        "peak_rss_kib": rss[-1] if rss else 0,
        "exit": proc.returncode,
        "stdout_tail": proc.stdout.strip().splitlines()[-1][:200] if proc.stdout.strip() else "",
    }


def payload(path: Path, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 4 * MiB)
            fh.write(rng.randbytes(n))
            left -= n
    return path


# ------------------------------------------------------------------ builders


def build_fit(work: Path, data: Path) -> tuple[Path, list[Path], list[str] | None]:
    keydir = work / "fitkeys"
    keydir.mkdir()
    shutil.copy(KEYS / "signer-rsa.key", keydir / "dev.key")
    shutil.copy(KEYS / "signer-rsa.crt", keydir / "dev.crt")
    (work / "ctl.dts").write_text('/dts-v1/;\n/ { model = "u-boot control dtb"; signature { }; };\n')
    ctl = work / "ctl.dtb"
    sh("dtc", "-I", "dts", "-O", "dtb", "-p", "4096", "-o", ctl, work / "ctl.dts")
    its = work / "bench.its"
    its.write_text(f"""/dts-v1/;
/ {{
    description = "cra-fw benchmark FIT";
    #address-cells = <1>;
    images {{
        kernel-1 {{
            data = /incbin/("{data}");
            type = "kernel"; arch = "arm"; os = "linux"; compression = "none";
            load = <0x80008000>; entry = <0x80008000>;
            hash-1 {{ algo = "sha256"; }};
        }};
    }};
    configurations {{
        default = "conf-1";
        conf-1 {{
            kernel = "kernel-1";
            signature-1 {{ algo = "sha256,rsa2048"; key-name-hint = "dev"; sign-images = "kernel"; }};
        }};
    }};
}};
""")
    out = work / "bench.itb"
    sh("mkimage", "-f", its, "-k", keydir, "-K", ctl, "-r", out)
    tool = ["fit_check_sign", "-f", str(out), "-k", str(ctl)] if shutil.which("fit_check_sign") else None
    return out, [ctl], tool


def build_rauc(work: Path, data: Path, fmt: str) -> tuple[Path, list[Path], list[str] | None]:
    src = work / f"rauc-{fmt}"
    src.mkdir()
    os.link(data, src / "rootfs.img")
    (src / "manifest.raucm").write_text(
        f"[update]\ncompatible=cra-fw-bench\nversion=1.0\n\n[bundle]\nformat={fmt}\n\n"
        "[image.rootfs]\nfilename=rootfs.img\n"
    )
    out = work / f"bench-{fmt}.raucb"
    # -noI/-noD: the payload is incompressible; do not spend minutes trying
    sh(
        "rauc",
        "bundle",
        "--cert",
        KEYS / "signer-rsa.crt",
        "--key",
        KEYS / "signer-rsa.key",
        "--mksquashfs-args=-noI -noD -noF -noX",
        src,
        out,
    )
    return out, [KEYS / "ca.crt"], ["rauc", "info", "--keyring", str(KEYS / "ca.crt"), str(out)]


def build_mender(work: Path, data: Path) -> tuple[Path, list[Path], list[str] | None]:
    key = work / "mender-rsa.key"  # mender-artifact reads PKCS#1 RSA keys
    sh("openssl", "rsa", "-in", KEYS / "signer-rsa.key", "-traditional", "-out", key)
    out = work / "bench.mender"
    sh(
        "mender-artifact",
        "write",
        "rootfs-image",
        "-f",
        data,
        "-n",
        "bench",
        "-t",
        "bench-board",
        "-o",
        out,
        "--compression",
        "none",
        "-k",
        key,
    )
    pub = KEYS / "signer-rsa.pub.pem"
    return out, [pub], ["mender-artifact", "validate", "-k", str(pub), str(out)]


def build_swupdate(work: Path, data: Path) -> tuple[Path, list[Path], list[str] | None]:
    d = work / "swu"
    d.mkdir()
    os.link(data, d / "rootfs.img")
    digest = hashlib.sha256()
    with open(data, "rb") as fh:
        while chunk := fh.read(4 * MiB):
            digest.update(chunk)
    (d / "sw-description").write_text(
        'software =\n{\n\tversion = "1.0.0";\n\timages: (\n\t\t{\n\t\t\tfilename = "rootfs.img";\n'
        f'\t\t\tdevice = "/dev/mmcblk0p2";\n\t\t\tsha256 = "{digest.hexdigest()}";\n\t\t}}\n\t);\n}}\n'
    )
    sh(
        "openssl",
        "dgst",
        "-sha256",
        "-sign",
        KEYS / "signer-rsa.key",
        "-out",
        d / "sw-description.sig",
        d / "sw-description",
    )
    out = work / "bench.swu"
    out.write_bytes(
        sh(
            "cpio",
            "-o",
            "--quiet",
            "-H",
            "crc",
            cwd=d,
            stdin=b"sw-description\nsw-description.sig\nrootfs.img\n",
        )
    )
    pub = KEYS / "signer-rsa.pub.pem"
    check = work / "swu-check"
    check.mkdir()
    script = (
        f"cd {check} && rm -f sw-description sw-description.sig rootfs.img && cpio -i --quiet -F {out} && "
        f"openssl dgst -sha256 -verify {pub} -signature sw-description.sig sw-description && "
        f"echo '{digest.hexdigest()}  rootfs.img' | sha256sum -c --quiet"
    )
    return out, [pub], ["sh", "-c", script]


def build_minisign(work: Path, data: Path) -> tuple[Path, list[Path], list[str] | None]:
    out = work / "bench.bin"
    os.link(data, out)
    sh("minisign", "-S", "-s", KEYS / "minisign.sec", "-m", out, "-x", work / "bench.bin.minisig")
    pub = KEYS / "minisign.pub"
    return (
        out,
        [pub],
        ["minisign", "-V", "-p", str(pub), "-m", str(out), "-x", str(work / "bench.bin.minisig")],
    )


def build_cms(work: Path, data: Path) -> tuple[Path, list[Path], list[str] | None]:
    out = work / "bench-cms.bin"
    os.link(data, out)
    sig = work / "bench-cms.bin.p7s"
    sh(
        "openssl",
        "cms",
        "-sign",
        "-binary",
        "-in",
        out,
        "-signer",
        KEYS / "signer-rsa.crt",
        "-inkey",
        KEYS / "signer-rsa.key",
        "-outform",
        "DER",
        "-out",
        sig,
    )
    return (
        out,
        [KEYS / "ca.crt"],
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(sig),
            "-content",
            str(out),
            "-CAfile",
            str(KEYS / "ca.crt"),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    )


BUILDERS = {
    "fit": build_fit,
    "rauc-plain": lambda w, d: build_rauc(w, d, "plain"),
    "rauc-verity": lambda w, d: build_rauc(w, d, "verity"),
    "mender": build_mender,
    "swupdate": build_swupdate,
    "minisign": build_minisign,
    "cms-detached": build_cms,
}


TOOL_LABEL = {"swupdate": "cpio -i && openssl dgst -sha256 -verify && sha256sum -c"}


def cra_fw_cmd(bundle: Path, trust: list[Path]) -> list[str | Path]:
    exe = shutil.which("cra-fw")
    base: list[str | Path] = [exe] if exe else [sys.executable, "-m", "cra_fw"]
    cmd = [*base, "verify", bundle, "--json"]
    for t in trust:
        cmd += ["--trust", t]
    return cmd


def best(runs: list[dict]) -> dict:
    out = dict(min(runs, key=lambda r: r["wall_s"]))
    out["wall_s_median"] = round(statistics.median(r["wall_s"] for r in runs), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100", help="payload sizes in MB, comma separated")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--formats", default=",".join(BUILDERS))
    ap.add_argument("--out", type=Path, default=RESULTS / "verify.json")
    args = ap.parse_args()
    missing = [
        t
        for t in ("mkimage", "dtc", "rauc", "mksquashfs", "mender-artifact", "minisign", "openssl", "cpio")
        if shutil.which(t) is None
    ]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (apt-get install -y $(cat .ci/apt-packages.txt))")
    if not (KEYS / "ca.crt").exists():
        sys.exit("fixtures/bundles/out/keys is missing: run python fixtures/bundles/build.py")
    load_before = os.getloadavg()
    startup = best([timed(cra_fw_cmd(KEYS / "ca.crt", [KEYS / "ca.crt"])) for _ in range(args.repeat)])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for size_mb in (int(s) for s in args.sizes.split(",")):
            for fmt in args.formats.split(","):
                work = Path(tmp) / f"{fmt}-{size_mb}"
                work.mkdir()
                data = payload(work / "payload.bin", size_mb * MiB, seed=size_mb)
                t0 = time.monotonic()
                bundle, trust, tool = BUILDERS[fmt](work, data)
                build_s = time.monotonic() - t0
                ours = best([timed(cra_fw_cmd(bundle, trust)) for _ in range(args.repeat)])
                verdict = ""
                try:
                    verdict = json.loads(
                        subprocess.run(
                            [str(c) for c in cra_fw_cmd(bundle, trust)], capture_output=True, text=True
                        ).stdout
                    )["verdict"]
                except (ValueError, KeyError):
                    verdict = "?"
                theirs = best([timed(tool) for _ in range(args.repeat)]) if tool else None
                row = {
                    "format": fmt,
                    "payload_mb": size_mb,
                    "bundle_bytes": bundle.stat().st_size,
                    "build_s": round(build_s, 1),
                    "verdict": verdict,
                    "cra_fw": {k: ours[k] for k in ("wall_s", "wall_s_median", "peak_rss_kib", "exit")},
                    "tool": None
                    if theirs is None
                    else {
                        "cmd": TOOL_LABEL.get(fmt) or " ".join(tool[:3]) + " ...",
                        **{k: theirs[k] for k in ("wall_s", "wall_s_median", "peak_rss_kib", "exit")},
                    },
                }
                if theirs and theirs["wall_s"] > 0:
                    row["ratio_wall"] = round(ours["wall_s"] / theirs["wall_s"], 2)
                    row["ratio_rss"] = round(ours["peak_rss_kib"] / max(theirs["peak_rss_kib"], 1), 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
                shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "bench_verify",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "note": "shared machine: other jobs ran at the same time; wall times are noisy",
        },
        "cra_fw_startup": {k: startup[k] for k in ("wall_s", "peak_rss_kib")},
        "repeat": args.repeat,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("machine", "cra_fw_startup")}, indent=2))
    print(f"written {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
