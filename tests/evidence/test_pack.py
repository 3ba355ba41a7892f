"""Evidence pack: write, sign (Ed25519, ECDSA P-256, RSA-PSS), verify, and detect every tampering."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from cra_fw import jsonout
from cra_fw.evidence import pack as packmod
from cra_fw.evidence.sign import (
    KeyFileError,
    fingerprint,
    load_private_key,
    load_public_key,
    read_signature,
    sign_file,
)
from cra_fw.evidence.verify import verify_evidence
from cra_fw.report import html
from tests.conftest import run_cli
from tests.evidence.sample import sample_report

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed (Debian package openssl)")

KEY_ARGS = {
    "ed25519": ["-algorithm", "ed25519"],
    "ecdsa-p256-sha256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa-pss-sha256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
}


def make_key(folder: Path, name: str, args: list[str], password: str | None = None) -> tuple[Path, Path]:
    """A private key and its public key, made by the openssl CLI."""
    priv, pub = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    cmd = [OPENSSL, "genpkey", *args, "-out", str(priv)]
    if password:
        cmd += ["-aes-256-cbc", "-pass", f"pass:{password}"]
    subprocess.run(cmd, check=True, capture_output=True)
    pub_cmd = [OPENSSL, "pkey", "-in", str(priv), "-pubout", "-out", str(pub)]
    if password:
        pub_cmd += ["-passin", f"pass:{password}"]
    subprocess.run(pub_cmd, check=True, capture_output=True)
    return priv, pub


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    out = {alg: make_key(folder, alg, args) for alg, args in KEY_ARGS.items()}
    out["other"] = make_key(folder, "other", KEY_ARGS["ed25519"])
    return out


def scan_outputs(outdir: Path) -> Path:
    """report.html, a SARIF-named file and report.json listing them, as a scan leaves them."""
    import hashlib

    from cra_fw.records import OutputFile

    report = sample_report()
    outdir.mkdir(parents=True, exist_ok=True)
    html.write(report, outdir)
    (outdir / "findings.sarif").write_text(json.dumps({"version": "2.1.0", "runs": []}))
    report.outputs = [
        OutputFile(n, hashlib.sha256((outdir / n).read_bytes()).hexdigest(), (outdir / n).stat().st_size)
        for n in ("report.html", "findings.sarif")
    ]
    (outdir / "report.json").write_text(jsonout.dumps(report))
    return outdir


@pytest.fixture
def signed_pack(tmp_path, keys):
    outdir = scan_outputs(tmp_path / "out")
    path = packmod.write_pack(outdir, feed_ages={"nvd": {"age_days": 1.5}})
    sign_file(path, load_private_key(keys["ed25519"][0]))
    return path


def rezip(
    src: Path, dst: Path, change: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
) -> None:
    """Copy a pack member by member, replacing or adding members (what an editor of the zip does)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = (change or {}).get(info.filename, zin.read(info.filename))
            zout.writestr(info, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)


def fails(path: Path, trust: Path, signature: Path | None = None) -> list[str]:
    result = verify_evidence(path, [trust], signature=signature)
    assert not result.ok, result.text()
    return [f"{c.name}: {c.message}" for c in result.failures]


# ---- the good path ------------------------------------------------------------------------------


def test_pack_members_and_manifest(signed_pack):
    with zipfile.ZipFile(signed_pack) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        assert names == ["manifest.json", "report.json", "report.html", "findings.sarif"]
        for entry in manifest["members"]:
            import hashlib

            data = zf.read(entry["path"])
            assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
    report = sample_report()
    assert manifest["format"] == "cra-fw-evidence/1"
    assert (
        manifest["image"]["sha256"] == report.image.sha256 and manifest["image"]["size"] == report.image.size
    )
    assert manifest["tool"]["version"] == report.tool.version
    assert manifest["scan"] == {
        "started": report.started,
        "finished": report.finished,
        "schema_version": "1.0",
    }
    assert manifest["feeds"] == {"nvd": {"age_days": 1.5}}
    assert [m["path"] for m in manifest["members"]] == ["report.json", "report.html", "findings.sarif"]


