"""Hardening facts, file by file, against binutils' ``readelf`` on real images.

Four vendor images (OpenWrt 12.09 on TP-Link MR3020, OpenWrt AA on OpenMesh OM2P, the EMUX
DV-MIPSEL rootfs: MIPS uClibc; OpenWrt 18.06 on HiWiFi HC5661: MIPS musl; from shared/firmware*,
skipped when absent) and two images built
from Debian packages (the armhf and mipsel squashfs fixtures).  For every ELF executable and shared
library, readelf's program headers, dynamic section and symbols give the expected verdict; cra-fw's
inventory + hardening check must give the same one for every property.

PIE is the point of the exercise: uClibc's ``libuClibc-0.9.33.2.so`` and glibc's ``libc.so.6`` carry
both ``PT_INTERP`` and ``DT_SONAME``; they are libraries ("dso"), not PIE executables.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from cra_fw.checks.hardening import verdicts

from .conftest import SHARED_FIRMWARE, tree_context

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
NX_BY_DEFAULT = {"AArch64", "RISC-V"}
_CANARY = {"__stack_chk_fail", "__stack_chk_guard", "__stack_chk_fail_local", "__intel_security_cookie"}

pytestmark = pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf not installed")


def _readelf(path: Path) -> dict | None:
    """The verdict readelf's own output supports, or None when it is not an executable/library."""
    # two runs: the section view (headers, .symtab, .dynsym) and the dynamic-segment view of the
    # symbols (-D -s), which is the only one an sstripped firmware binary still has
    out = "".join(
        subprocess.run(
            ["readelf", "-W", *args, str(path)], capture_output=True, text=True, errors="replace"
        ).stdout
        for args in (("-h", "-l", "-d", "-s"), ("-D", "-s"))
    )
    m = re.search(r"^\s*Type:\s+(\w+)", out, re.M)
    if m is None or m.group(1) not in ("EXEC", "DYN"):
        return None
    etype = m.group(1)
    machine = re.search(r"^\s*Machine:\s+(.+)$", out, re.M)
    segs = re.findall(r"^\s+(GNU_STACK|GNU_RELRO|INTERP)\s+.*?\s(R?W?E?)\s+0x[0-9a-f]+$", out, re.M)
    kinds = {s for s, _ in segs}
    stack = next((flags for s, flags in segs if s == "GNU_STACK"), None)
    dyn = re.findall(r"^\s+0x[0-9a-f]+\s+\((\w+)\)\s+(.*)$", out, re.M)
    tags = {t for t, _ in dyn}
    soname = any(t == "SONAME" for t, _ in dyn)
    needed = any(t == "NEEDED" for t, _ in dyn)
    flags = " ".join(v for t, v in dyn if t in ("FLAGS", "FLAGS_1"))
    pie_flag = bool(re.search(r"\bPIE\b", flags))
    interp = "INTERP" in kinds
    bind_now = "BIND_NOW" in tags or bool(re.search(r"\b(BIND_NOW|NOW)\b", flags))
    # symbol tables: the dynamic one (-D, also for sstripped files) and .symtab when present
    und, defined = set(), set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[0].rstrip(":").isdigit() and re.fullmatch(r"[0-9a-f]+", cols[1]):
            name = cols[7].split("@")[0]
            (und if cols[6] == "UND" else defined).add(name)
    # loads nothing: an executable, or a static-pie; ld.so (DYN, dynamic section, no PIE flag) is a library
    has_dynamic = bool(re.search(r"^\s+DYNAMIC\s", out, re.M))
    static = not interp and not needed and (etype == "EXEC" or pie_flag or not has_dynamic)
    if etype == "EXEC":
        pie = "no"
    elif pie_flag or (interp and not soname):
        pie = "yes"
    else:
        pie = "dso"
    if static:
        names = und | defined
        canary = "yes" if names & _CANARY else ("unknown" if not re.search(r"\.symtab", out) else "no")
        fortify = {
            n
            for n in names
            if n.startswith("__") and n.endswith("_chk") and not n.startswith(("__stack_chk", "__cxa_chk"))
        }
    else:
        canary = "yes" if und & _CANARY else "no"
        fortify = {
            n
            for n in und
            if n.startswith("__") and n.endswith("_chk") and not n.startswith(("__stack_chk", "__cxa_chk"))
        }
    arch = machine.group(1) if machine else ""
    if stack is None:
        nx = any(a in arch for a in NX_BY_DEFAULT)
    else:
        nx = "E" not in stack
    return {
        "pie": pie,
        "nx": nx,
        "relro": ("full" if bind_now else "partial") if "GNU_RELRO" in kinds else "none",
        "canary": canary,
        "fortify": "yes" if fortify else ("unknown" if static and canary == "unknown" else "no"),
        "static": static,
    }


