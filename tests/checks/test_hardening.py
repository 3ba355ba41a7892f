"""Hardening verdicts: rules on ELF facts, real Debian binaries, agreement with checksec tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cra_fw.checks import run
from cra_fw.checks.hardening import insecure_search_path, summarize, verdicts
from cra_fw.records import ElfInfo

from .conftest import DATA, tree_context

DEBIAN = DATA / "debian"
TRUE_ARCHS = ("armhf", "arm64", "mipsel", "i386", "ppc64el")


def info(**kw) -> ElfInfo:
    base = dict(
        arch="arm",
        bits=32,
        endian="little",
        elf_type="DYN",
        static=False,
        interpreter="/lib/ld.so",
        gnu_stack=True,
        exec_stack=False,
        gnu_relro=True,
        bind_now=True,
        pie_flag=True,
        stack_chk=True,
        fortify_funcs=("__memcpy_chk",),
        has_symtab=False,
        stripped=True,
    )
    base.update(kw)
    return ElfInfo(**base)


# ---- rules on facts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch,bits,expect_nx",
    [
        ("mips", 32, False),
        ("arm", 32, False),
        ("x86", 32, False),
        ("x86_64", 64, False),
        ("powerpc", 32, False),
        ("aarch64", 64, True),
        ("riscv", 64, True),
        ("powerpc64", 64, True),
    ],
)
def test_missing_gnu_stack_uses_the_architecture_default(arch, bits, expect_nx):
    v = verdicts("/bin/x", (), info(arch=arch, bits=bits, gnu_stack=False, exec_stack=False))
    assert v.nx is expect_nx
    assert v.exec_stack is (not expect_nx)


def test_gnu_stack_flags_decide_when_present():
    assert verdicts("/x", (), info(arch="mips", exec_stack=True)).nx is False
    assert verdicts("/x", (), info(arch="aarch64", exec_stack=True)).nx is False
    assert verdicts("/x", (), info(arch="mips", exec_stack=False)).nx is True


def test_pie_relro_variants():
    assert verdicts("/x", (), info(elf_type="EXEC", pie_flag=False)).pie == "no"
    assert verdicts("/x", (), info(pie_flag=False)).pie == "yes"  # DYN with an interpreter: old-style PIE
    assert verdicts("/lib/a.so", (), info(interpreter="", pie_flag=False)).pie == "dso"
    # a library that can also be run (uClibc's libuClibc-0.9.33.2.so, glibc's libc.so.6) is a library
    lib = info(pie_flag=False, soname="libc.so.6")
    assert lib.interpreter and verdicts("/lib/libc.so.6", (), lib).pie == "dso"
    assert verdicts("/bin/x", (), info(pie_flag=True, soname="x.so")).pie == "yes"  # DF_1_PIE decides
    assert verdicts("/x", (), info(gnu_relro=False)).relro == "none"
    assert verdicts("/x", (), info(bind_now=False)).relro == "partial"
    assert verdicts("/x", (), info()).relro == "full"
    assert verdicts("/x.o", (), info(elf_type="REL")) is None


def test_static_stripped_binary_cannot_prove_canary_or_fortify():
    v = verdicts(
        "/x",
        (),
        info(
            elf_type="EXEC", static=True, interpreter="", stack_chk=False, fortify_funcs=(), has_symtab=False
        ),
    )
    assert (v.canary, v.fortify) == ("unknown", "unknown")
    v = verdicts(
        "/x",
        (),
        info(
            elf_type="EXEC",
            static=True,
            interpreter="",
            stack_chk=False,
            fortify_funcs=(),
            has_symtab=True,
            stripped=False,
        ),
    )
    assert (v.canary, v.fortify) == ("no", "no")
    dyn = verdicts("/x", (), info(stack_chk=False, fortify_funcs=()))
    assert (dyn.canary, dyn.fortify) == ("no", "no")


def test_insecure_rpath_entries():
    assert insecure_search_path("$ORIGIN/../lib:/usr/lib") == []
    assert insecure_search_path("/tmp/lib:/usr/lib") == ["/tmp/lib"]
    assert insecure_search_path("lib::/opt") == ["lib", "(empty = current directory)"]


# ---- real Debian 12 binaries through the real inventory --------------------------------------


@pytest.fixture(scope="module")
def debian_ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("deb")
    for f in DEBIAN.glob("*-*"):
        if f.suffix != ".tsv":
            dest = root / "bin" / f.name
            dest.parent.mkdir(exist_ok=True)
            shutil.copy(f, dest)
    return tree_context(root)


@pytest.fixture(scope="module")
def debian_verdicts(debian_ctx):
    result = run(debian_ctx, only=("hardening",))
    return {Path(h.path).name: h for h in result.hardening}, result


def test_debian_dynamic_binaries(debian_verdicts):
    by_name, _ = debian_verdicts
    arch = {"armhf": "arm", "arm64": "aarch64", "mipsel": "mips", "i386": "x86", "ppc64el": "powerpc64"}
    for a in TRUE_ARCHS:
        v = by_name[f"true-{a}"]
        assert v.arch == arch[a]
        assert (v.pie, v.relro, v.canary, v.fortify, v.static, v.stripped) == (
            "yes",
            "partial",
            "yes",
            "yes",
            False,
            True,
        ), a
        assert v.fortified == ("__fprintf_chk", "__printf_chk")
        # Debian's MIPS toolchain still marks PT_GNU_STACK executable (FPU emulation trampolines)
        assert v.nx is (a != "mipsel"), a


def test_debian_static_binaries(debian_verdicts):
    by_name, _ = debian_verdicts
    armhf, arm64 = by_name["ldconfig-armhf"], by_name["ldconfig-arm64"]
    assert (armhf.static, armhf.pie, armhf.relro, armhf.nx, armhf.canary, armhf.fortify) == (
        True,
        "no",
        "partial",
        True,
        "unknown",
        "unknown",
    )
    # arm64 ldconfig is static-pie: DYN + DF_1_PIE, no interpreter
    assert (arm64.static, arm64.pie, arm64.canary, arm64.fortify) == (True, "yes", "unknown", "unknown")


def test_findings_and_summary_for_debian_binaries(debian_verdicts):
    by_name, result = debian_verdicts
    rules = sorted((f.rule_id, Path(f.location.path).name) for f in result.findings)
    # only the MIPS executable stack; static binaries get no PIE/RELRO/canary findings
    assert rules == [("hardening.nx", "true-mipsel")]
    f = result.findings[0]
    assert f.cra_reference == ("Annex I Part I (2)(k)",)
    assert f.location.layer_chain == ("L0:raw", "L1:squashfs")
    summary = {(s.arch, s.bits): s for s in summarize(result.hardening)}
    assert summary[("arm", 32)].total == 2 and summary[("arm", 32)].static == 1
    assert summary[("mips", 32)].exec_stack == 1 and summary[("mips", 32)].nx == 0
    assert summary[("aarch64", 64)].pie == 2


# ---- agreement with checksec.py and pwntools --------------------------------------------------


def _checksec_py(path: Path):
    elf_mod = pytest.importorskip("checksec.elf", reason="checksec.py not installed")
    return elf_mod.ELFSecurity(path).checksec_state


def _pwntools(path: Path):
    os.environ.setdefault("PWNLIB_NOTERM", "1")
    elf_mod = pytest.importorskip("pwnlib.elf.elf", reason="pwntools not installed")
    return elf_mod.ELF(str(path), checksec=False)


@pytest.mark.parametrize("name", [f"true-{a}" for a in TRUE_ARCHS] + ["ldconfig-armhf", "ldconfig-arm64"])
def test_agrees_with_checksec_py(name, debian_verdicts):
    ours = debian_verdicts[0][name]
    cs = _checksec_py(DEBIAN / name)
    assert ours.nx is cs.nx
    assert (ours.pie == "yes") is (cs.pie.name == "PIE")
    assert ours.relro == {"No": "none", "Partial": "partial", "Full": "full"}[cs.relro.name]
    if ours.canary == "unknown":
        assert cs.canary is False  # it cannot see a canary in a stripped static binary either
    else:
        assert (ours.canary == "yes") is cs.canary


@pytest.mark.parametrize("name", [f"true-{a}" for a in TRUE_ARCHS] + ["ldconfig-armhf", "ldconfig-arm64"])
def test_agrees_with_pwntools(name, debian_verdicts):
    ours = debian_verdicts[0][name]
    e = _pwntools(DEBIAN / name)
    assert ours.exec_stack is e.execstack
    if e.nx is not None:  # pwntools answers None where it depends on the kernel version (MIPS)
        assert ours.nx is e.nx
    assert (ours.pie in ("yes", "dso")) is e.pie
    assert ours.relro == {None: "none", "Partial": "partial", "Full": "full"}[e.relro]
    if ours.canary != "unknown":
        assert (ours.canary == "yes") is e.canary


def test_fortify_where_the_tools_disagree(debian_verdicts):
    """Why cra-fw's FORTIFY answer is right where checksec.py and pwntools disagree.

    1. Static stripped ldconfig: checksec.py says FORTIFY *yes* because it intersects the
       binary's (empty) dynamic symbols with the *host's* libc and treats "nothing
       fortifiable" as fortified; pwntools says *no* because a static binary has no PLT.
       The binary has neither dynamic symbols nor a symbol table, so nothing in it can
       prove either answer: cra-fw says "unknown".
    2. ppc64el /bin/true: pwntools says *no* because it cannot emulate the PowerPC PLT
       stubs; the binary's own .dynstr names __printf_chk and __fprintf_chk, so it *is*
       built with FORTIFY: cra-fw says "yes" and lists them (checksec.py agrees here, but
       only because the host libc happens to export the same _chk names).
    """
    cs_static = _checksec_py(DEBIAN / "ldconfig-armhf")
    pw_static = _pwntools(DEBIAN / "ldconfig-armhf")
    assert cs_static.fortify_source is True and cs_static.fortifiable == 0
    assert pw_static.fortify is False
    ours = debian_verdicts[0]["ldconfig-armhf"]
    assert ours.fortify == "unknown" and ours.stripped and ours.static

    pw_ppc = _pwntools(DEBIAN / "true-ppc64el")
    assert pw_ppc.fortify is False
    data = (DEBIAN / "true-ppc64el").read_bytes()
    assert b"\0__printf_chk\0" in data and b"\0__fprintf_chk\0" in data
    ppc = debian_verdicts[0]["true-ppc64el"]
    assert ppc.fortify == "yes" and ppc.fortified == ("__fprintf_chk", "__printf_chk")
