"""Every file of ../shared/firmware-more/{mcu,rtos} through the real `cra-fw scan`: named layers, no
exit 3, exactly the SDK/RTOS/library releases the strings state (hand-written ground truth in
tests/data/mcu-ground-truth.toml), the application as the SBOM's top component with the chip as the
device, and SBOMs that validate and pass `sbom check`.  Skipped where the shared folder is absent."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from cra_fw.report import cyclonedx, spdx
from cra_fw.sbomcheck import check, load
from tests.conftest import scan_cli
from tests.mcu_tools import SHARED_MCU, SHARED_RTOS

TRUTH = tomllib.loads((Path(__file__).resolve().parents[1] / "data" / "mcu-ground-truth.toml").read_text())


def _path(name: str) -> Path:
    return (SHARED_RTOS if TRUTH[name].get("rtos") else SHARED_MCU) / name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRUTH), ids=lambda n: n[:40])
def test_shared_mcu_image(name, tmp_path):
    path = _path(name)
    if not path.exists():
        pytest.skip("shared firmware not present")
    truth = TRUTH[name]
    out = tmp_path / "out"
    run = scan_cli(path, out)
    assert run.returncode in (0, 1), run.stderr  # never 3 ("not a firmware image")
    assert "Traceback" not in run.stderr
    report = run.report
    assert not report["errors"], report["errors"]
    formats = [la["format"] for la in report["layers"]]
    for fmt in truth["layers"]:
        assert fmt in formats, f"no {fmt} layer in {formats}"
    assert "unknown" not in formats[:2]  # the top of the image is named, not an unknown blob

    expected = {(n, v) for n, v in truth["components"]}
    got = {(c["name"], c["version"]) for c in report["components"]}
    assert got == expected, f"extra {got - expected}, missing {expected - got}"
    for absent in truth.get("absent", []):
        assert absent not in {n for n, _ in got}

    cdx = json.loads((out / "sbom.cdx.json").read_text())
    top = cdx["metadata"]["component"]
    if "app" in truth:
        app_name, app_version, device = truth["app"]
        assert (top["name"], top.get("version", "")) == (app_name, app_version)
        devices = [c["name"] for c in cdx.get("components", []) if c["type"] == "device"]
        assert devices == ([device] if device else [])
        doc = json.loads((out / "sbom.spdx.json").read_text())
        described = next(
            r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"
        )
        pkg = next(p for p in doc["packages"] if p["SPDXID"] == described)
        assert (pkg["name"], pkg.get("versionInfo", "")) == (app_name, app_version)
    else:
        assert top["name"] == name and not [c for c in cdx.get("components", []) if c["type"] == "device"]
    assert top["type"] == "firmware"

    assert cyclonedx.validate_json((out / "sbom.cdx.json").read_text()) is None
    assert cyclonedx.validate_xml((out / "sbom.cdx.xml").read_text()) is None
    assert spdx.validate(out / "sbom.spdx.json") == []
    unknown = {(n, "version") for n, v in expected if not v}
    for doc_name in ("sbom.cdx.json", "sbom.spdx.json"):
        result = check(load(out / doc_name))
        assert {(m.component, m.field) for m in result.missing if m.component} == unknown, doc_name
