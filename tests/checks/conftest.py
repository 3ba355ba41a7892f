"""Helpers for the checks tests: real directory trees through the real inventory."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from cra_fw.context import ScanContext, ScanOptions
from cra_fw.inventory import build_inventory
from cra_fw.records import ImageInfo, Layer, LayerStatus

DATA = Path(__file__).parent / "data"
SHARED_FIRMWARE = Path(__file__).resolve().parents[3] / "shared" / "firmware"


def tree_context(root: Path, options: ScanOptions | None = None, fmt: str = "squashfs") -> ScanContext:
    """A ScanContext for an unpacked tree: image layer L0 with the tree as layer L1."""
    options = options or ScanOptions(workers=2, progress=False)
    image = Layer(
        id="L0",
        parent_id=None,
        format="raw",
        offset=0,
        size=0,
        sha256="0" * 64,
        status=LayerStatus.IDENTIFIED,
        depth=0,
    )
    layer = Layer(
        id="L1",
        parent_id="L0",
        format=fmt,
        offset=0,
        size=0,
        sha256="1" * 64,
        status=LayerStatus.EXTRACTED,
        depth=1,
        root=str(root),
    )
    inv = build_inventory([image, layer], options=options)
    info = ImageInfo(
        name=root.name, size=0, sha256=hashlib.sha256(str(root).encode()).hexdigest(), sha512="", md5=""
    )
    return ScanContext(image=info, layers=[image, layer], files=list(inv.files), options=options)


def write_tree(root: Path, files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> Path:
    """Create files (paths relative to ``root``) with the given contents."""
    for rel, content in files.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content)
        else:
            p.write_bytes(content)
        if modes and rel in modes:
            os.chmod(p, modes[rel])
    return root


@pytest.fixture(scope="session")
def emux_rootfs(tmp_path_factory) -> Path:
    """The EMUX DV-MIPSEL router rootfs from shared/firmware (a real firmware tree), extracted."""
    archive = SHARED_FIRMWARE / "emux" / "DV-MIPSEL-rootfs-mipsel.tar.bz2"
    if not archive.exists():
        pytest.skip(f"{archive} not present")
    dest = tmp_path_factory.mktemp("emux")
    # GNU tar keeps the firmware's absolute symlinks as links (the inventory never follows them)
    subprocess.run(
        ["tar", "-xjf", str(archive), "-C", str(dest)], check=True, capture_output=True, timeout=120
    )
    return dest