def _ours(h) -> dict:
    return {
        "pie": h.pie,
        "nx": h.nx,
        "relro": h.relro,
        "canary": h.canary,
        "fortify": h.fortify,
        "static": h.static,
    }


def _squashfs_at(image: Path, dest: Path, magic: bytes = b"hsqs") -> Path:
    data = image.read_bytes()
    start = data.find(magic)
    sq = dest / "root.sqfs"
    sq.write_bytes(data[start:])
    subprocess.run(
        ["unsquashfs", "-no-xattrs", "-q", "-n", "-d", str(dest / "root"), str(sq)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return dest / "root"


def _tar(image: Path, dest: Path) -> Path:
    with tarfile.open(image) as tf:
        tf.extractall(dest / "root", filter="tar")
    return dest / "root"


IMAGES = {
    "openwrt-12.09-mr3020": (
        SHARED_FIRMWARE / "librarybox" / "openwrt-ar71xx-generic-tl-mr3020-v1-squashfs-factory.bin",
        _squashfs_at,
        5,
    ),
    "openwrt-aa-om2p": (
        SHARED_FIRMWARE / "wifirush" / "openwrt-ar71xx-generic-om2p-squashfs-factory.bin",
        _squashfs_at,
        7,
    ),
    "emux-dv-mipsel": (SHARED_FIRMWARE / "emux" / "DV-MIPSEL-rootfs-mipsel.tar.bz2", _tar, 5),
    # musl, not uClibc: its libc has no PT_INTERP
    "openwrt-18.06-hc5661": (
        SHARED_FIRMWARE.parent
        / "firmware-more"
        / "linux"
        / "openwrt-18.06.1-ramips-mt7620-hc5661-squashfs-sysupgrade.bin",
        _squashfs_at,
        0,
    ),
    "debian-armhf": (FIXTURES / "sqfs-lzo-armhf.sqfs", _squashfs_at, 1),
    "debian-mipsel": (FIXTURES / "sqfs-xz-mipsel.sqfs", _squashfs_at, 1),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_every_property_agrees_with_readelf(name, tmp_path):
    image, unpack, interp_libs = IMAGES[name]
    if not image.exists():
        pytest.skip(f"{image} not present")
    if shutil.which("unsquashfs") is None:
        pytest.skip("unsquashfs not installed")
    root = unpack(image, tmp_path)
    ctx = tree_context(root)
    compared, disagreements, libraries_with_interp = 0, [], []
    for f in ctx.files:
        if f.elf is None or f.path.endswith(".ko"):
            continue
        expected = _readelf(Path(f.abs_path))
        ours = verdicts(f.path, (), f.elf)
        if expected is None:
            assert ours is None or f.elf.elf_type not in ("EXEC", "DYN"), f.path
            continue
        assert ours is not None, f.path
        compared += 1
        got = _ours(ours)
        for key, value in expected.items():
            if got[key] != value:
                disagreements.append((f.path, key, got[key], value))
        if f.elf.interpreter and f.elf.soname:
            libraries_with_interp.append(f.path)
            assert ours.pie == "dso", f.path
    assert compared > 0
    assert disagreements == []
    # the libraries that carry PT_INTERP (uClibc's, glibc's libc.so.6) were the PIE false positives
    assert len(libraries_with_interp) == interp_libs, libraries_with_interp
