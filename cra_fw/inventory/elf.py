"""Read the facts of an ELF file once: architecture, linking, and hardening evidence.

pyelftools parses headers, segments and the dynamic section; symbol names
are found by searching the string tables directly, which is far faster than
walking every symbol and gives the same answer for the names we need.
"""

from __future__ import annotations

import io
import re

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from cra_fw.records import ElfInfo

ARCH = {
    "EM_ARM": "arm", "EM_AARCH64": "aarch64", "EM_MIPS": "mips", "EM_MIPS_RS3_LE": "mips",
    "EM_386": "x86", "EM_X86_64": "x86_64", "EM_PPC": "powerpc", "EM_PPC64": "powerpc64",
    "EM_RISCV": "riscv", "EM_SH": "sh", "EM_SPARC": "sparc", "EM_SPARCV9": "sparc64",
    "EM_S390": "s390", "EM_ARC_COMPACT": "arc", "EM_ARC_COMPACT2": "arc", "EM_XTENSA": "xtensa",
    "EM_68K": "m68k", "EM_LOONGARCH": "loongarch", "EM_MICROBLAZE": "microblaze", "EM_NIOS32": "nios2",
}
_CHK = re.compile(rb"\x00(__[a-z0-9_]+_chk)\x00")
_STACK = re.compile(rb"\x00__stack_chk_(?:fail|guard)(?:_local)?\x00|\x00__intel_security_cookie\x00")
DF_BIND_NOW = 0x8
DF_1_NOW = 0x1
DF_1_PIE = 0x08000000
PF_X = 0x1
# fortified functions the compiler calls; *_chk helpers that are not fortification
_NOT_FORTIFY = {b"__stack_chk", b"__cxa_chk"}


def _section_bytes(elf: ELFFile, name: str) -> bytes:
    sec = elf.get_section_by_name(name)
    if sec is None or sec["sh_type"] == "SHT_NOBITS":
        return b""
    try:
        return b"\x00" + sec.data() + b"\x00"
    except (ELFError, ValueError, OSError):
        return b""


def read_elf_info(data: bytes) -> ElfInfo | None:
    """ElfInfo for an ELF file's bytes, or None when they are not a parseable ELF."""
    if not data.startswith(b"\x7fELF"):
        return None
    try:
        return _read(data)
    except (ELFError, ValueError, KeyError, IndexError, AssertionError, OSError, TypeError,
            AttributeError, UnicodeDecodeError, RecursionError, MemoryError, Exception):  # noqa: BLE001
        # a malformed ELF is still an ELF: report what the header alone says
        return _header_only(data)


def _header_only(data: bytes) -> ElfInfo | None:
    if len(data) < 20:
        return None
    bits = 64 if data[4] == 2 else 32
    endian = "big" if data[5] == 2 else "little"
    machine = int.from_bytes(data[18:20], endian)
    names = {40: "arm", 183: "aarch64", 8: "mips", 10: "mips", 3: "x86", 62: "x86_64", 20: "powerpc",
             21: "powerpc64", 243: "riscv"}
    return ElfInfo(arch=names.get(machine, f"em{machine}"), bits=bits, endian=endian, elf_type="?",
                   static=False, flags="malformed")


def _read(data: bytes) -> ElfInfo:
    elf = ELFFile(io.BytesIO(data))
    header = elf.header
    arch = ARCH.get(header["e_machine"], str(header["e_machine"]).lower().replace("em_", ""))
    endian = "little" if elf.little_endian else "big"
    elf_type = str(header["e_type"]).replace("ET_", "")
    interpreter = ""
    has_dynamic = False
    gnu_stack = exec_stack = gnu_relro = False
    for seg in elf.iter_segments():
        ptype = seg["p_type"]
        if ptype == "PT_INTERP":
            try:
                interpreter = seg.get_interp_name()
            except (ELFError, UnicodeDecodeError, ValueError):
                interpreter = "?"
        elif ptype == "PT_DYNAMIC":
            has_dynamic = True
        elif ptype == "PT_GNU_STACK":
            gnu_stack = True
            exec_stack = bool(seg["p_flags"] & PF_X)
        elif ptype == "PT_GNU_RELRO":
            gnu_relro = True
    needed: list[str] = []
    soname = rpath = runpath = ""
    bind_now = pie_flag = False
    dyn = elf.get_section_by_name(".dynamic")
    if dyn is not None and hasattr(dyn, "iter_tags"):
        count = 0
        for tag in dyn.iter_tags():
            count += 1
            if count > 4096:
                break
            name = tag.entry.d_tag
            if name == "DT_NEEDED":
                needed.append(tag.needed)
            elif name == "DT_SONAME":
                soname = tag.soname
            elif name == "DT_RPATH":
                rpath = tag.rpath
            elif name == "DT_RUNPATH":
                runpath = tag.runpath
            elif name == "DT_BIND_NOW":
                bind_now = True
            elif name == "DT_FLAGS":
                bind_now = bind_now or bool(tag.entry.d_val & DF_BIND_NOW)
            elif name == "DT_FLAGS_1":
                bind_now = bind_now or bool(tag.entry.d_val & DF_1_NOW)
                pie_flag = bool(tag.entry.d_val & DF_1_PIE)
            elif name == "DT_NULL":
                break
    strtab = _section_bytes(elf, ".strtab")
    names = _section_bytes(elf, ".dynstr") + strtab
    stack_chk = bool(_STACK.search(names))
    fortify = sorted({m.decode() for m in _CHK.findall(names) if not m.startswith(tuple(_NOT_FORTIFY))})
    has_symtab = elf.get_section_by_name(".symtab") is not None
    static = not interpreter and not has_dynamic and elf_type in ("EXEC", "DYN")
    flags = ""
    if arch == "arm":
        flags = f"eabi{(header['e_flags'] >> 24) & 0xFF}"
    elif arch == "mips":
        flags = f"0x{header['e_flags']:08x}"
    return ElfInfo(
        arch=arch, bits=elf.elfclass, endian=endian, elf_type=elf_type, static=static,
        interpreter=interpreter, soname=soname, needed=tuple(needed), rpath=rpath, runpath=runpath,
        gnu_stack=gnu_stack, exec_stack=exec_stack, gnu_relro=gnu_relro, bind_now=bind_now,
        pie_flag=pie_flag, stack_chk=stack_chk, fortify_funcs=tuple(fortify[:64]),
        has_symtab=has_symtab, stripped=not has_symtab, flags=flags,
    )
