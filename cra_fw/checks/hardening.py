"""Binary hardening verdicts per ELF file and per image, from the inventory's ElfInfo.

No ELF is parsed here: the inventory read every fact once (program headers,
dynamic tags, symbol names); this module only turns facts into verdicts.

Verdict rules (and where they differ from other tools, why):
- NX: ``PT_GNU_STACK`` present decides (no ``PF_X`` = NX).  Missing, the stack is
  executable by default except where glibc/the kernel make it non-executable
  (AArch64, RISC-V, IA-64, 64-bit PowerPC).  An explicit executable
  ``PT_GNU_STACK`` counts as NX off (newer x86/ARM kernels would still map data
  non-executable, but the stack itself stays executable).
- PIE: ``EXEC`` = no; ``DYN`` with ``DF_1_PIE`` (also static-pie), or with an
  interpreter and no ``DT_SONAME`` (a PIE linked before ``DF_1_PIE`` existed) = yes;
  other ``DYN`` = "dso": a shared library, PIC by nature, even when it carries
  ``PT_INTERP`` (glibc's ``libc.so.6``, uClibc's ``libuClibc-0.9.33.2.so`` can be run,
  but are libraries).
- RELRO: ``PT_GNU_RELRO`` and BIND_NOW = full; ``PT_GNU_RELRO`` alone = partial.
- Canary: ``__stack_chk_fail``/``__stack_chk_guard`` referenced or defined; a
  static stripped binary has no symbols left to tell, so "unknown".
- FORTIFY: judged from the binary's own symbols (``*_chk`` functions it
  references), never from the host's libc; static and stripped = "unknown".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from cra_fw.checks.interface import (
    CRA_HARDENING,
    Check,
    ElfHardening,
    HardeningSummary,
    finding,
)
from cra_fw.context import ScanContext
from cra_fw.records import ElfInfo, FileEntry, FileKind, Finding, Severity

# glibc DEFAULT_STACK_PERMS / kernel READ_IMPLIES_EXEC: where a missing PT_GNU_STACK
# still gives a non-executable stack.
_NX_BY_DEFAULT = {"aarch64", "arm64", "riscv", "riscv64", "riscv32", "ia64", "loongarch", "powerpc64"}

# RPATH entries a local user (or a USB stick) can write to: libraries there win.
_INSECURE_RPATH_PREFIXES = (
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/mnt",
    "/media",
    "/home",
    "/var/run",
    "/run",
    "/usb",
    "/sdcard",
    "/data/local",
)


def _nx_default(info: ElfInfo) -> bool:
    arch = info.arch.lower()
    if arch == "powerpc" and info.bits == 64:
        return True
    return arch in _NX_BY_DEFAULT


def is_executable(info: ElfInfo) -> bool:
    """A program (not a shared library or object)."""
    if info.elf_type == "EXEC":
        return True
    return info.elf_type == "DYN" and (info.pie_flag or (bool(info.interpreter) and not info.soname))


def is_static(info: ElfInfo) -> bool:
    """Statically linked, including static-pie (DYN with DF_1_PIE, no interpreter, no DT_NEEDED)."""
    return info.static or (
        info.elf_type == "DYN" and info.pie_flag and not info.interpreter and not info.needed
    )


def verdicts(path: str, layer_chain: tuple[str, ...], info: ElfInfo) -> ElfHardening | None:
    """Hardening verdicts for one ELF (``None`` for objects, core files and kernel modules)."""
    if info.elf_type not in ("EXEC", "DYN"):
        return None
    if info.gnu_stack:
        exec_stack = info.exec_stack
    else:
        exec_stack = not _nx_default(info)
    if info.elf_type == "EXEC":
        pie = "no"
    elif is_executable(info):
        pie = "yes"
    else:
        pie = "dso"
    relro = ("full" if info.bind_now else "partial") if info.gnu_relro else "none"
    static = is_static(info)
    symbols_gone = static and not info.has_symtab
    if info.stack_chk:
        canary = "yes"
    else:
        canary = "unknown" if symbols_gone else "no"
    if info.fortify_funcs:
        fortify = "yes"
    else:
        fortify = "unknown" if symbols_gone else "no"
    return ElfHardening(
        path=path,
        layer_chain=layer_chain,
        arch=info.arch,
        bits=info.bits,
        endian=info.endian,
        elf_type=info.elf_type,
        static=static,
        nx=not exec_stack,
        exec_stack=exec_stack,
        pie=pie,
        relro=relro,
        canary=canary,
        fortify=fortify,
        fortified=tuple(sorted(set(info.fortify_funcs))),
        rpath=info.rpath,
        runpath=info.runpath,
        stripped=info.stripped,
    )


def insecure_search_path(value: str) -> list[str]:
    """RPATH/RUNPATH entries that let someone else plant libraries (empty, relative, writable dirs)."""
    bad = []
    for item in value.split(":"):
        if item == "" or item == ".":
            bad.append(item or "(empty = current directory)")
        elif item.startswith("$ORIGIN") or item.startswith("${ORIGIN}"):
            continue
        elif not item.startswith("/"):
            bad.append(item)
        elif any(item == p or item.startswith(p + "/") for p in _INSECURE_RPATH_PREFIXES):
            bad.append(item)
    return bad


def summarize(results: Iterable[ElfHardening]) -> tuple[HardeningSummary, ...]:
    """One summary per (arch, bits, endian), sorted by arch."""
    groups: dict[tuple[str, int, str], list[ElfHardening]] = defaultdict(list)
    for r in results:
        groups[(r.arch, r.bits, r.endian)].append(r)
    out = []
    for (arch, bits, endian), items in sorted(groups.items()):
        exes = [r for r in items if r.pie != "dso"]
        out.append(
            HardeningSummary(
                arch=arch,
                bits=bits,
                endian=endian,
                total=len(items),
                executables=len(exes),
                libraries=len(items) - len(exes),
                static=sum(r.static for r in items),
                nx=sum(r.nx for r in items),
                pie=sum(r.pie == "yes" for r in exes),
                relro_full=sum(r.relro == "full" for r in items),
                relro_partial=sum(r.relro == "partial" for r in items),
                canary=sum(r.canary == "yes" for r in items),
                fortify=sum(r.fortify == "yes" for r in items),
                rpath=sum(bool(r.rpath or r.runpath) for r in items),
                stripped=sum(r.stripped for r in items),
                exec_stack=sum(r.exec_stack for r in items),
            )
        )
    return tuple(out)


class BinaryHardening(Check):
    """NX, PIE, RELRO, canary, FORTIFY, RPATH per ELF; findings for missing mitigations."""

    name = "hardening.elf"
    category = "hardening"

    def __init__(self) -> None:
        self._results: list[ElfHardening] = []

    def collect(self) -> tuple[ElfHardening, ...]:
        return tuple(self._results)

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        self._results = []
        for entry in ctx.iter_files(kinds=[FileKind.ELF]):
            if entry.elf is None:
                continue
            result = verdicts(entry.path, ctx.layer_chain(entry.layer_id), entry.elf)
            if result is None:
                continue
            self._results.append(result)
            yield from self._findings(ctx, entry, result)

    def _findings(self, ctx: ScanContext, entry: FileEntry, r: ElfHardening) -> Iterator[Finding]:
        what = f"{r.arch}/{r.bits}-bit/{r.endian} {'static' if r.static else 'dynamic'} {r.elf_type}"
        common = {"category": "hardening", "cra": CRA_HARDENING}
        if r.exec_stack:
            why = (
                "PT_GNU_STACK has PF_X"
                if entry.elf and entry.elf.gnu_stack
                else f"no PT_GNU_STACK and {r.arch} defaults to an executable stack"
            )
            yield finding(
                ctx,
                entry,
                rule_id="hardening.nx",
                severity=Severity.HIGH,
                title="Executable stack (no NX)",
                evidence=f"{what}: {why}",
                remediation="Link with -z noexecstack and remove assembler objects that request an "
                "executable stack.",
                **common,
            )
        if r.pie == "no" and not r.static:
            yield finding(
                ctx,
                entry,
                rule_id="hardening.pie",
                severity=Severity.LOW,
                title="Executable is not position independent (no ASLR for its code)",
                evidence=f"{what}: ELF type EXEC",
                remediation="Build with -fPIE -pie.",
                **common,
            )
        if r.relro == "none" and not r.static:
            yield finding(
                ctx,
                entry,
                rule_id="hardening.relro",
                severity=Severity.LOW,
                title="No RELRO: GOT and dynamic data stay writable",
                evidence=f"{what}: no PT_GNU_RELRO segment",
                remediation="Link with -Wl,-z,relro,-z,now (full RELRO).",
                **common,
            )
        # shared libraries without any buffer-bearing function legitimately lack the symbol
        if r.canary == "no" and not r.static and r.pie != "dso":
            yield finding(
                ctx,
                entry,
                rule_id="hardening.canary",
                severity=Severity.LOW,
                title="No stack protector (canary)",
                evidence=f"{what}: no __stack_chk_fail/__stack_chk_guard symbol",
                remediation="Build with -fstack-protector-strong.",
                **common,
            )
        for tag, value in (("RPATH", r.rpath), ("RUNPATH", r.runpath)):
            bad = insecure_search_path(value) if value else []
            if bad:
                yield finding(
                    ctx,
                    entry,
                    rule_id="hardening.rpath",
                    severity=Severity.MEDIUM,
                    title=f"{tag} lets writable or relative directories supply libraries",
                    evidence=f"{tag}={value} (insecure: {', '.join(bad)})",
                    remediation=f"Remove the {tag} or restrict it to $ORIGIN-relative or "
                    "root-owned read-only directories.",
                    **common,
                )
