"""Layer ids do not depend on which parallel extraction finished first."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURE_IMAGES, run_cli

IMAGE = FIXTURE_IMAGES / "fit-armel-signed.itb"  # kernel (xz) and ramdisk (gzip) side by side


def _layers(tmp_path, workers: int) -> list[tuple]:
    out = tmp_path / f"w{workers}"
    proc = run_cli("unpack", str(IMAGE), "-o", str(out), "-q", "--workers", str(workers))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    return [
        (la["id"], la["parent_id"], la["format"], la["offset"], la["size"], la["parent_path"])
        for la in report["layers"]
    ]


@pytest.mark.skipif(not IMAGE.exists(), reason="fixture image missing")
def test_one_worker_and_two_number_layers_alike_breadth_first(tmp_path):
    one, two = _layers(tmp_path, 1), _layers(tmp_path, 2)
    assert one == two
    ids = {lid: (parent, fmt, path) for lid, parent, fmt, _o, _s, path in one}
    assert [lid for lid, *_ in one] == [f"L{i}" for i in range(len(one))]
    # breadth first, each file's regions in file order: the FIT's kernel before its ramdisk,
    # then what each of those held, the kernel's first
    assert ids["L1"][1] == "fit"
    formats = [(parent, fmt, path) for _lid, parent, fmt, _o, _s, path in one[2:]]
    kernel = next(lid for lid, (_p, fmt, path) in ids.items() if fmt == "xz" and path == "/kernel-1")
    ramdisk = next(lid for lid, (_p, fmt, path) in ids.items() if fmt == "gzip" and path == "/ramdisk-1")
    assert int(kernel[1:]) < int(ramdisk[1:])
    depth2 = [parent for parent, _fmt, _path in formats if parent not in ("L0", "L1")]
    assert depth2 == sorted(depth2, key=lambda lid: int(lid[1:]))
