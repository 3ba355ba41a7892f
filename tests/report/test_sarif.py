"""SARIF 2.1.0 output: valid against the official OASIS schema, suppressed findings kept."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest

from cra_fw.checks import run
from cra_fw.checks.policy import Policy, Suppression, apply_policy
from cra_fw.records import ScanReport, ToolInfo
from cra_fw.report import sarif
from tests.checks.conftest import DATA, tree_context, write_tree


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = write_tree(
        tmp_path_factory.mktemp("sarif"),
        {
            "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n",
            "/etc/shadow": "root::19000:0:99999:7:::\ntoor:!:19000:0:99999:7:::\n",
            "/etc/inittab": "ttyS0::respawn:/bin/sh\n::respawn:/usr/sbin/telnetd -l /bin/sh\n",
            "/opt/my app/bin/true-mipsel": (DATA / "debian" / "true-mipsel").read_bytes(),
        },
    )
    ctx = tree_context(root)
    result = run(ctx)
    policy = Policy((Suppression("services.telnet", "lab image", dt.date(2999, 1, 1)),))
    findings, _ = apply_policy(result.findings, policy)
    rep = ScanReport(
        image=ctx.image,
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-11-27T00:00:00Z",
        finished="2026-11-27T00:00:05Z",
    )
    rep.findings = list(findings)
    return rep


def test_sarif_validates_against_the_official_schema(report, tmp_path):
    path = sarif.write(report, tmp_path)
    assert path == tmp_path / "findings.sarif"
    doc = json.loads(path.read_text())
    schema = sarif.schema()
    assert schema["id"].endswith("sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert [e.message for e in errors] == []
    assert doc["version"] == "2.1.0"


def test_every_finding_is_a_result_and_suppressed_ones_stay(report):
    doc = sarif.to_sarif(report)
    results = doc["runs"][0]["results"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert len(results) == len(report.findings) >= 5
    assert {r["ruleId"] for r in results} == {f.rule_id for f in report.findings}
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    suppressed = [r for r in results if "suppressions" in r]
    assert [r["ruleId"] for r in suppressed] == ["services.telnet"]
    assert suppressed[0]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "lab image (until 2999-01-01)"}
    ]
    by_rule = {r["ruleId"]: r for r in results}
    empty = by_rule["credentials.empty-password"]
    loc = empty["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"] == {"uri": "etc/shadow", "uriBaseId": "IMAGE"}
    assert loc["physicalLocation"]["region"] == {"startLine": 1}
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "L0:raw/L1:squashfs:/etc/shadow"
    assert empty["level"] == "error" and empty["properties"]["security-severity"] == "9.5"
    assert empty["properties"]["cra_reference"] == ["Annex I Part I (2)(b)", "Annex I Part I (2)(d)"]
    nx = by_rule["hardening.nx"]
    assert nx["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "opt/my%20app/bin/true-mipsel"


def test_schema_rejects_a_broken_log(report):
    doc = sarif.to_sarif(report)
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert list(jsonschema.Draft4Validator(sarif.schema()).iter_errors(doc))


def test_real_scan_writes_valid_sarif_without_secrets(tmp_path):
    from tests.conftest import FIXTURE_IMAGES, scan_cli

    image = FIXTURE_IMAGES / "sqfs-xz-mipsel.sqfs"
    if not image.exists():
        pytest.skip("fixture image not built")
    run = scan_cli(image, tmp_path / "out", "--redact")
    assert run.returncode == 0, run.stderr
    doc = json.loads((run.outdir / "findings.sarif").read_text())
    assert list(jsonschema.Draft4Validator(sarif.schema()).iter_errors(doc)) == []
    text = (run.outdir / "findings.sarif").read_text() + (run.outdir / "report.json").read_text()
    assert "PRIVATE KEY" not in text.replace("PRIVATE KEY)", "")  # no key material, only fingerprints
    key = (DATA.parents[2] / "fixtures" / "generated" / "cloud-agent.key").read_text()
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in text
    rules = {r["ruleId"] for r in doc["runs"][0]["results"]}
    assert {"secrets.host-key", "secrets.private-key", "credentials.default-password"} <= rules
    report = run.report
    pw = [f for f in report["findings"] if f["rule_id"] == "credentials.default-password"]
    assert pw and all("password" not in f["extra"] for f in pw)  # --redact
