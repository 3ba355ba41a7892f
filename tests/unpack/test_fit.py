"""U-Boot FIT images as a layer: each image's data becomes a file, signatures are summarised,
and hostile node names or data pointers cannot escape or crash."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_IMAGES, scan_cli

HOSTILE_DTS = """/dts-v1/;
/ {
    description = "hostile";
    images {
        .. { data = [de ad be ef]; type = "kernel"; };
        outside { data-size = <0x1000000>; data-position = <0x10>; type = "ramdisk"; };
        ok { data = "hello world"; type = "firmware"; };
    };
};
"""


def _layers(outdir: Path) -> dict[str, dict]:
    report = json.loads((outdir / "report.json").read_text())
    return {la["id"]: la for la in report["layers"]}, report


@pytest.mark.parametrize("backend", ["unblob", "binwalk"])
def test_signed_fit_fixture_layer(tmp_path, ground_truth, backend):
    image = FIXTURE_IMAGES / "fit-armel-signed.itb"
    gt = next(i for i in ground_truth["images"] if i["name"] == image.name)
    want = next(la for la in gt["layers"] if la["format"] == "fit")
    run = scan_cli(image, tmp_path / "out", "--extractor", backend, command="unpack")
    assert run.returncode == 0, run.stderr
    layers, report = _layers(run.outdir)
    fits = [la for la in layers.values() if la["format"] == "fit"]
    assert len(fits) == 1
    fit = fits[0]
    assert (fit["offset"], fit["size"], fit["sha256"]) == (want["offset"], want["size"], want["sha256"])
    assert fit["details"] == want["details"]
    names = sorted(f["path"] for f in report["files"] if f["layer_id"] == fit["id"])
    assert names == ["/fdt-1", "/kernel-1", "/ramdisk-1"]
    # the device tree is a data file of the FIT, not a FIT of its own
    assert sum(1 for la in layers.values() if la["format"] == "fit") == 1


def test_hostile_fit_node_names_and_pointers(tmp_path):
    dtb = tmp_path / "hostile.itb"
    subprocess.run(
        ["dtc", "-I", "dts", "-O", "dtb", "-o", str(dtb), "-"],
        input=HOSTILE_DTS.encode(),
        check=True,
        capture_output=True,
    )
    run = scan_cli(dtb, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    layers, report = _layers(run.outdir)
    fit = next(la for la in layers.values() if la["format"] == "fit")
    assert "image outside: data lies beyond the end of the file" in fit["note"]
    assert fit["details"]["images"] == "..:kernel,ok:firmware"
    assert fit["details"]["signed"] == "no"
    files = {f["path"]: f for f in report["files"] if f["layer_id"] == fit["id"]}
    assert sorted(files) == ["/_..", "/ok"]
    assert files["/ok"]["size"] == len("hello world\0")
    # nothing was written beside the output folder (a node named ".." must not climb out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.itb", "out"]


def test_truncated_fit_is_not_a_layer_and_no_traceback(tmp_path):
    data = (FIXTURE_IMAGES / "fit-armel-signed.itb").read_bytes()
    cut = tmp_path / "cut.itb"
    cut.write_bytes(data[: len(data) // 2])
    run = scan_cli(cut, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 3)
    layers, _ = _layers(run.outdir)
    # the FDT header claims more bytes than the file has: not taken as a FIT
    assert not [la for la in layers.values() if la["format"] == "fit"]


def test_signed_fit_fixture_verifies_against_its_control_dtb(tmp_path, ground_truth):
    from tests.conftest import run_cli

    image = FIXTURE_IMAGES / "fit-armel-signed.itb"
    control = FIXTURE_IMAGES.parent / "generated" / "fit-armel-control.dtb"
    ok = run_cli("verify", str(image), "--trust", str(control), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["verdict"] == "valid"
    # one byte of the kernel changed: its hash no longer matches the signed configuration
    gt = next(i for i in ground_truth["images"] if i["name"] == image.name)
    kernel = next(la for la in gt["layers"] if la["format"] == "kernel")
    data = bytearray(image.read_bytes())
    data[kernel["offset"] + kernel["size"] // 2] ^= 0x01
    bad = tmp_path / "tampered.itb"
    bad.write_bytes(bytes(data))
    res = run_cli("verify", str(bad), "--trust", str(control), "--json")
    assert res.returncode != 0
    assert json.loads(res.stdout)["verdict"] == "digest_mismatch"
