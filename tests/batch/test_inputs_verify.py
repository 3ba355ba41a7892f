"""Batch inputs (folders, manifests, hashing), report.json read back into records, and `batch --verify`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from cra_fw.batch.inputs import HashCache, collect, hash_items, read_manifest
from cra_fw.batch.loadreport import ReportLoadError, from_jsonable
from cra_fw.errors import InputError
from cra_fw.jsonout import to_jsonable
from cra_fw.records import Finding, Location, Severity
from tests.conftest import ROOT, run_cli

BUNDLES = ROOT / "fixtures" / "bundles" / "out"


def test_folders_recurse_and_manifests_name_releases(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "fw2.bin").write_bytes(b"2")
    (tmp_path / "a" / "fw1.bin").write_bytes(b"1")
    (tmp_path / "a" / ".git").mkdir()
    (tmp_path / "a" / ".git" / "HEAD").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,product,version,manufacturer,release_date,notes\na/fw1.bin,Cam,1.2,ACME,2026-05-01,ignored\n"
    )
    items = collect([tmp_path / "a", manifest])
    assert [Path(i.path).relative_to(tmp_path).as_posix() for i in items] == [
        "a/fw1.bin",
        "a/b/fw2.bin",
        "a/fw1.bin",
    ]
    assert (items[2].product, items[2].version, items[2].manufacturer, items[2].released) == (
        "Cam",
        "1.2",
        "ACME",
        "2026-05-01",
    )
    cache = HashCache(tmp_path / "out" / "hashes.json")
    good, bad = hash_items(items, cache)
    assert not bad and good[0].sha256 == hashlib.sha256(b"1").hexdigest() == good[2].sha256
    assert json.loads((tmp_path / "out" / "hashes.json").read_text())  # a rerun reads no image again


def test_json_manifest_and_its_errors(tmp_path):
    (tmp_path / "m.json").write_text(
        json.dumps({"images": [{"path": "/abs/x.bin", "product": "P", "version": "1"}]})
    )
    (item,) = read_manifest(tmp_path / "m.json")
    assert item.path == "/abs/x.bin" and item.release_label == "P@1"
    for text, message in (
        ("path,product\nx.bin,P\n", "give both product and version"),
        ("path,sha256\nx.bin,123\n", "not 64 hex digits"),
        ("path,product\n,P\n", "no path"),
    ):
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(InputError, match=message):
            read_manifest(tmp_path / "bad.csv")
    (tmp_path / "bad.json").write_text('{"images": 3}')
    with pytest.raises(InputError, match="list of objects"):
        read_manifest(tmp_path / "bad.json")


def test_missing_file_is_a_failure_not_a_crash(tmp_path):
    good, bad = hash_items(
        collect([]) + read_manifest(_manifest(tmp_path, "gone.bin")), HashCache(tmp_path / "h")
    )
    assert good == [] and bad[0][1] == "no such file"


def _manifest(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(f"path\n{name}\n")
    return path


def test_records_read_back_strictly():
    finding = Finding("r.x", "checks", Severity.HIGH, "t", ("Annex I",), Location(("L0:raw",), "/a", 3))
    data = to_jsonable(finding)
    assert from_jsonable(Finding, data) == finding
    with pytest.raises(ReportLoadError, match="unknown key"):
        from_jsonable(Finding, {**data, "surprise": 1})


@pytest.mark.skipif(not (BUNDLES / "detached" / "ms.bin").exists(), reason="bundle fixtures not built")
def test_verify_folder_one_verdict_each(tmp_path):
    """Auditor mode on the default local cluster: exit 0 only when every bundle is valid."""
    folder = tmp_path / "delivery"
    folder.mkdir()
    for name in ("ms.bin", "ms-legacy.bin", "ms-payload-flipped.bin"):
        for suffix in ("", ".minisig"):
            shutil.copy(BUNDLES / "detached" / (name + suffix), folder / (name + suffix))
    key = BUNDLES / "keys" / "minisign.pub"
    proc = run_cli("batch", "--verify", "--trust", str(key), str(folder), "--workers", "1", timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    verdicts = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines() if line.startswith("/")}
    assert verdicts == {
        str(folder / "ms.bin"): "valid",
        str(folder / "ms-legacy.bin"): "valid",
        str(folder / "ms-payload-flipped.bin"): "invalid_signature",
    }
    assert "2 of 3 valid" in proc.stdout
    (folder / "ms-payload-flipped.bin").unlink()
    (folder / "ms-payload-flipped.bin.minisig").unlink()
    proc = run_cli(
        "batch", "--verify", "--trust", str(key), str(folder), "--workers", "1", "--json", timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(e["verdict"] for e in lines if e["event"] == "bundle") == ["valid", "valid"]
    assert lines[-1] == {"event": "summary", "bundles": 2, "valid": 2, "not_valid": 0}