def test_pack_without_report_is_a_clear_error(tmp_path):
    with pytest.raises(packmod.PackError, match="report.json is missing: run `cra-fw scan"):
        packmod.write_pack(tmp_path)


def test_pack_reads_image_from_report_json_when_no_report_given(tmp_path):
    outdir = scan_outputs(tmp_path / "out")
    path = packmod.write_pack(outdir)
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("manifest.json"))["image"]["name"] == "router-fw.bin"


@pytest.mark.parametrize("alg", list(KEY_ARGS))
def test_sign_then_verify_each_algorithm(tmp_path, keys, alg):
    outdir = scan_outputs(tmp_path / "out")
    path = packmod.write_pack(outdir)
    priv, pub = keys[alg]
    sig = sign_file(path, load_private_key(priv))
    doc = read_signature(sig).doc
    assert doc["algorithm"] == alg
    assert doc["key_fingerprint"] == fingerprint(load_public_key(pub))
    assert doc["signed"]["kind"] == "evidence-pack"
    result = verify_evidence(path, [pub])
    assert result.ok, result.text()
    assert result.signer == doc["key_fingerprint"]
    assert {c.name for c in result.checks} >= {
        "signature",
        "file",
        "manifest",
        "member report.json",
        "member report.html",
        "member findings.sarif",
    }
    # the private key and several trust keys are accepted as the trust anchor too
    assert verify_evidence(path, [keys["other"][1], priv]).ok


def test_encrypted_key_needs_its_password(tmp_path):
    priv, pub = make_key(tmp_path, "enc", KEY_ARGS["ed25519"], password="s3cret")
    with pytest.raises(KeyFileError, match="password"):
        load_private_key(priv)
    target = tmp_path / "file.bin"
    target.write_bytes(b"firmware evidence")
    sign_file(target, load_private_key(priv, b"s3cret"))
    assert verify_evidence(target, [pub]).ok


def test_plain_file_sign_and_verify(tmp_path, keys):
    target = tmp_path / "sbom.cdx.json"
    target.write_text('{"bomFormat": "CycloneDX"}')
    sign_file(target, load_private_key(keys["ecdsa-p256-sha256"][0]))
    result = verify_evidence(target, [keys["ecdsa-p256-sha256"][1]])
    assert result.ok and result.kind == "file"
    target.write_text('{"bomFormat": "CycloneDX "}')
    assert any("is not the signed file" in m for m in fails(target, keys["ecdsa-p256-sha256"][1]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "too weak"),
        (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "not supported; use P-256"),
    ],
)
def test_weak_or_unsupported_keys_are_refused(tmp_path, args, message):
    priv, pub = make_key(tmp_path, "bad", args)
    with pytest.raises(KeyFileError, match=message):
        load_private_key(priv)
    with pytest.raises(KeyFileError, match=message):
        load_public_key(pub)


# ---- tampering ----------------------------------------------------------------------------------


def test_other_key_fails(signed_pack, keys):
    messages = fails(signed_pack, keys["other"][1])
    assert any("which is not a trusted key" in m for m in messages)


def test_pack_signed_by_another_key_fails(tmp_path, keys):
    outdir = scan_outputs(tmp_path / "out")
    path = packmod.write_pack(outdir)
    sign_file(path, load_private_key(keys["other"][0]))
    assert any("not a trusted key" in m for m in fails(path, keys["ed25519"][1]))


def test_missing_signature_fails(tmp_path, keys):
    path = packmod.write_pack(scan_outputs(tmp_path / "out"))
    messages = fails(path, keys["ed25519"][1])
    assert any("cannot read the signature file" in m and "cra-fw sign" in m for m in messages)


