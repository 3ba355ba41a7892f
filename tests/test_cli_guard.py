"""The CLI's one error guard, exit codes, read-only commands and the outputs of a scan (issue 13).

Every error is exit 2 with one line on stderr and never a traceback; commands that only
look never create or rewrite a database; a scan's output folder holds exactly that
scan's files, and the evidence pack exactly what the scan listed in report.json.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_IMAGES, ROOT, run_cli, scan_cli

SMALL = FIXTURE_IMAGES / "sqfs-xz-mipsel.sqfs"


def one_line_error(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cra-fw: error: "), proc.stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- CRA_FW_DB that is not a database


READ_ONLY = [
    ("db", "status"),
    ("product", "list"),
    ("release", "list"),
    ("cases",),
    ("support", "status"),
    ("export",),
    ("triage", "list"),
]


@pytest.mark.parametrize("args", [*READ_ONLY, ("product", "add", "router"), ("monitor",)], ids=" ".join)
@pytest.mark.parametrize("kind", ["junk", "devnull", "folder"])
def test_a_database_that_is_not_one_is_one_line(tmp_path, args, kind):
    if kind == "junk":
        db = tmp_path / "junk.db"
        db.write_bytes(b"this is not sqlite\n" * 100)
    elif kind == "devnull":
        db = Path(os.devnull)
    else:
        db = tmp_path
    before = digest(db) if db.is_file() else None
    line = one_line_error(run_cli(*args, env={"CRA_FW_DB": str(db)}))
    assert str(db) in line
    if before is not None:
        assert digest(db) == before


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_or_rewrite_a_database(tmp_path, args):
    db = tmp_path / "absent" / "cra-fw.db"
    proc = run_cli(*args, env={"CRA_FW_DB": str(db)})
    assert "Traceback" not in proc.stderr
    assert not db.exists() and not db.parent.exists()
    made = tmp_path / "made.db"
    assert run_cli("product", "add", "router", env={"CRA_FW_DB": str(made)}).returncode == 0
    for leftover in (made.with_name(made.name + "-wal"), made.with_name(made.name + "-shm")):
        leftover.unlink(missing_ok=True)
    before = digest(made)
    proc = run_cli(*args, env={"CRA_FW_DB": str(made)})
    assert "Traceback" not in proc.stderr
    assert digest(made) == before


def test_scan_with_a_junk_database_records_why_vulnerabilities_were_not_assessed(tmp_path):
    db = tmp_path / "junk.db"
    db.write_bytes(b"junk" * 1000)
    run = scan_cli(SMALL, tmp_path / "out", "--db", str(db), "--fail-on-vuln", "high")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    report = run.report
    vulns = next(a for a in report["assessments"] if a["topic"] == "vulnerabilities")
    assert vulns["status"] == "not_assessed" and str(db) in vulns["reason"]
    assert "vulns.not-assessed" in run.stderr
    # the terminal says why in full, and the HTML cards say "not assessed", never 0
    line = next(x for x in run.stdout.splitlines() if x.startswith("Vulnerabilities:"))
    assert line.startswith("Vulnerabilities: not assessed (") and line.endswith(")") and str(db) in line
    page = (run.outdir / "report.html").read_text()
    for label in ("Open vulnerabilities", "KEV (Article 14)"):
        assert f"<b>not assessed</b>{label}" in page and f"<b>0</b>{label}" not in page


def test_verify_trust_dev_zero_is_bounded(tmp_path):
    bundle = tmp_path / "x.bin"
    bundle.write_bytes(b"data")
    proc = run_cli("verify", str(bundle), "--trust", "/dev/zero", timeout=30)
    assert "larger than" in one_line_error(proc)


# ---------------------------------------------------------------- output folders


def test_output_that_is_a_file_or_not_writable_is_one_line(tmp_path):
    taken = tmp_path / "file"
    taken.write_text("x")
    assert "not a folder" in one_line_error(scan_cli(SMALL, taken))
    one_line_error(scan_cli(SMALL, Path("/proc/self/cra-fw-out")))
    one_line_error(scan_cli(SMALL, taken / "below"))
    assert taken.read_text() == "x"


def test_a_folder_with_an_earlier_scan_is_refused_and_force_replaces_only_ours(tmp_path):
    out = tmp_path / "out"
    first = scan_cli(FIXTURE_IMAGES / "rootfs-armhf.tar.gz", out)
    assert first.returncode == 0, first.stderr
    (out / "notes.txt").write_text("mine\n")
    # what an earlier scan of another image (with vulnerabilities) left behind
    (out / "vex.cdx.json").write_text('{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "CVE-0-1"}]}')
    line = one_line_error(scan_cli(SMALL, out))
    assert "not empty" in line and "--force" in line
    second = scan_cli(SMALL, out, "--force", "--pack")
    assert second.returncode == 0, second.stderr
    assert (out / "notes.txt").read_text() == "mine\n"  # not cra-fw's: left alone
    assert "CVE-0-1" not in (out / "vex.cdx.json").read_text() if (out / "vex.cdx.json").exists() else True
    report = second.report
    listed = {o["name"]: o["sha256"] for o in report["outputs"]}
    assert {"report.html", "sbom.cdx.json", "sbom.cdx.xml", "sbom.spdx.json", "findings.sarif"} <= set(listed)
    for name, sha in listed.items():
        assert digest(out / name) == sha
    with zipfile.ZipFile(out / "evidence.zip") as zf:
        assert sorted(zf.namelist()) == sorted(["manifest.json", "report.json", *listed])


def test_pack_refuses_a_file_changed_after_the_scan(tmp_path):
    out = tmp_path / "out"
    assert scan_cli(SMALL, out).returncode == 0
    with open(out / "sbom.spdx.json", "a") as fh:
        fh.write(" ")
    assert "changed after the scan" in one_line_error(run_cli("pack", str(out)))


def _squashfs_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "root"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    image = tmp_path / "image.sqfs"
    subprocess.run(["mksquashfs", str(root), str(image), "-noappend", "-quiet", "-no-progress"], check=True)
    return image


def test_a_control_character_from_the_image_does_not_lose_an_output(tmp_path):
    """/etc/openwrt_release with an ESC killed the CycloneDX XML writer; the scan said nothing."""
    release = (
        b"DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='21.02.\x1b3'\nDISTRIB_DESCRIPTION='OpenWrt \x01 21.02'\n"
    )
    image = _squashfs_with(
        tmp_path, {"etc/openwrt_release": release, "etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}
    )
    run = scan_cli(image, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    xml = (tmp_path / "out" / "sbom.cdx.xml").read_text()
    from cra_fw.report.cyclonedx import validate_xml

    assert validate_xml(xml) is None
    assert {o["name"] for o in run.report["outputs"]} >= {"sbom.cdx.xml", "sbom.cdx.json"}
    assert run.report["errors"] == []


# ---------------------------------------------------------------- ledger import of hostile JSON


def _export(tmp_path: Path) -> dict:
    db = tmp_path / "l.db"
    assert run_cli("product", "add", "router", env={"CRA_FW_DB": str(db)}).returncode == 0
    return json.loads(run_cli("export", env={"CRA_FW_DB": str(db)}).stdout)


@pytest.mark.parametrize(
    "damage",
    [
        "rows-int",
        "columns-of-lists",
        "huge-int",
        "table-is-a-string",
        "deep",
    ],
)
def test_import_of_hostile_json_is_one_line_and_changes_nothing(tmp_path, damage):
    doc = _export(tmp_path)
    products = doc["tables"]["products"]
    if damage == "rows-int":
        products["rows"] = 7
    elif damage == "columns-of-lists":
        products["columns"] = [[c] for c in products["columns"]]
    elif damage == "huge-int":
        products["rows"][0][0] = 10**30
    elif damage == "table-is-a-string":
        doc["tables"]["products"] = "products"
    path = tmp_path / "import.json"
    text = json.dumps(doc) if damage != "deep" else "[" * 10_000 + "]" * 10_000
    path.write_text(text)
    target = tmp_path / "target.db"
    assert run_cli("product", "add", "keep-me", env={"CRA_FW_DB": str(target)}).returncode == 0
    proc = run_cli("import", str(path), "--replace", env={"CRA_FW_DB": str(target)})
    one_line_error(proc)
    names = [r[0] for r in sqlite3.connect(target).execute("SELECT name FROM products")]
    assert names == ["keep-me"]  # all or nothing


# ---------------------------------------------------------------- evidence packs with deep JSON


def test_deeply_nested_signature_or_manifest_is_not_verified_not_a_crash(tmp_path):
    out = tmp_path / "out"
    assert scan_cli(SMALL, out, "--pack").returncode == 0
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    pack = out / "evidence.zip"
    assert run_cli("sign", str(pack), "--key", str(key)).returncode == 0
    deep = "[" * 10_000 + "]" * 10_000
    sig = pack.with_name("evidence.zip.sig")
    sig.write_text(deep)
    proc = run_cli("verify-evidence", str(pack), "--trust", str(key))
    assert "Traceback" not in proc.stderr and proc.returncode in (1, 2)
    bad = tmp_path / "deep.zip"
    with zipfile.ZipFile(pack) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, deep if info.filename == "manifest.json" else src.read(info))
    proc = run_cli("verify-evidence", str(bad), "--trust", str(key))
    assert "Traceback" not in proc.stderr and proc.returncode == 1
    assert "manifest" in proc.stdout


def test_sbom_check_and_triage_import_of_deep_json(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("{" + '"a":{' * 10_000 + "}" * 10_001)
    one_line_error(run_cli("sbom", "check", str(deep)))
    proc = run_cli("triage", "import", str(deep), env={"CRA_FW_DB": str(tmp_path / "t.db")})
    assert "Traceback" not in proc.stderr and proc.returncode == 2


# ---------------------------------------------------------------- one guard, one echo, one table


def _cli_modules() -> list[Path]:
    return sorted((ROOT / "cra_fw" / "cli").glob("*.py"))


def test_commands_print_only_through_the_sanitiser():
    for path in _cli_modules():
        if path.name == "common.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("echo", "secho")
                and getattr(node.value, "id", "") == "click"
            ):
                raise AssertionError(f"{path.name}:{node.lineno} calls click.{node.attr}; use common.echo")
            if isinstance(node, ast.ExceptHandler) and "CraFwError" in ast.unparse(node.type or ast.Name("")):
                body = ast.unparse(node)
                assert "continue" in body or "return" in body, (
                    f"{path.name}:{node.lineno}: the error guard already turns CraFwError into one line"
                )


def test_one_table_of_exit_codes():
    for path in (ROOT / "cra_fw").rglob("*.py"):
        if path.name == "exitcodes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    name = getattr(target, "id", "")
                    assert not (name.startswith("EXIT_") or name.endswith("_EXIT")), f"{path}: {name}"
    import cra_fw.vulns

    assert not hasattr(cra_fw.vulns, "vuln_gate")


def test_an_unexpected_error_is_one_line(tmp_path):
    """What no command foresaw still leaves through the guard (here: a JSON file nested too deep)."""
    manifest = tmp_path / "bom.json"
    manifest.write_text("[" * 100_000)
    one_line_error(run_cli("sbom", "diff", str(manifest), str(manifest)))


def test_broken_pipe_is_quiet(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "cra_fw", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _out, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
