"""Test helper: a ScanContext over a real extracted directory tree (stands in for the inventory stage)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

from cra_fw.context import ScanContext, ScanOptions
from cra_fw.records import ElfInfo, FileEntry, FileKind, ImageInfo, Layer, LayerStatus

_ARCH = {
    "EM_ARM": "arm",
    "EM_AARCH64": "aarch64",
    "EM_MIPS": "mips",
    "EM_386": "x86",
    "EM_X86_64": "x86_64",
    "EM_S390": "s390",
    "EM_PPC": "powerpc",
    "EM_RISCV": "riscv",
}


def elf_info(path: Path) -> ElfInfo | None:
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            soname, needed, interp = "", [], ""
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name()
            # segments, not sections: sstripped firmware binaries have no section headers
            for sec in list(elf.iter_segments()):
                if isinstance(sec, DynamicSegment):
                    for tag in sec.iter_tags():
                        if tag.entry.d_tag == "DT_SONAME":
                            soname = tag.soname
                        elif tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
            dynamic = any(seg["p_type"] == "PT_DYNAMIC" for seg in elf.iter_segments())
            return ElfInfo(
                arch=_ARCH.get(elf["e_machine"], str(elf["e_machine"])),
                bits=elf.elfclass,
                endian="little" if elf.little_endian else "big",
                elf_type=elf["e_type"][3:],
                static=not dynamic and not interp,
                interpreter=interp,
                soname=soname,
                needed=tuple(needed),
            )
    except (ELFError, OSError, ValueError, KeyError, AttributeError):
        return None


def tree_context(
    root: Path,
    layer_id: str = "rootfs",
    cache_dir: Path | None = None,
    workers: int = 1,
    name: str = "test-image",
) -> ScanContext:
    """FileEntry records for every file under ``root`` (symlinks kept as symlinks)."""
    files: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for fn in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = Path(dirpath) / fn
            rel = "/" + str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                files.append(
                    FileEntry(
                        layer_id,
                        rel,
                        FileKind.SYMLINK,
                        0,
                        st.st_mode,
                        link_target=os.readlink(p),
                        abs_path=str(p),
                    )
                )
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            data = p.read_bytes()
            elf = elf_info(p) if data[:4] == b"\x7fELF" else None
            kind = FileKind.ELF if elf else FileKind.DATA
            files.append(
                FileEntry(
                    layer_id,
                    rel,
                    kind,
                    st.st_size,
                    st.st_mode,
                    sha256=hashlib.sha256(data).hexdigest(),
                    elf=elf,
                    abs_path=str(p),
                )
            )
    layer = Layer(layer_id, None, "directory", 0, 0, "", LayerStatus.EXTRACTED, 0, root=str(root))
    image = ImageInfo(name, 0, "0" * 64, "0" * 128, "0" * 32)
    return ScanContext(
        image, [layer], files, ScanOptions(workers=workers, cache_dir=cache_dir, progress=False)
    )
