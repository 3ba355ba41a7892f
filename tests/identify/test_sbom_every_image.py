"""Every committed fixture image through the real `cra-fw scan` (unpack + identify + SBOM writers):
the CycloneDX and SPDX SBOMs list exactly the builder's ground-truth components and versions.

test_identify_fixtures.py checks the identify stage alone on the trees plain tools extract; this
one covers the containers only cra-fw's unpacker opens (UBI, JFFS2, ext, FIT, nested zip, a raw
dump with an encrypted gap) and the SBOM files a user receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cra_fw.report import cyclonedx, spdx
from cra_fw.sbomcheck import check, load
from tests.conftest import scan_cli
from tests.identify.test_identify_fixtures import expected_components

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "fixtures" / "images"
GT_FILE = IMAGES / "ground-truth.json"


def _images() -> list[dict]:
    if not GT_FILE.exists():
        return []
    return json.loads(GT_FILE.read_text())["images"]


@pytest.mark.slow
@pytest.mark.parametrize("image", _images(), ids=lambda im: im["name"])
def test_sbom_lists_exactly_the_ground_truth(image, tmp_path):
    path = IMAGES / image["file"]
    if not path.exists():
        pytest.skip("image not built")
    run = scan_cli(path, tmp_path / "out")
    assert run.returncode in (0, 1), run.stderr  # 1: findings at the gate, not an error
    assert "Traceback" not in run.stderr
    expected = expected_components(image)

    cdx = json.loads((tmp_path / "out" / "sbom.cdx.json").read_text())
    got = {(c["name"], c.get("version", "")) for c in cdx.get("components", [])}
    assert got == expected, f"extra: {got - expected}, missing: {expected - got}"
    # the image itself is the top-level component, hashed
    top = cdx["metadata"]["component"]
    assert top["type"] == "firmware"
    assert {h["alg"] for h in top["hashes"]} >= {"SHA-256", "SHA-512"}
    assert next(h["content"] for h in top["hashes"] if h["alg"] == "SHA-256") == image["sha256"]

    spdx_doc = json.loads((tmp_path / "out" / "sbom.spdx.json").read_text())
    described = {
        r["relatedSpdxElement"] for r in spdx_doc["relationships"] if r["relationshipType"] == "DESCRIBES"
    }
    assert len(described) == 1
    spdx_got = {
        (p["name"], p.get("versionInfo", "")) for p in spdx_doc["packages"] if p["SPDXID"] not in described
    }
    assert spdx_got == expected, f"extra: {spdx_got - expected}, missing: {expected - spdx_got}"

    # schema-valid, and `sbom check` misses nothing for a component whose data is known: only the
    # release of a component whose binary records none, and the author cra-fw cannot know
    out = tmp_path / "out"
    assert cyclonedx.validate_json((out / "sbom.cdx.json").read_text()) is None
    assert cyclonedx.validate_xml((out / "sbom.cdx.xml").read_text()) is None
    assert spdx.validate(out / "sbom.spdx.json") == []
    unknown = {(name, "version") for name, version in expected if not version}
    for doc in ("sbom.cdx.json", "sbom.spdx.json"):
        result = check(load(out / doc))
        assert {(m.component, m.field) for m in result.missing if m.component} == unknown, doc
        assert {m.field for m in result.missing if not m.component} <= {
            "author of SBOM data",
            "SBOM creator (e-mail or URL)",
        }


@pytest.mark.slow
def test_a_stream_unpacked_whole_is_not_read_again(tmp_path):
    """rootfs-armhf.tar.gz: the decompressed tar stream is a layer unpacked further, so its bytes
    are identified through the tar's files; the stream itself is no occurrence of anything."""
    path = IMAGES / "rootfs-armhf.tar.gz"
    if not path.exists():
        pytest.skip("image not built")
    run = scan_cli(path, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    report = run.report
    streams = {lay["parent_path"] for lay in report["layers"] if lay["format"] == "tar"}
    assert streams and all(s.endswith(".uncompressed") for s in streams), streams
    paths = {e["path"] for c in report["components"] for e in c["evidence"]}
    assert paths and not paths & streams, paths
    assert "/bin/busybox" in paths
