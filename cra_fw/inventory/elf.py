"""Read the facts of an ELF file once: architecture, linking, and hardening evidence.

A small bounds-checked reader over the bytes (headers, program headers, the
dynamic segment, dynamic symbols, and the string tables).  It works from the
program headers, so binaries whose section headers were stripped (common in
OpenWrt) still give their dynamic tags and imports; section headers, when
present, only add the static symbol table.  Every offset is checked: a
malformed ELF yields what its header says, never an exception.  (pyelftools
gave the same facts at about 8x the time per file.)
"""

from __future__ import annotations

import re
import struct

from cra_fw.records import ElfInfo

MACHINES = {
    40: "arm",
    183: "aarch64",
    8: "mips",
    10: "mips",
    3: "x86",
    62: "x86_64",
    20: "powerpc",
    21: "powerpc64",
    243: "riscv",
    42: "sh",
    2: "sparc",
    43: "sparc64",
    22: "s390",
    93: "arc",
    195: "arc",
    94: "xtensa",
    4: "m68k",
    258: "loongarch",
    189: "microblaze",
    113: "nios2",
}
TYPES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 1, 4, 5, 6, 10, 11
DT_SONAME, DT_RPATH, DT_BIND_NOW, DT_RUNPATH, DT_FLAGS = 14, 15, 24, 29, 30
DT_GNU_HASH, DT_FLAGS_1, DT_MIPS_SYMTABNO = 0x6FFFFEF5, 0x6FFFFFFB, 0x70000011
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
PF_X = 0x1
SHT_SYMTAB, SHT_DYNSYM = 2, 11
MAX_ENTRIES = 200_000
# per-file record caps: a hostile ELF must not make the report grow without bound
MAX_NEEDED = 256  # distinct DT_NEEDED names kept (real programs need a few dozen)
MAX_NAME = 256  # characters of a SONAME, DT_NEEDED name, interpreter, RPATH/RUNPATH
_CHK = re.compile(rb"\x00(__[a-z0-9_]+_chk)\x00")
_CANARY = (b"__stack_chk_fail", b"__stack_chk_fail_local", b"__intel_security_cookie")
_CANARY_IMPORTS = {
    "__stack_chk_fail",
    "__stack_chk_fail_local",
    "__stack_chk_guard",
    "__intel_security_cookie",
}
_NOT_FORTIFY = ("__stack_chk", "__cxa_chk")


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        if len(data) < 52 or data[:4] != b"\x7fELF":
            raise _Bad
        self.data = data
        self.is64 = data[4] == 2
        self.e = "<" if data[5] != 2 else ">"

    def unpack(self, fmt: str, offset: int) -> tuple:
        size = struct.calcsize(self.e + fmt)
        if offset < 0 or offset + size > len(self.data):
            raise _Bad
        return struct.unpack_from(self.e + fmt, self.data, offset)

    def cstr(self, offset: int, limit: int = 4096) -> str:
        if offset < 0 or offset >= len(self.data):
            return ""
        end = self.data.find(b"\0", offset, offset + limit)
        raw = self.data[offset : end if end != -1 else offset + limit]
        return raw.decode("utf-8", "replace")


def read_elf_info(data: bytes) -> ElfInfo | None:
    """ElfInfo for an ELF file's bytes, or None when they are not ELF at all."""
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    try:
        return _read(_Reader(data))
    except (_Bad, struct.error, ValueError, IndexError, OverflowError, MemoryError):
        return _header_only(data)


def _header_only(data: bytes) -> ElfInfo:
    bits = 64 if data[4] == 2 else 32
    endian = "big" if data[5] == 2 else "little"
    machine = int.from_bytes(data[18:20], endian)
    etype = int.from_bytes(data[16:18], endian)
    return ElfInfo(
        arch=MACHINES.get(machine, f"em{machine}"),
        bits=bits,
        endian=endian,
        elf_type=TYPES.get(etype, "?"),
        static=False,
        flags="malformed",
    )


