"""Where an ELF file in a larger file ends: unblob's ``elf32``/``elf64`` chunks without lief.

cra-fw records ELF regions as layers and never extracts them (``container =
false`` in formats.toml), so all it needs from unblob's ELF handler is the
chunk: the farthest of the header tables, the sections that occupy file bytes
and the segments, plus an appended kernel-module signature or a UPX-packed
tail.  unblob validates header fields against lief's enumerations; the valid
values are kept here as data, so importing this costs nothing and the chunks
are the same as unblob's.
"""

from __future__ import annotations

import struct
from typing import Any

from unblob.file_utils import iterate_patterns, read_until_past
from unblob.models import Handler, HandlerDoc, HandlerType, HexString, ValidChunk

# e_type: NONE, REL, EXEC, DYN, CORE
FILE_TYPES = frozenset(range(5))
REL = 1
VERSIONS = frozenset((0, 1))
# e_machine values with a name (lief.ELF.ARCH of lief 1.0)
MACHINES = frozenset(
    [*range(0, 11), 15, *range(17, 24), *range(36, 121), *range(131, 143), *range(160, 182), 183]
    + [*range(185, 189), *range(190, 220), 224, 243, 247, 252, 258, 36902]
)
# sh_type values with a name; a section of another type is not counted (as in unblob)
SECTION_TYPES = frozenset(
    [*range(0, 12), 0xE, 0xF, 0x10, 0x11, 0x12, 0x13, 0x60000001, 0x60000002, 0x6FFF4C03]
    + [0x6FFFFF00, 0x6FFFFFF5, 0x6FFFFFF6, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF]
)
NOBITS = 8
QNX_IFS_MARKER = b"\xeb\x7e\xff\x00"
QNX_IFS_MARKER_OFFSET = 0x3000
MODULE_SIGNATURE_FOOTER = b"~Module signature appended~\n"
MODULE_SIGNATURE_INFO = 12  # struct module_signature: 8 bytes, then the big-endian sig_len
UPX_FOOTER = b"\xff\x00\x00\x00\x00UPX!\x00\x00\x00\x00"
UPX_PACKHEAD = struct.Struct(
    "<4s4BQ5I"
)  # magic, version, format, level, method, ?, u_len, c_len, u_len2, ?, ?


