"""The inventory's own ELF reader against pyelftools, file by file, on the fixture images.

cra-fw reads ELF headers with its own bounds-checked reader (``cra_fw/inventory/elf.py``: one
pass over the bytes, about 8x faster than pyelftools, and it never raises on a malformed
file).  pyelftools is the reference it is held to: for every ELF file of five images (MIPS
little-endian, AArch64, ARM hard-float, s390x big-endian; built from Debian packages by
``fixtures/build.py``), the facts the inventory recorded must be the ones pyelftools reads
from the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cra_fw.context import ScanOptions
from cra_fw.pipeline import scan
from cra_fw.records import FileEntry
from tests.identify.treectx import _ARCH as ARCH

elftools = pytest.importorskip("elftools", reason="pyelftools (test extra) not installed")
from elftools.elf.dynamic import DynamicSegment  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
IMAGES = (
    "sqfs-xz-mipsel.sqfs",
    "sqfs-gzip-arm64.sqfs",
    "sqfs-lzo-armhf.sqfs",
    "sqfs-xz-armhf-libs.sqfs",
    "jffs2-be-s390x.jffs2",
)
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000


def reference(path: Path) -> dict[str, object]:
    """What pyelftools reads: the same facts ``ElfInfo`` holds, from segments (as the loader sees
    the file; sstripped firmware binaries have no section headers) plus the static symbol table."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        facts: dict[str, object] = {
            "arch": ARCH.get(elf["e_machine"], elf["e_machine"]),
            "bits": elf.elfclass,
            "endian": "little" if elf.little_endian else "big",
            "elf_type": elf["e_type"][3:],
            "interpreter": "",
            "soname": "",
            "needed": (),
            "rpath": "",
            "runpath": "",
            "gnu_stack": False,
            "exec_stack": False,
            "gnu_relro": False,
            "bind_now": False,
            "pie_flag": False,
        }
        needed: list[str] = []
        for seg in elf.iter_segments():
            kind = seg["p_type"]
            if kind == "PT_INTERP":
                facts["interpreter"] = seg.get_interp_name()
            elif kind == "PT_GNU_STACK":
                facts["gnu_stack"], facts["exec_stack"] = True, bool(seg["p_flags"] & 1)
            elif kind == "PT_GNU_RELRO":
                facts["gnu_relro"] = True
            elif isinstance(seg, DynamicSegment):
                for tag in seg.iter_tags():
                    name, value = tag.entry.d_tag, tag.entry.d_val
                    if name == "DT_SONAME":
                        facts["soname"] = tag.soname
                    elif name == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif name == "DT_RPATH":
                        facts["rpath"] = tag.rpath
                    elif name == "DT_RUNPATH":
                        facts["runpath"] = tag.runpath
                    elif name == "DT_BIND_NOW" or (name == "DT_FLAGS" and value & DF_BIND_NOW):
                        facts["bind_now"] = True
                    elif name == "DT_FLAGS_1":
                        facts["bind_now"] = bool(facts["bind_now"]) or bool(value & DF_1_NOW)
                        facts["pie_flag"] = bool(value & DF_1_PIE)
        facts["needed"] = tuple(needed)
        facts["has_symtab"] = elf.get_section_by_name(".symtab") is not None
    return facts


@pytest.fixture(scope="module")
def elf_files(tmp_path_factory) -> list[FileEntry]:
    files: list[FileEntry] = []
    for name in IMAGES:
        image = FIXTURES / name
        if not image.exists():
            pytest.skip(f"{name} not built")
        out = tmp_path_factory.mktemp(name)
        report = scan(image, out, ScanOptions(progress=False, workers=1, analyse=False, keep_extracted=True))
        files += [f for f in report.files if f.elf is not None and f.kind.value == "elf"]
    return files


def test_every_elf_file_reads_as_pyelftools_reads_it(elf_files):
    arches = {f.elf.arch for f in elf_files if f.elf}
    assert {"mips", "aarch64", "arm", "s390"} <= arches
    assert len(elf_files) >= 50, len(elf_files)
    mismatches = []
    for entry in elf_files:
        assert entry.elf is not None
        want = reference(Path(entry.abs_path))
        got = {key: getattr(entry.elf, key) for key in want}
        if got != want:
            diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
            mismatches.append(f"{entry.layer_id}:{entry.path}: {diff}")
    assert mismatches == []
