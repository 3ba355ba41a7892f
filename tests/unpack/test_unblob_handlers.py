"""The unblob handler table cra-fw loads: unblob's, without lief, with the same chunks."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cra_fw.unpack.unblob_handlers import UNBLOB_HANDLERS

REAL_ELF = [Path(p) for p in ("/usr/bin/true", "/usr/bin/ls", "/usr/bin/python3") if Path(p).is_file()]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_table_is_unblobs_own_in_its_order_without_other_squashfs_flavours():
    # unblob's package imports every handler (and lief): in a child, not in the test process
    listed = _python(
        "from unblob.handlers import BUILTIN_HANDLERS\n"
        "for h in BUILTIN_HANDLERS:\n"
        "    if not h.NAME.startswith('squashfs') or h.NAME == 'squashfs_v4_le':\n"
        "        print(h.__module__.removeprefix('unblob.handlers.'), h.__name__)\n"
    )
    assert [tuple(line.split()) for line in listed.splitlines()] == list(UNBLOB_HANDLERS)


def test_preparing_the_backend_imports_neither_lief_nor_unblobs_handler_package():
    out = _python(
        "import sys\n"
        "import cra_fw.pipeline\n"
        "from cra_fw.unpack.unblob_backend import UnblobBackend\n"
        "UnblobBackend().prepare()\n"
        "from cra_fw.unpack.unblob_handlers import unblob_handlers\n"
        "names = [h.NAME for h in unblob_handlers()]\n"
        "print(*(m in sys.modules for m in ('lief', 'unblob.handlers.executable.elf', 'rich', 'sqlite_utils')),\n"
        "      len(names), names.count('elf32'), names.count('squashfs_v4_le'), 'squashfs_v3' in names)\n"
    )
    # rich: structlog's pretty tracebacks, never shown; sqlite_utils: only once a database is opened
    assert out.split() == ["False"] * 4 + [str(len(UNBLOB_HANDLERS)), "1", "1", "False"]


def _chunk(handler: object, path: Path, offset: int) -> tuple[int, int] | None:
    from unblob.file_utils import File

    with File.from_path(path) as file:
        file.seek(offset)
        try:
            chunk = handler.calculate_chunk(file, offset)  # type: ignore[attr-defined]
        except (EOFError, ValueError, OSError):
            return None
        return (chunk.start_offset, chunk.end_offset) if chunk else None


@pytest.mark.skipif(not REAL_ELF, reason="no ELF binaries on this host")
def test_an_elf_inside_other_bytes_ends_where_the_file_ended(tmp_path):
    from cra_fw.unpack.unblob_elf import ELF32Handler, ELF64Handler

    rng = random.Random(7)
    for elf in REAL_ELF:
        blob = elf.read_bytes()
        before = rng.randbytes(4096 + rng.randrange(4096))
        path = tmp_path / f"{elf.name}.bin"
        path.write_bytes(before + blob + rng.randbytes(8192))
        handler = ELF64Handler() if blob[4] == 2 else ELF32Handler()
        # built that way: the ELF starts after `before` and is exactly the file that was copied
        assert _chunk(handler, path, len(before)) == (len(before), len(before) + len(blob)), elf


def test_elf_chunks_equal_unblobs_own_handler_on_real_and_damaged_headers(tmp_path):
    from unblob.handlers.executable import elf as theirs

    from cra_fw.unpack import unblob_elf as mine

    rng = random.Random(11)
    samples: list[Path] = []
    for elf in REAL_ELF:
        blob = bytearray(elf.read_bytes())
        samples.append(elf)
        for i in range(12):  # the same binary with header fields damaged
            bad = bytearray(blob)
            for _ in range(3):
                pos = rng.randrange(16, 64)
                bad[pos] = rng.randrange(256)
            path = tmp_path / f"{elf.name}.{i}"
            path.write_bytes(bytes(bad[: rng.choice([len(bad), len(bad) // 2, 100])]))
            samples.append(path)
    for i in range(200):  # random bytes behind an ELF identification, some with a module footer
        data = bytearray(rng.randbytes(rng.choice([60, 300, 6000])))
        data[0:7] = b"\x7fELF" + bytes([rng.choice([1, 2]), rng.choice([1, 2]), 1])
        data[16:18] = bytes([rng.choice([1, 2, 3]), 0])
        if i % 5 == 0:
            data[-40:-12] = b"~Module signature appended~\n"
        path = tmp_path / f"random.{i}"
        path.write_bytes(bytes(data))
        samples.append(path)
    pairs = [(theirs.ELF32Handler(), mine.ELF32Handler()), (theirs.ELF64Handler(), mine.ELF64Handler())]
    compared = 0
    for path in samples:
        for their, own in pairs:
            assert _chunk(own, path, 0) == _chunk(their, path, 0), (path.name, own.NAME)
            compared += 1
    assert compared == 2 * len(samples)


def test_struct_definitions_are_parsed_once_however_many_candidates(tmp_path, monkeypatch):
    """cpio's handler builds a parser per candidate: its C text must not be parsed per candidate."""
    from dissect.cstruct import cstruct
    from unblob.file_utils import File

    from cra_fw.unpack.unblob_handlers import unblob_handlers

    handlers = {h.NAME: h for h in unblob_handlers()}
    loads: list[int] = []
    original = cstruct.load

    def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        loads.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cstruct, "load", counting)
    rng = random.Random(3)
    data = bytearray(rng.randbytes(1 << 20))
    starts = [i * 4096 for i in range(200)]
    for pos in starts:
        data[pos : pos + 2] = b"\xc7\x71"  # cpio binary magic, then garbage
    path = tmp_path / "noise.bin"
    path.write_bytes(bytes(data))
    handler = handlers["cpio_binary"]()
    with File.from_path(path) as file:
        for pos in starts:
            file.seek(pos)
            try:
                handler.calculate_chunk(file, pos)
            except Exception:  # noqa: BLE001, S112 - garbage is refused one way or another
                continue
    assert len(loads) <= 1


@pytest.mark.skipif(not REAL_ELF, reason="no ELF binaries on this host")
def test_a_raw_image_with_an_elf_still_reports_its_elf_layer(tmp_path):
    """End to end: unpack finds the ELF region (no lief in the scan) and names it."""
    blob = REAL_ELF[0].read_bytes()
    image = tmp_path / "raw.bin"
    image.write_bytes(b"\xff" * 8192 + blob + b"\xff" * (8192 - len(blob) % 4096))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "cra_fw", "unpack", str(image), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    layers = json.loads((out / "report.json").read_text())["layers"]
    elf = [la for la in layers if la["format"] == "elf"]
    assert [(la["offset"], la["size"]) for la in elf] == [(8192, len(blob))]
