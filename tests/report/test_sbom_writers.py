"""CycloneDX 1.6 (JSON, XML) and SPDX 2.3 SBOMs from a real identify run: schema-valid, complete,
and pass `cra-fw sbom check` for every component whose data is known."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.cli import main
from cra_fw.identify import identify
from cra_fw.records import ImageInfo, ScanReport, ToolInfo
from cra_fw.report import cyclonedx, spdx
from cra_fw.sbomcheck import check, diff, load
from tests.identify.treectx import tree_context

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
IMAGE = IMAGES / "sqfs-gzip-arm64.sqfs"

pytestmark = pytest.mark.skipif(
    not IMAGE.exists() or shutil.which("unsquashfs") is None, reason="fixture image or unsquashfs missing"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> ScanReport:
    tmp = tmp_path_factory.mktemp("sbom")
    subprocess.run(
        ["unsquashfs", "-q", "-n", "-no-xattrs", "-d", str(tmp / "root"), str(IMAGE)],
        check=True,
        capture_output=True,
    )
    ctx = tree_context(tmp / "root")
    result = identify(ctx, use_cache=False)
    import hashlib

    data = IMAGE.read_bytes()
    image = ImageInfo(
        IMAGE.name,
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.sha512(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
    )
    return ScanReport(
        image=image,
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-11-27T00:00:00Z",
        components=result.components,
        dependencies=result.dependencies,
        files=ctx.files,
    )


def test_cyclonedx_json_and_xml_validate_against_the_1_6_schema(report, tmp_path):
    path = cyclonedx.write(report, tmp_path)
    assert path.name == "sbom.cdx.json" and (tmp_path / "sbom.cdx.xml").exists()
    text = path.read_text()
    assert cyclonedx.validate_json(text) is None
    assert cyclonedx.validate_xml((tmp_path / "sbom.cdx.xml").read_text()) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    root = bom["metadata"]["component"]
    assert root["type"] == "firmware" and root["name"] == IMAGE.name
    assert {h["alg"] for h in root["hashes"]} >= {"SHA-256", "SHA-512"}
    comps = {c["name"]: c for c in bom["components"]}
    db = comps["dropbear"]
    assert db["version"] == "2022.83"
    assert db["cpe"] == "cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:2022.83:*:*:*:*:*:*:*"
    assert db["purl"] == "pkg:generic/dropbear@2022.83"
    assert db["supplier"]["name"] and db["licenses"]
    assert {h["alg"] for h in db["hashes"]} == {"SHA-256", "SHA-512"}
    assert {o["location"] for o in db["evidence"]["occurrences"]} >= {"/usr/sbin/dropbear"}
    ident = db["evidence"]["identity"]
    assert ident[0]["field"] == "name" and ident[0]["methods"][0]["technique"] == "binary-analysis"
    assert 0 < ident[0]["confidence"] <= 1
    # a component whose release the image does not record: no version, no CPE, and a stated reason
    xc = comps["libxcrypt"]
    assert "version" not in xc and "cpe" not in xc and xc["purl"] == "pkg:generic/libxcrypt"
    assert {p["name"] for p in xc["properties"]} >= {"cra-fw:version"}
    assert "version" not in {i["field"] for i in xc["evidence"]["identity"]}
    assert "cra-fw:version" not in {p["name"] for p in db["properties"]}
    # dnsmasq's CPE vendor is NVD's "thekelleys"; not in this image, so it must not appear at all
    assert "dnsmasq" not in comps
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert "zlib@1.2.13" in deps["dropbear@2022.83"]
    assert {c["bom-ref"] for c in bom["components"]} == deps[root["bom-ref"]]


def test_spdx_2_3_is_valid_and_carries_the_same_components(report, tmp_path):
    path = spdx.write(report, tmp_path)
    assert path.name == "sbom.spdx.json"
    assert spdx.validate(path) == []
    doc = json.loads(path.read_text())
    assert doc["spdxVersion"] == "SPDX-2.3"
    names = {(p["name"], p.get("versionInfo", "")) for p in doc["packages"]}
    assert {(c.name, c.version) for c in report.components} <= names
    db = next(p for p in doc["packages"] if p["name"] == "dropbear")
    refs = {r["referenceType"]: r["referenceLocator"] for r in db["externalRefs"]}
    assert refs["cpe23Type"].startswith("cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:2022.83")
    assert {c["algorithm"] for c in db["checksums"]} == {"SHA256", "SHA512"}
    xc = next(p for p in doc["packages"] if p["name"] == "libxcrypt")
    assert (
        "versionInfo" not in xc
        and "version unknown" in xc["comment"]
        and "version unknown" not in db["comment"]
    )
    assert any(r["relationshipType"] == "DEPENDS_ON" for r in doc["relationships"])


def test_sbom_check_passes_for_known_components_and_names_what_is_missing(report, tmp_path):
    cyclonedx.write(report, tmp_path)
    spdx.write(report, tmp_path)
    for name in ("sbom.cdx.json", "sbom.spdx.json"):
        result = check(load(tmp_path / name))
        comp_missing = [m for m in result.missing if m.component]
        # libxcrypt's release is not in the image (see docs/sbom.md): its version is reported missing, and
        # nothing else is missing for it or for any component whose data is known
        assert {(m.component, m.field) for m in comp_missing} == {("libxcrypt", "version")}, comp_missing
        # the image's author is not known to the scanner: reported at document level, nothing else
        assert {m.field for m in result.missing if not m.component} <= {
            "author of SBOM data",
            "SBOM creator (e-mail or URL)",
        }
    # a supplier's thin SBOM: the checker lists the gaps per component
    thin = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [{"type": "library", "name": "libfoo"}],
    }
    (tmp_path / "thin.json").write_text(json.dumps(thin))
    res = check(load(tmp_path / "thin.json"))
    fields = {m.field for m in res.missing_for("libfoo")}
    assert {
        "version",
        "supplier name",
        "other unique identifiers (purl/CPE/SWID)",
        "SHA-512 hash of the deployable component",
        "distribution licences",
    } <= fields
    assert "dependency relationships" in {m.field for m in res.missing if not m.component}
    # an image in which nothing was identified has no relationship to state
    empty = {**thin, "components": []}
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    assert "dependency relationships" not in {m.field for m in check(load(tmp_path / "empty.json")).missing}
    out = CliRunner().invoke(main, ["sbom", "check", str(tmp_path / "thin.json")])
    assert out.exit_code == 1 and "libfoo: missing" in out.output
    assert not [m for m in res.missing if m.standard == "schema"]
    broken = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [{"name": "libbar", "hashes": "x"}],
    }
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert [m for m in check(load(tmp_path / "broken.json")).missing if m.standard == "schema"]
    bad = CliRunner().invoke(main, ["sbom", "check", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_sbom_diff_reports_added_removed_changed(report, tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    cyclonedx.write(report, a)
    changed = json.loads((a / "sbom.cdx.json").read_text())
    for c in changed["components"]:
        if c["name"] == "zlib":
            c["version"] = "1.3.1"
    changed["components"] = [c for c in changed["components"] if c["name"] != "gmp"]
    changed["components"].append({"type": "library", "name": "openssl", "version": "3.0.20", "bom-ref": "x"})
    b.mkdir()
    (b / "sbom.cdx.json").write_text(json.dumps(changed))
    d = diff(load(a / "sbom.cdx.json"), load(b / "sbom.cdx.json"))
    assert d.added == (("openssl", "3.0.20"),)
    assert d.removed == (("gmp", "6.2.1"),)
    assert d.changed == (("zlib", "1.2.13", "1.3.1"),)
    spdx.write(report, a)
    same = diff(load(a / "sbom.cdx.json"), load(a / "sbom.spdx.json"))
    assert not (same.added or same.removed or same.changed)
    out = CliRunner().invoke(main, ["sbom", "diff", str(a / "sbom.cdx.json"), str(b / "sbom.cdx.json")])
    assert out.exit_code == 1 and "~ zlib 1.2.13 -> 1.3.1" in out.output


def test_sbom_check_survives_hostile_documents(tmp_path):
    from cra_fw.sbomcheck import SbomFormatError

    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SbomFormatError, match="not readable JSON"):
        load(tmp_path / "deep.json")
    (tmp_path / "odd.json").write_text(
        json.dumps(
            {
                "spdxVersion": "SPDX-2.3",
                "packages": [1, {"name": 5, "checksums": "x", "externalRefs": [None]}],
                "relationships": {},
            }
        )
    )
    res = check(load(tmp_path / "odd.json"))
    assert {m.field for m in res.missing_for("5")} >= {"version", "supplier name"}
    out = CliRunner().invoke(main, ["sbom", "diff", str(tmp_path / "odd.json"), str(tmp_path / "deep.json")])
    assert out.exit_code == 2 and "Traceback" not in out.output


def test_writers_stay_valid_with_sparse_components(tmp_path):
    from cra_fw.records import Component, Evidence

    sparse = [
        Component(
            name="mystery-lib",
            version="",
            evidence=(Evidence("soname", 0.5, "/lib/libm.so"),),
            files=("L1:/lib/libm.so",),
        ),
        Component(
            name="libstdc++",
            version="12.2.0",
            licenses=("GPL-3.0-or-later WITH GCC-exception-3.1",),
            purl="pkg:generic/libstdc%2B%2B@12.2.0",
            supplier="GNU project",
            hashes={"SHA-256": "a" * 64, "SHA-512": "b" * 128},
        ),
    ]
    rep = ScanReport(
        image=ImageInfo("fw.bin", 1, "c" * 64, "d" * 128, "e" * 32),
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-11-27T00:00:00Z",
        components=sparse,
    )
    path = cyclonedx.write(rep, tmp_path)
    assert cyclonedx.validate_json(path.read_text()) is None
    assert cyclonedx.validate_xml((tmp_path / "sbom.cdx.xml").read_text()) is None
    assert spdx.validate(spdx.write(rep, tmp_path)) == []
    missing = check(load(path)).missing_for("mystery-lib")
    assert {m.field for m in missing} >= {
        "version",
        "supplier name",
        "other unique identifiers (purl/CPE/SWID)",
    }


def test_cyclonedx_occurrence_order_does_not_depend_on_the_hash_seed():
    """Without bom-refs the library cannot order occurrences: the order followed PYTHONHASHSEED."""
    code = (
        "from cra_fw.records import Component; from cra_fw.report.cyclonedx import _component; "
        "c = _component(Component('linux', '6.1', kind='operating-system', "
        "files=('L1:/kernel.bin', 'L2:/lib/modules/6.1.0', 'L0:/xz.uncompressed', 'L3:/boot/vmlinuz'))); "
        "print([o.location for o in c.evidence.occurrences])"
    )
    seen = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        seen.add(proc.stdout)
    assert len(seen) == 1, seen