class _ElfHandler(Handler):
    EXTRACTOR = None
    # struct formats without byte order: e_type .. e_shstrndx (after the 16 identification
    # bytes), one section header, one program header
    HEADER = ""
    SECTION = ""
    PROGRAM = ""

    @staticmethod
    def _read(file: Any, layout: str, endian: str) -> tuple:
        size = struct.calcsize(endian + layout)
        data = file.read(size)
        if len(data) < size:
            raise EOFError("ELF header past the end of the file")
        return struct.unpack(endian + layout, data)

    def calculate_chunk(self, file: Any, start_offset: int) -> ValidChunk | None:
        file.seek(start_offset + 5)
        endian = "<" if file.read(1) == b"\x01" else ">"
        file.seek(start_offset + 16)
        (
            e_type,
            e_machine,
            e_version,
            _entry,
            phoff,
            shoff,
            _flags,
            _ehsize,
            phentsize,
            phnum,
            shentsize,
            shnum,
            _,
        ) = self._read(file, self.HEADER, endian)
        if e_type not in FILE_TYPES or e_machine not in MACHINES or e_version not in VERSIONS:
            return None
        marker = start_offset + QNX_IFS_MARKER_OFFSET
        if file[marker : marker + 4] == QNX_IFS_MARKER:
            return None  # a QNX IFS starts with an ELF loader: not an ELF file
        last_section = 0
        file.seek(start_offset + shoff)
        for _ in range(shnum):
            sh_type, sh_offset, sh_size = self._section(self._read(file, self.SECTION, endian))
            if sh_type in SECTION_TYPES and sh_type != NOBITS:
                last_section = max(last_section, sh_offset + sh_size)
        last_program = 0
        file.seek(start_offset + phoff)
        for _ in range(phnum):
            p_offset, p_filesz = self._program(self._read(file, self.PROGRAM, endian))
            last_program = max(last_program, p_offset + p_filesz)
        end = start_offset + max(
            shoff + shnum * shentsize, phoff + phnum * phentsize, last_section, last_program
        )
        if e_type == REL:
            end = self._module_signature_end(file, end)
        if b"UPX!" in file[start_offset : min(end, start_offset + 4096)]:
            end = self._upx_end(file, start_offset, end)
        return ValidChunk(start_offset=start_offset, end_offset=end)

    @staticmethod
    def _section(fields: tuple) -> tuple[int, int, int]:
        raise NotImplementedError

    @staticmethod
    def _program(fields: tuple) -> tuple[int, int]:
        raise NotImplementedError

    @staticmethod
    def _module_signature_end(file: Any, end: int) -> int:
        """A signed kernel module: the ELF, a PKCS#7 signature, its length, then a footer."""
        file.seek(end)
        for footer in iterate_patterns(file, MODULE_SIGNATURE_FOOTER):
            file.seek(footer - MODULE_SIGNATURE_INFO)
            info = file.read(MODULE_SIGNATURE_INFO)
            if len(info) < MODULE_SIGNATURE_INFO:
                raise EOFError("module signature past the end of the file")
            (sig_len,) = struct.unpack(">I", info[8:])
            if footer == end + sig_len + MODULE_SIGNATURE_INFO:
                end = footer + len(MODULE_SIGNATURE_FOOTER)
            break  # only the first footer counts
        return end

    @staticmethod
    def _upx_end(file: Any, start: int, end: int) -> int:
        """A UPX-packed ELF ends after its pack header, where its compressed size says."""
        for found in iterate_patterns(file, UPX_FOOTER):
            file.seek(found + len(UPX_FOOTER))
            file.seek(read_until_past(file, b"\x00"))
            head = file.read(UPX_PACKHEAD.size)
            if len(head) < UPX_PACKHEAD.size:
                raise EOFError("UPX pack header past the end of the file")
            magic, _v, _f, _l, _m, _u1, u_len, c_len, u_len2, _u2, _u3 = UPX_PACKHEAD.unpack(head)
            packed = c_len + UPX_PACKHEAD.size
            if magic == b"UPX!" and u_len == u_len2 and packed == file.tell() - start and packed % 4 == 0:
                return start + packed
        return end


def _doc(bits: str) -> HandlerDoc:
    return HandlerDoc(
        name=f"ELF ({bits}-bit)",
        description=f"{bits}-bit ELF executable, library, object or core file (recognised, not extracted).",
        handler_type=HandlerType.EXECUTABLE,
        vendor=None,
        references=[],
        limitations=[],
    )


class ELF32Handler(_ElfHandler):
    NAME = "elf32"
    PATTERNS = [HexString("7F 45 4C 46 01 (01 | 02) 01")]
    HEADER = "HHIIIIIHHHHHH"
    SECTION = "IIIIIIIIII"
    PROGRAM = "IIIIIIII"
    DOC = _doc("32")

    @staticmethod
    def _section(fields: tuple) -> tuple[int, int, int]:
        return fields[1], fields[4], fields[5]

    @staticmethod
    def _program(fields: tuple) -> tuple[int, int]:
        return fields[1], fields[4]


class ELF64Handler(_ElfHandler):
    NAME = "elf64"
    PATTERNS = [HexString("7F 45 4C 46 02 (01 | 02) 01")]
    HEADER = "HHIQQQIHHHHHH"
    SECTION = "IIQQQQIIQQ"
    PROGRAM = "IIQQQQQQ"
    DOC = _doc("64")

    @staticmethod
    def _section(fields: tuple) -> tuple[int, int, int]:
        return fields[1], fields[4], fields[5]

    @staticmethod
    def _program(fields: tuple) -> tuple[int, int]:
        return fields[2], fields[5]
