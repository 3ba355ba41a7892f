"""Kernel CVEs against the kernel that was built: configuration + the kernel CNA's affected files.

Fixtures: fixtures/distro/kernel-armmp-config.sqfs (Debian's linux-image-6.1.0-57-armmp 6.1.192-3:
/boot/config, modules.order, modules.builtin, unchanged; built by fixtures/distro/build_kernel.py),
tests/vulns/data/kernel/config-6.1-amd64.xz (Debian's amd64 configuration of the same kernel),
fixtures/feeds/cve5/ (trimmed copies of the kernel CNA's CVE JSON 5 records).
"""

from __future__ import annotations

import json
import lzma
import subprocess
import sys
from pathlib import Path

from cra_fw.vulns.kernel import KernelBuild, not_built, parse_config

from .conftest import load_all

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ROOT / "fixtures" / "distro" / "kernel-armmp-config.sqfs"
AMD64 = Path(__file__).parent / "data" / "kernel" / "config-6.1-amd64.xz"


def test_unbuilt_driver_cve_is_not_affected_with_the_config_as_evidence(tmp_path) -> None:
    load_all(tmp_path / "f.db").conn.close()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "cra_fw",
            "scan",
            str(KERNEL),
            "-o",
            str(tmp_path / "o"),
            "--db",
            str(tmp_path / "f.db"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    kernel = {
        (v["component_key"], v["advisory_id"]): v
        for v in report["vulnerabilities"]
        if v["component_name"] == "linux"
    }
    amdgpu = kernel[("linux@6.1.0", "CVE-2024-26656")]
    assert (
        amdgpu["triage"]["state"] == "not_affected"
        and amdgpu["triage"]["justification"] == "code_not_present"
    )
    assert amdgpu["triage"]["detail"] == (
        "not built in this kernel: drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c: CONFIG_DRM_AMDGPU is not set "
        "(L1:/boot/config-6.1.0-57-armmp)"
    )
    assert amdgpu["triage"]["source"] == "kernel-config:L1:/boot/config-6.1.0-57-armmp"
    filtered = next(f for f in report["findings"] if f["rule_id"] == "vuln.kernel-config-filtered")
    assert filtered["extra"]["filtered"] == "1"
    assert "CONFIG_DRM_AMDGPU: 1" in filtered["evidence"]
    assert (
        "modules.builtin, L1:/lib/modules/6.1.0-57-armmp/modules.order (3845 built objects)"
        in filtered["evidence"]
    )
    # CVEs without an affected-file list (older records, the NVD alone) stay matches
    assert all(v["triage"] is None for k, v in kernel.items() if k[1] != "CVE-2024-26656")
    # /lib/modules/6.1.0-57-armmp names Debian's ABI, not the release (6.1.192): the version is a lower
    # bound, so the KEV-listed CVE-2024-1086 (fixed in 6.1.76) is only possible, never an Article 14 case
    linux = next(c for c in report["components"] if c["name"] == "linux")
    assert (linux["version_certainty"], linux["version_range"]) == ("lower-bound", "vers:generic/>=6.1.0")
    nft = kernel[("linux@6.1.0", "CVE-2024-1086")]
    assert nft["kev"] and nft["possible"]
    assert not [f for f in report["findings"] if f["rule_id"] == "vuln.actively-exploited"]
    vex = json.loads((tmp_path / "o" / "vex.cdx.json").read_text())
    entry = next(v for v in vex["vulnerabilities"] if v["id"] == "CVE-2024-26656")
    assert (
        entry["analysis"]["state"] == "not_affected"
        and entry["analysis"]["justification"] == "code_not_present"
    )
    assert res.returncode == 0, res.stderr


def test_built_driver_cve_stays() -> None:
    amd64 = parse_config(lzma.decompress(AMD64.read_bytes()).decode())
    assert amd64["CONFIG_DRM_AMDGPU"] == "m"
    build = KernelBuild(amd64, "config-6.1-amd64", frozenset(), "")
    assert not_built(build, ["drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c"]) is None


def test_unknowable_files_keep_the_cve() -> None:
    build = KernelBuild({"CONFIG_DRM_AMDGPU": "n", "CONFIG_NET": "y"}, "c", frozenset(), "")
    # a header is shared: cannot tell; one built file among several keeps it; no file list keeps it
    assert not_built(build, ["include/drm/amdgpu_drm.h"]) is None
    assert not_built(build, ["drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c", "net/core/dev.c"]) is None
    assert not_built(build, []) is None
    assert (
        not_built(
            KernelBuild({}, "", frozenset({"net/netfilter/nf_tables"}), "m"),
            ["drivers/gpu/drm/amd/amdgpu/x.c"],
        )
        is None
    )


def _armmp_config(tmp_path: Path) -> str:
    out = subprocess.run(
        ["unsquashfs", "-cat", str(KERNEL), "boot/config-6.1.0-57-armmp"], capture_output=True, check=True
    )
    return out.stdout.decode()


def test_cna_files_decide_per_cve_against_the_armmp_config(tmp_path) -> None:
    # both records come from the kernel CNA (fixtures/feeds/cve5): 26656 names amdgpu_hmm.c (amdgpu is not
    # built on armmp); 26642 (nf_tables, a record of April 2024) names no files: nothing to decide on, kept
    from cra_fw.vulns.kernel import program_files

    db = load_all(tmp_path / "f.db")
    files = program_files(db, {"CVE-2024-26656", "CVE-2024-26642"})
    db.conn.close()
    assert files == {"CVE-2024-26656": ["drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c"]}
    config = parse_config(_armmp_config(tmp_path))
    assert config["CONFIG_NF_TABLES"] == "m" and config.get("CONFIG_DRM_AMDGPU", "n") == "n"
    build = KernelBuild(config, "armmp", frozenset(), "")
    assert not_built(build, files.get("CVE-2024-26642", [])) is None
    # code the armmp kernel builds (as a module) stays
    assert not_built(build, ["net/netfilter/nf_tables_api.c"]) is None
    gone = not_built(build, files["CVE-2024-26656"])
    assert gone is not None and gone.evidence == (
        "drivers/gpu/drm/amd/amdgpu/amdgpu_hmm.c: CONFIG_DRM_AMDGPU is not set (armmp)"
    )


def test_ikconfig_in_a_kernel_image_is_read(tmp_path) -> None:
    # IKCONFIG embeds the gzipped .config between IKCFG_ST and IKCFG_ED (kernel/configs.c)
    import gzip

    from cra_fw.vulns.kernel import _ikconfig

    text = _armmp_config(tmp_path)
    blob = b"\x00" * 4096 + b"IKCFG_ST" + gzip.compress(text.encode()) + b"IKCFG_ED" + b"\x00" * 64
    assert parse_config(_ikconfig(blob)) == parse_config(text)
    assert _ikconfig(b"IKCFG_ST" + b"not gzip") == ""