def _read(r: _Reader) -> ElfInfo:
    (
        etype,
        machine,
        _ver,
        _entry,
        phoff,
        shoff,
        eflags,
        _ehsize,
        phentsize,
        phnum,
        shentsize,
        shnum,
        shstrndx,
    ) = r.unpack("HHIQQQIHHHHHH" if r.is64 else "HHIIIIIHHHHHH", 16)
    segments = _segments(r, phoff, phentsize, min(phnum, 4096))
    loads = [s for s in segments if s[0] == PT_LOAD]
    interpreter = ""
    gnu_stack = exec_stack = gnu_relro = False
    dynamic = None
    for ptype, flags, offset, _vaddr, filesz in segments:
        if ptype == PT_INTERP:
            interpreter = r.cstr(offset, min(filesz, MAX_NAME))
        elif ptype == PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif ptype == PT_GNU_STACK:
            gnu_stack, exec_stack = True, bool(flags & PF_X)
        elif ptype == PT_GNU_RELRO:
            gnu_relro = True
    sections = _sections(r, shoff, shentsize, min(shnum, 65535), shstrndx)

    tags = _dynamic_tags(r, *dynamic) if dynamic is not None else []
    first: dict[int, int] = {}
    for tag, val in tags:
        first.setdefault(tag, val)
    strtab_off = _vaddr_to_offset(loads, first[DT_STRTAB]) if DT_STRTAB in first else None
    strsz = first.get(DT_STRSZ, 0)

    def dstr(index: int) -> str:
        if strtab_off is None or index < 0 or (strsz and index >= strsz):
            return ""
        return r.cstr(strtab_off + index, MAX_NAME)

    capped: list[str] = []
    names = list(dict.fromkeys(dstr(v) for t, v in tags if t == DT_NEEDED))  # a repeated entry says nothing
    if len(names) > MAX_NEEDED:
        capped.append(f"needed:{len(names)}")
    needed = tuple(names[:MAX_NEEDED])
    soname = dstr(first[DT_SONAME]) if DT_SONAME in first else ""
    rpath = dstr(first[DT_RPATH]) if DT_RPATH in first else ""
    runpath = dstr(first[DT_RUNPATH]) if DT_RUNPATH in first else ""
    flags_1 = first.get(DT_FLAGS_1, 0)
    bind_now = DT_BIND_NOW in first or bool(first.get(DT_FLAGS, 0) & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW)
    pie_flag = bool(flags_1 & DF_1_PIE)
    imported = _imported_symbols(r, first, loads, strtab_off, sections)

    has_symtab = False
    symtab_names = b""
    for _name, sh_type, _offset, _size, link in sections:
        if sh_type == SHT_SYMTAB:
            has_symtab = True
            if 0 <= link < len(sections):
                str_off, str_size = sections[link][2], sections[link][3]
                if 0 <= str_off and str_off + str_size <= len(r.data):
                    symtab_names = b"\0" + r.data[str_off : str_off + str_size] + b"\0"

    kind = TYPES.get(etype, "?")
    is_dynamic = bool(interpreter) or bool(needed)
    # static: an executable (or static-pie) that loads nothing; a DYN without PIE is a library
    static = not is_dynamic and (kind == "EXEC" or (kind == "DYN" and (pie_flag or dynamic is None)))
    if is_dynamic or (kind == "DYN" and not static):
        # imported only: ld.so on ARM *defines* __stack_chk_guard without using a canary itself
        stack_chk = bool(imported & _CANARY_IMPORTS)
        fortify = sorted(
            n
            for n in imported
            if n.startswith("__") and n.endswith("_chk") and not n.startswith(_NOT_FORTIFY)
        )
    else:
        stack_chk = any(b"\0" + n + b"\0" in symtab_names for n in _CANARY)
        fortify = sorted({m.decode() for m in _CHK.findall(symtab_names)})
        fortify = [n for n in fortify if not n.startswith(_NOT_FORTIFY)]
    arch = MACHINES.get(machine, f"em{machine}")
    flags = ""
    if arch == "arm":
        flags = f"eabi{(eflags >> 24) & 0xFF}"
    elif arch == "mips":
        flags = f"0x{eflags:08x}"
    return ElfInfo(
        arch=arch,
        bits=64 if r.is64 else 32,
        endian="big" if r.e == ">" else "little",
        elf_type=kind,
        static=static,
        interpreter=interpreter,
        soname=soname,
        needed=needed,
        rpath=rpath,
        runpath=runpath,
        gnu_stack=gnu_stack,
        exec_stack=exec_stack,
        gnu_relro=gnu_relro,
        bind_now=bind_now,
        pie_flag=pie_flag,
        stack_chk=stack_chk,
        fortify_funcs=tuple(fortify[:64]),
        has_symtab=has_symtab,
        stripped=not has_symtab,
        flags=flags,
        capped=tuple(capped),
    )


def _segments(r: _Reader, phoff: int, phentsize: int, phnum: int) -> list[tuple[int, int, int, int, int]]:
    out: list[tuple[int, int, int, int, int]] = []
    if not phoff or phentsize < (56 if r.is64 else 32):
        return out
    for i in range(phnum):
        base = phoff + i * phentsize
        try:
            if r.is64:
                ptype, flags, offset, vaddr, _paddr, filesz, _memsz, _align = r.unpack("IIQQQQQQ", base)
            else:
                ptype, offset, vaddr, _paddr, filesz, _memsz, flags, _align = r.unpack("IIIIIIII", base)
        except _Bad:
            break
        out.append((ptype, flags, offset, vaddr, filesz))
    return out


