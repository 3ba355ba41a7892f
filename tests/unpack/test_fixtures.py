"""Every fixture image, both backends: the exact files of every filesystem, by path, type,
mode, hash and symlink target, found at the layer chain the builder recorded."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import FIXTURE_IMAGES, ROOT, scan_cli

SCHEMA = json.loads((ROOT / "cra_fw" / "schemas" / "report.schema.json").read_text())
BACKENDS = ["unblob", "binwalk"]
# formats a backend cannot extract here, and what the report must say instead
UNSUPPORTED: dict[tuple[str, str], str] = {}
# jefferson (the jffs2 extractor both backends use) does not restore folder modes
DIR_MODES_LOST = {"jffs2"}
ARCH = {
    "armhf": ("arm", 32, "little"),
    "armel": ("arm", 32, "little"),
    "arm64": ("aarch64", 64, "little"),
    "mipsel": ("mips", 32, "little"),
    "s390x": ("s390", 64, "big"),
}


def _truth() -> dict:
    path = FIXTURE_IMAGES / "ground-truth.json"
    if not path.exists():
        return {"images": []}
    return json.loads(path.read_text())


IMAGES = [img for img in _truth()["images"] if img.get("filesystems")]


@cache
def _scan(name: str, backend: str, tmp_root: str) -> dict:
    out = Path(tmp_root) / f"{name}.{backend}"
    run = scan_cli(FIXTURE_IMAGES / name, out, "--extractor", backend, timeout=600, command="unpack")
    assert "Traceback" not in run.stderr, run.stderr
    report = run.report
    report["_returncode"] = run.returncode
    return report


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture-scans")

    def get(name: str, backend: str) -> dict:
        return _scan(name, backend, str(root))

    return get


def chain_of(report: dict, layer_id: str) -> list[str]:
    by_id = {la["id"]: la for la in report["layers"]}
    chain = []
    cur = by_id.get(layer_id)
    while cur is not None:
        chain.append(cur["format"])
        cur = by_id.get(cur["parent_id"])
    return list(reversed(chain))


def expected_chain(gt_chain: list[str]) -> list[str]:
    return ["raw", *(gt_chain[1:] if gt_chain and gt_chain[0] == "raw" else gt_chain)]


def files_of(report: dict, layer_id: str) -> dict[str, tuple]:
    out = {}
    for f in report["files"]:
        if f["layer_id"] != layer_id:
            continue
        if f["kind"] == "directory":
            out[f["path"]] = ("dir", f["mode"] & 0o7777)
        elif f["kind"] == "symlink":
            out[f["path"]] = ("symlink", f["link_target"])
        elif f["kind"] == "device":
            out[f["path"]] = ("device",)
        else:
            out[f["path"]] = ("file", f["mode"] & 0o7777, f["sha256"])
    return out


def truth_files(records: list[dict]) -> dict[str, tuple]:
    out = {}
    for r in records:
        if r["type"] == "dir":
            out[r["path"]] = ("dir", r["mode"])
        elif r["type"] == "symlink":
            out[r["path"]] = ("symlink", r["target"])
        elif r["type"] == "file":
            out[r["path"]] = ("file", r["mode"], r["sha256"])
        else:
            out[r["path"]] = ("device",)
    return out


def _cases():
    for img in IMAGES:
        for backend in BACKENDS:
            yield pytest.param(img, backend, id=f"{img['name']}-{backend}")


@pytest.mark.skipif(not IMAGES, reason="fixtures/images/ground-truth.json missing: run fixtures/build.py")
@pytest.mark.parametrize(("image", "backend"), list(_cases()))
def test_fixture_filesystems(scans, image, backend):
    report = scans(image["name"], backend)
    jsonschema.validate({k: v for k, v in report.items() if k != "_returncode"}, SCHEMA)
    assert report["image"]["sha256"] == image["sha256"]
    gt_layers = {la["id"]: la for la in image["layers"]}
    for fs_name, fs in image["filesystems"].items():
        gt_layer = gt_layers[fs["layer"]]
        want_chain = expected_chain(gt_layer["chain"])
        unsupported = [fmt for fmt in want_chain if (backend, fmt) in UNSUPPORTED]
        candidates = [la for la in report["layers"] if chain_of(report, la["id"]) == want_chain]
        if unsupported:
            # the backend cannot extract this format: the report must say so, not stay silent
            assert candidates, f"{fs_name}: no {want_chain} layer at all"
            assert any(la["status"] in ("unsupported", "failed") for la in candidates)
            assert any(
                f["rule_id"] in ("unpack.unsupported", "unpack.extract-failed") for f in report["findings"]
            )
            continue
        assert candidates, f"{fs_name}: expected chain {want_chain}, got " + str(
            sorted({tuple(chain_of(report, la["id"])) for la in report["layers"]})
        )
        # the right offset inside its parent
        assert any(la["offset"] == gt_layer["offset"] for la in candidates), [
            la["offset"] for la in candidates
        ]
        extracted = [la for la in candidates if la["status"] == "extracted"]
        assert len(extracted) == 1, candidates
        layer = extracted[0]
        for key, value in gt_layer.get("details", {}).items():
            if key in ("compression", "endianness", "variant"):
                assert layer["details"].get(key) == value, (key, layer["details"])
        got = files_of(report, layer["id"])
        want = truth_files(fs["files"])
        if layer["format"] in DIR_MODES_LOST:
            got = {p: (v[0],) if v[0] == "dir" else v for p, v in got.items()}
            want = {p: (v[0],) if v[0] == "dir" else v for p, v in want.items()}
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        assert not missing and not extra, f"missing {missing[:10]} extra {extra[:10]}"
        wrong = sorted(p for p in want if got[p] != want[p])
        assert not wrong, [(p, got[p], want[p]) for p in wrong[:5]]


@pytest.mark.skipif(not IMAGES, reason="fixtures/images/ground-truth.json missing: run fixtures/build.py")
@pytest.mark.parametrize(("image", "backend"), list(_cases()))
def test_fixture_kernel_and_elf_facts(scans, image, backend):
    report = scans(image["name"], backend)
    for gt in image["layers"]:
        if gt["format"] != "kernel":
            continue
        kernels = [f for f in report["files"] if f["sha256"] == gt["sha256"]]
        assert kernels, "the kernel payload was not recovered"
        assert kernels[0]["kind"] == "kernel"
        assert chain_of(report, kernels[0]["layer_id"]) == expected_chain(gt["chain"][:-1])
    arch = ARCH.get(image["arch"])
    elves = [f for f in report["files"] if f["kind"] == "elf" and f["elf"]]
    if arch is None or not elves:
        return
    want = arch
    for f in elves:
        assert (f["elf"]["arch"], f["elf"]["bits"], f["elf"]["endian"]) == want, f["path"]
    # dynamic executables name their interpreter and libraries; libraries carry a SONAME
    for f in elves:
        if f["path"].endswith(".so") or ".so." in f["path"]:
            if f["elf"]["elf_type"] == "DYN" and "/lib" in f["path"] and not f["elf"]["interpreter"]:
                assert f["elf"]["soname"], f["path"]
        if f["elf"]["interpreter"]:
            assert not f["elf"]["static"]
            assert f["elf"]["needed"], f["path"]


def test_unknown_high_entropy_gap_is_reported(scans):
    image = next(
        (img for img in _truth()["images"] if any(la["format"] == "unknown" for la in img["layers"])), None
    )
    if image is None:
        pytest.skip("no fixture with an unknown region")
    report = scans(image["name"], "unblob")
    gt = next(la for la in image["layers"] if la["format"] == "unknown")
    unknown = [la for la in report["layers"] if la["format"] == "unknown" and la["offset"] == gt["offset"]]
    assert unknown and unknown[0]["size"] == gt["size"] and unknown[0]["sha256"] == gt["sha256"]
    assert unknown[0]["entropy"] > 7.5
    hits = [f for f in report["findings"] if f["rule_id"] == "unpack.high-entropy"]
    assert [f["location"]["offset"] for f in hits] == [gt["offset"]]


GAP_IMAGES = (
    [img for img in _truth()["images"] if any(la["format"] == "padding" for la in img["layers"])]
    if IMAGES
    else []
)


@pytest.mark.parametrize("image", GAP_IMAGES, ids=lambda img: img["name"])
def test_raw_gaps_are_exactly_the_builders_padding_and_unknown_regions(scans, image):
    # one padding layer per erased stretch of flash, not one per 4 KiB boundary.  unblob only:
    # binwalk 2.3 does not know where a squashfs or jffs2 ends, so its gaps start elsewhere
    report = scans(image["name"], "unblob")
    root = next(la["id"] for la in report["layers"] if la["parent_id"] is None)
    got = sorted(
        (la["format"], la["offset"], la["size"], la["sha256"])
        for la in report["layers"]
        if la["parent_id"] == root and la["format"] in ("padding", "unknown")
    )
    want = sorted(
        (la["format"], la["offset"], la["size"], la["sha256"])
        for la in image["layers"]
        if la["parent"] is None and la["format"] in ("padding", "unknown")
    )
    assert got == want
