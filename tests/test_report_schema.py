"""report.schema.json types every record report.json carries, field for field.

Each object in the schema names exactly the keys its record class serialises
(``cra_fw.jsonout.json_fields``), all of them required, nothing else allowed, and
its enums are the records' enums: a field added to a record without the schema (or
the other way round) fails here, not in a consumer that guessed a key.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from cra_fw.bundles.interface import BundleVerdict, Verdict
from cra_fw.checks.interface import ElfHardening, HardeningSummary, Service
from cra_fw.jsonout import json_fields, to_jsonable
from cra_fw.paths import schema_path
from cra_fw.records import (
    Component,
    Dependency,
    ElfInfo,
    Evidence,
    FileEntry,
    FileKind,
    Finding,
    ImageInfo,
    Layer,
    LayerStatus,
    Location,
    ScanReport,
    Severity,
    ToolInfo,
)
from cra_fw.vulns.records import Triage, VulnMatch
from tests.evidence.sample import sample_report

SCHEMA = json.loads(schema_path("report.schema.json").read_text())
DEFS = SCHEMA["$defs"]

RECORDS: dict[str, tuple[dict, type]] = {
    "report": (SCHEMA, ScanReport),
    "tool": (SCHEMA["properties"]["tool"], ToolInfo),
    "image": (SCHEMA["properties"]["image"], ImageInfo),
    "dependency": (SCHEMA["properties"]["dependencies"]["items"], Dependency),
    "layer": (DEFS["layer"], Layer),
    "elf": (DEFS["elf"], ElfInfo),
    "file": (DEFS["file"], FileEntry),
    "finding": (DEFS["finding"], Finding),
    "location": (DEFS["location"], Location),
    "component": (DEFS["component"], Component),
    "evidence": (DEFS["evidence"], Evidence),
    "vulnerability": (DEFS["vulnerability"], VulnMatch),
    "triage": (DEFS["triage"], Triage),
    "service": (DEFS["service"], Service),
    "elf_hardening": (DEFS["elf_hardening"], ElfHardening),
    "hardening_summary": (DEFS["hardening_summary"], HardeningSummary),
    "bundle": (DEFS["bundle"], BundleVerdict),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_schema_object_names_exactly_the_record_fields(name):
    node, cls = RECORDS[name]
    fields = set(json_fields(cls))
    assert set(node["properties"]) == fields, name
    assert set(node["required"]) == fields, name
    assert node.get("additionalProperties") is False, name


def test_no_bare_object_in_the_schema():
    """Every array of records points at a typed definition; no ``{"type": "object"}`` stand-ins."""

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert "properties" in node or "additionalProperties" in node, where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(SCHEMA, "#")


@pytest.mark.parametrize(
    "enum_node, values",
    [
        (DEFS["layer"]["properties"]["status"], LayerStatus),
        (DEFS["file"]["properties"]["kind"], FileKind),
        (DEFS["severity"], Severity),
        (DEFS["finding"]["properties"]["severity"], Severity),
        (DEFS["bundle"]["properties"]["verdict"], Verdict),
    ],
    ids=["layer.status", "file.kind", "severity", "finding.severity", "bundle.verdict"],
)
def test_schema_enums_are_the_record_enums(enum_node, values):
    assert set(enum_node["enum"]) == {v.value for v in values}


def test_sample_report_validates():
    """The report the HTML and pack tests use has the pipeline's shape, records in every list."""
    report = sample_report()
    from cra_fw.bundles.interface import BundleVerdict as B

    report.bundles = [B("/boot/fit.itb", "fit", Verdict.VALID, algorithms=("sha256",))]
    data = to_jsonable(report)
    assert all(data[k] for k in ("vulnerabilities", "services", "hardening", "hardening_summary", "bundles"))
    jsonschema.validate(data, SCHEMA)
    # a guessed key is refused
    data["vulnerabilities"][0]["kev_listed"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