def _sections(
    r: _Reader, shoff: int, shentsize: int, shnum: int, shstrndx: int
) -> list[tuple[str, int, int, int, int]]:
    raw = []
    if not shoff or shentsize < (64 if r.is64 else 40):
        return []
    for i in range(shnum):
        base = shoff + i * shentsize
        try:
            if r.is64:
                name, sh_type, _f, _a, offset, size, link, _info, _al, _es = r.unpack("IIQQQQIIQQ", base)
            else:
                name, sh_type, _f, _a, offset, size, link, _info, _al, _es = r.unpack("IIIIIIIIII", base)
        except _Bad:
            break
        raw.append((name, sh_type, offset, size, link))
    names_off = raw[shstrndx][2] if 0 <= shstrndx < len(raw) else None
    return [
        (r.cstr(names_off + n, 256) if names_off is not None else "", t, o, s, link)
        for n, t, o, s, link in raw
    ]


def _dynamic_tags(r: _Reader, offset: int, size: int) -> list[tuple[int, int]]:
    fmt, step = ("QQ", 16) if r.is64 else ("II", 8)
    tags = []
    for i in range(min(size // step, 4096)):
        try:
            tag, val = r.unpack(fmt, offset + i * step)
        except _Bad:
            break
        if tag == DT_NULL:
            break
        tags.append((tag, val))
    return tags


def _vaddr_to_offset(loads: list, vaddr: int) -> int | None:
    for _t, _f, offset, seg_vaddr, filesz in loads:
        if seg_vaddr <= vaddr < seg_vaddr + filesz:
            return offset + (vaddr - seg_vaddr)
    return None


def _symbol_count(r: _Reader, first: dict, loads: list, sections: list, symtab_off: int, entsize: int) -> int:
    for _name, sh_type, offset, size, _link in sections:
        if sh_type == SHT_DYNSYM and offset == symtab_off and entsize:
            return size // entsize
    if DT_MIPS_SYMTABNO in first:
        return first[DT_MIPS_SYMTABNO]
    if DT_HASH in first:
        off = _vaddr_to_offset(loads, first[DT_HASH])
        if off is not None:
            return r.unpack("II", off)[1]
    if DT_GNU_HASH in first:
        off = _vaddr_to_offset(loads, first[DT_GNU_HASH])
        if off is not None:
            nbuckets, symoffset, bloom_size, _shift = r.unpack("IIII", off)
            buckets_off = off + 16 + bloom_size * (8 if r.is64 else 4)
            top = 0
            for i in range(min(nbuckets, MAX_ENTRIES)):
                top = max(top, r.unpack("I", buckets_off + 4 * i)[0])
            if top < symoffset:
                return symoffset
            chain_off = buckets_off + 4 * nbuckets
            idx = top
            while idx < MAX_ENTRIES:
                if r.unpack("I", chain_off + 4 * (idx - symoffset))[0] & 1:
                    return idx + 1
                idx += 1
    if DT_STRTAB in first and first[DT_STRTAB] > first.get(DT_SYMTAB, 0):
        return (first[DT_STRTAB] - first[DT_SYMTAB]) // max(entsize, 1)
    return 0


def _imported_symbols(
    r: _Reader, first: dict, loads: list, strtab_off: int | None, sections: list
) -> set[str]:
    """Names of undefined dynamic symbols: what the object takes from others."""
    imported: set[str] = set()
    if DT_SYMTAB not in first or strtab_off is None:
        return imported
    symtab_off = _vaddr_to_offset(loads, first[DT_SYMTAB])
    if symtab_off is None:
        return imported
    fmt = r.e + ("IBBHQQ" if r.is64 else "IIIBBH")
    entsize = struct.calcsize(fmt)
    if first.get(DT_SYMENT, entsize) != entsize:
        return imported
    try:
        count = min(_symbol_count(r, first, loads, sections, symtab_off, entsize), MAX_ENTRIES)
    except _Bad:
        count = 0
    end = min(len(r.data), symtab_off + count * entsize)
    end -= (end - symtab_off) % entsize
    if end <= symtab_off:
        return imported
    shndx_i = 3 if r.is64 else 5
    data = r.data
    for sym in struct.iter_unpack(fmt, data[symtab_off:end]):
        name = sym[0]
        if not name or sym[shndx_i] != 0:
            continue  # only imports matter: a defined *_chk (libc itself) is not fortification
        start = strtab_off + name
        stop = data.find(b"\0", start, start + 256)
        if stop != -1:
            imported.add(data[start:stop].decode("utf-8", "replace"))
    return imported
