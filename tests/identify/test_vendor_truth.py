"""Every Linux image of ../shared/firmware* through the real `cra-fw scan`, against ground truth
written by hand (tests/identify/vendor_truth/<image>.toml: package databases, banners and version
strings read with strings/readelf, each with the file and byte offset it is in; never cra-fw's
output).  The scan must list every component the truth lists, with its release, and no other; each
claim must point at the file (and, for a string read from a file, the offset) the truth names.

An entry with ``known_miss`` is a component the truth records but no signature can prove (one
reachable build only, no release recorded): it is not required, and not a false positive either.
An image whose root filesystem cra-fw cannot unpack yet carries ``xfail`` (the reason).  Skipped where
the shared folder is absent (CI)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import scan_cli

TRUTH_DIR = Path(__file__).with_name("vendor_truth")
SHARED = Path(__file__).resolve().parents[3] / "shared"
TRUTHS = {
    p.name.removesuffix(".toml"): tomllib.loads(p.read_text()) for p in sorted(TRUTH_DIR.glob("*.toml"))
}


def test_truth_files_are_complete():
    assert len(TRUTHS) >= 15
    for name, truth in TRUTHS.items():
        assert truth["image"].endswith(name), name
        assert len(truth["sha256"]) == 64
        assert truth["daemons"] == [] and truth["credentials"] == []  # filled by the daemon/credential work
        for comp in truth.get("components", []):
            assert {"name", "version", "file", "evidence", "offset"} <= set(comp), (name, comp)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRUTHS), ids=lambda n: n[:48])
def test_scan_finds_the_ground_truth(name, tmp_path):
    truth = TRUTHS[name]
    image = SHARED / truth["image"]
    if not image.exists():
        pytest.skip(f"{image} not present")
    if truth.get("xfail"):
        pytest.xfail(truth["xfail"])
    run = scan_cli(image, tmp_path / "out", timeout=900)
    assert run.returncode in (0, 1), run.stderr
    assert "Traceback" not in run.stderr
    comps = run.report["components"]
    got = {(c["name"], c["version"]) for c in comps}
    required = {(c["name"], c["version"]) for c in truth.get("components", []) if not c.get("known_miss")}
    known = {(c["name"], c["version"]) for c in truth.get("components", []) if c.get("known_miss")}
    assert required - got == set(), f"missing {sorted(required - got)}"
    assert got - required - known == set(), f"not in the image: {sorted(got - required - known)}"

    # the evidence points where the truth does: the same file, and for a string read from a file,
    # an offset next to the one the truth recorded (a match may start a few bytes earlier, at a NUL)
    by_key = {(c["name"], c["version"]): c for c in comps}
    for entry in truth.get("components", []):
        if (
            entry.get("known_miss")
            or entry["file"].startswith("/usr/lib/opkg/")
            or not entry["file"].startswith("/")
        ):
            continue
        comp = by_key[(entry["name"], entry["version"])]
        here = [e for e in comp["evidence"] if e["path"].endswith(entry["file"])]
        assert here, f"{entry['name']}: no evidence in {entry['file']}: {comp['evidence']}"
        offsets = [e["offset"] for e in here if e.get("offset", -1) >= 0]
        if offsets and entry["offset"] >= 0:
            # a release string the file holds more than once: `also_at` lists the other places, and
            # `repeats_until` ends a run of identical lines (a .comment of one compiler line per object)
            starts = [entry["offset"], *entry.get("also_at", [])]
            end = entry.get("repeats_until", entry["offset"])
            assert any(
                any(abs(o - s) <= 64 for s in starts) or entry["offset"] <= o <= end + 64 for o in offsets
            ), (entry, offsets)