def test_every_byte_of_the_signature_file(signed_pack, keys):
    sig = Path(str(signed_pack) + ".sig")
    original = sig.read_bytes()
    trust = keys["ed25519"][1]
    for i in range(len(original)):
        data = bytearray(original)
        data[i] ^= 0x01 if data[i] not in (0x0A,) else 0x20
        sig.write_bytes(bytes(data))
        result = verify_evidence(signed_pack, [trust])
        assert not result.ok, f"flipping byte {i} of the signature file went unnoticed"
        assert all(c.message for c in result.failures)
    sig.write_bytes(original)
    assert verify_evidence(signed_pack, [trust]).ok


def test_signature_field_edits_say_what_happened(signed_pack, keys):
    sig = Path(str(signed_pack) + ".sig")
    trust = keys["ed25519"][1]
    doc = json.loads(sig.read_text())
    doc["signed"]["size"] += 1  # canonical re-serialisation: only the signature can catch it
    sig.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    assert any("signature does not verify" in m for m in fails(signed_pack, trust))
    doc["signed"]["size"] -= 1
    sig.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    assert any("not in the form cra-fw writes" in m for m in fails(signed_pack, trust))
    sig.write_text("{}")
    assert any("lacks a valid" in m for m in fails(signed_pack, trust))


def test_every_byte_of_the_manifest(signed_pack, keys, tmp_path):
    with zipfile.ZipFile(signed_pack) as zf:
        manifest = zf.read("manifest.json")
    sig = Path(str(signed_pack) + ".sig")
    trust = keys["ed25519"][1]
    step = max(1, len(manifest) // 150)
    for i in range(0, len(manifest), step):
        data = bytearray(manifest)
        data[i] ^= 0x04
        bad = tmp_path / "bad.zip"
        rezip(signed_pack, bad, change={"manifest.json": bytes(data)})
        messages = fails(bad, trust, signature=sig)
        assert any("manifest.json was changed after signing" in m for m in messages), (i, messages)


def test_every_member_changed_is_named(signed_pack, keys, tmp_path):
    sig = Path(str(signed_pack) + ".sig")
    trust = keys["ed25519"][1]
    with zipfile.ZipFile(signed_pack) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    for name, content in members.items():
        for pos in sorted({0, len(content) // 3, len(content) // 2, len(content) - 1}):
            data = bytearray(content)
            data[pos] ^= 0x01
            bad = tmp_path / "bad.zip"
            rezip(signed_pack, bad, change={name: bytes(data)})
            messages = fails(bad, trust, signature=sig)
            assert any(
                m.startswith(f"member {name}: sha256") and "changed after packing" in m for m in messages
            ), messages
            assert any(m.startswith("file: ") for m in messages)


def test_member_changed_and_manifest_updated_is_caught(signed_pack, keys, tmp_path):
    """An editor who also rewrites the manifest's hash still breaks the signed manifest hash."""
    import hashlib

    with zipfile.ZipFile(signed_pack) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        report = zf.read("report.json").replace(b'"critical"', b'"low"')
    for entry in manifest["members"]:
        if entry["path"] == "report.json":
            entry.update(sha256=hashlib.sha256(report).hexdigest(), size=len(report))
    bad = tmp_path / "bad.zip"
    rezip(
        signed_pack,
        bad,
        change={
            "report.json": report,
            "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode(),
        },
    )
    messages = fails(bad, keys["ed25519"][1], signature=Path(str(signed_pack) + ".sig"))
    assert any("manifest.json was changed after signing" in m for m in messages)
    assert not any(m.startswith("member report.json") for m in messages)  # it matches the forged manifest


def test_added_or_removed_member(signed_pack, keys, tmp_path):
    sig, trust = Path(str(signed_pack) + ".sig"), keys["ed25519"][1]
    bad = tmp_path / "bad.zip"
    rezip(signed_pack, bad, add={"notes.txt": b"all fine"})
    assert any("member notes.txt: not in the manifest" in m for m in fails(bad, trust, sig))
    with zipfile.ZipFile(signed_pack) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            if info.filename != "report.html":
                zout.writestr(info, zin.read(info))
    assert any("member report.html: listed in the manifest but missing" in m for m in fails(bad, trust, sig))


def test_raw_byte_flips_anywhere_in_the_pack(signed_pack, keys):
    """Any byte of the zip (data, headers, central directory) changed: never verified."""
    original = signed_pack.read_bytes()
    trust = keys["ed25519"][1]
    sig = Path(str(signed_pack) + ".sig")
    positions = set(range(0, len(original), max(1, len(original) // 200)))
    positions |= set(range(max(0, len(original) - 300), len(original)))  # central directory and EOCD
    for pos in sorted(positions):
        data = bytearray(original)
        data[pos] ^= 0x01
        signed_pack.write_bytes(bytes(data))
        result = verify_evidence(signed_pack, [trust], signature=sig)
        assert not result.ok, f"byte {pos} of the pack changed and still verified"
    signed_pack.write_bytes(original)
    assert verify_evidence(signed_pack, [trust]).ok


def test_zip_comment_change_is_reported_as_outside_members(signed_pack, keys, tmp_path):
    data = signed_pack.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data), "a") as zf:
        pass
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"edited"
    bad = tmp_path / "evidence.zip"
    bad.write_bytes(buf.getvalue())
    messages = fails(bad, keys["ed25519"][1], signature=Path(str(signed_pack) + ".sig"))
    assert any("differ from the signed pack (zip headers or comment changed)" in m for m in messages)


def test_image_check(signed_pack, keys, tmp_path):
    img = tmp_path / "router-fw.bin"
    img.write_bytes(b"\0" * 100)
    result = verify_evidence(signed_pack, [keys["ed25519"][1]], image=img)
    assert not result.ok and any(
        "is not the scanned image router-fw.bin" in c.message for c in result.failures
    )


# ---- CLI ----------------------------------------------------------------------------------------


def test_cli_sign_verify_and_exit_statuses(tmp_path, keys):
    outdir = scan_outputs(tmp_path / "out")
    priv, pub = keys["rsa-pss-sha256"]
    proc = run_cli("pack", str(outdir))
    assert proc.returncode == 0, proc.stderr
    pack = outdir / "evidence.zip"
    proc = run_cli("sign", str(pack), "--key", str(priv))
    assert proc.returncode == 0 and "evidence.zip.sig" in proc.stdout, proc.stderr
    proc = run_cli("verify-evidence", str(pack), "--trust", str(pub))
    assert proc.returncode == 0 and "VERIFIED" in proc.stdout
    proc = run_cli("verify-evidence", str(pack), "--trust", str(keys["other"][1]), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["verified"] is False and any("not a trusted key" in c["message"] for c in doc["checks"])
    not_a_key = tmp_path / "junk.pem"
    not_a_key.write_text("hello")
    proc = run_cli("verify-evidence", str(pack), "--trust", str(not_a_key))
    assert proc.returncode == 2 and "is not a public key" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("sign", str(tmp_path / "missing.zip"), "--key", str(priv))
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_feed_ages_come_from_the_real_feed_database(tmp_path):
    from datetime import UTC, datetime

    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.store import record_feed

    path = tmp_path / "feeds.db"
    db = open_feed_db(path)
    record_feed(db, "kev", "2026-11-20T00:00:00Z", "known_exploited_vulnerabilities.json")
    db.conn.commit()
    db.conn.close()
    ages = packmod.feed_ages_from_db(path, now=datetime(2026, 11, 27, tzinfo=UTC))
    assert list(ages) == ["kev"]
    assert ages["kev"]["age_days"] == 7.0 and ages["kev"]["records"] == 0
    assert packmod.feed_ages_from_db(tmp_path / "missing.db") == {}
    outdir = scan_outputs(tmp_path / "out")
    with zipfile.ZipFile(packmod.write_pack(outdir, feed_ages=ages)) as zf:
        assert json.loads(zf.read("manifest.json"))["feeds"]["kev"]["age_days"] == 7.0
