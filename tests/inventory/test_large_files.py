"""Files above the whole-read size get the same facts, read through a map instead of memory."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from cra_fw import inventory
from cra_fw.records import FileKind, Layer, LayerStatus


def _layer(root: Path) -> Layer:
    return Layer(
        id="L1",
        parent_id="L0",
        format="squashfs",
        offset=0,
        size=0,
        sha256="",
        status=LayerStatus.EXTRACTED,
        depth=1,
        root=str(root),
    )


def _facts(root: Path):
    result = inventory.build_inventory([_layer(root)])
    return {f.path: (f.kind, f.size, f.sha256, f.elf) for f in result.files}


def test_large_elf_facts_match_whole_read(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    exe = Path(os.path.realpath(sys.executable))
    shutil.copyfile(exe, root / "python")
    big = root / "big.bin"
    big.write_bytes(os.urandom(1024) * 3000)  # 3 MB of data, hashed in blocks
    whole = _facts(root)
    monkeypatch.setattr(inventory, "READ_WHOLE", 4096)
    mapped = _facts(root)
    assert mapped == whole
    kind, size, sha, elf = mapped["/python"]
    assert kind == FileKind.ELF and elf is not None and elf.arch
    assert sha == hashlib.sha256(exe.read_bytes()).hexdigest()
    assert mapped["/big.bin"][2] == hashlib.sha256(big.read_bytes()).hexdigest()
