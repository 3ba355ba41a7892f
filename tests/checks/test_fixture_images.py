"""Acceptance: the planted problems of fixtures/images are found exactly; the clean image has none.

The squashfs fixture images are unpacked with the real unsquashfs (squashfs-tools) and
inventoried by the real inventory stage; the checks then run on that tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cra_fw.checks import run
from cra_fw.checks.hardening import verdicts
from cra_fw.records import FileKind

from .conftest import tree_context

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "fixtures" / "images"
GROUND_TRUTH = IMAGES / "ground-truth.json"
CHECK_CATEGORIES = ("credentials", "secrets", "services")
WEAK_SCHEMES = {"des", "md5crypt", "apr1"}  # cra-fw reports these as weak hash schemes too


def _truth() -> dict:
    if not GROUND_TRUTH.exists():
        pytest.skip("fixtures/images/ground-truth.json missing: run python fixtures/build.py")
    return json.loads(GROUND_TRUTH.read_text())


def _images(select) -> list[dict]:
    if not GROUND_TRUTH.exists():
        return []
    return [im for im in json.loads(GROUND_TRUTH.read_text())["images"] if select(im)]


def _is_squashfs(im: dict) -> bool:
    return bool(im["layers"]) and im["layers"][0]["format"] == "squashfs" and len(im["layers"]) == 1


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            image = IMAGES / name
            if not image.exists():
                pytest.skip(f"{image} not built")
            if shutil.which("unsquashfs") is None:
                pytest.skip("unsquashfs (squashfs-tools) not installed")
            dest = tmp_path_factory.mktemp("img") / "root"
            subprocess.run(
                ["unsquashfs", "-no-xattrs", "-q", "-d", str(dest), str(image)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            cache[name] = dest
        return cache[name]

    return get


def expected_findings(planted: list[dict]) -> list[dict]:
    """The findings cra-fw must report for each planted problem (rule and exact place)."""
    out: list[dict] = []
    for p in planted:
        kind, path = p["kind"], p["path"]
        acc = {"account": p["account"]} if "account" in p and kind != "snmp_community" else {}
        line = {"line": p["line"]} if "line" in p else {}
        if kind == "weak_password":
            out.append(
                {"rule": "credentials.default-password", "path": path, "password": p["password"], **acc}
            )
            if p["hash_scheme"] in WEAK_SCHEMES:
                out.append({"rule": "credentials.weak-hash", "path": path, **acc})
        elif kind == "weak_hash_scheme":
            out.append({"rule": "credentials.weak-hash", "path": path, **acc})
        elif kind == "empty_password":
            out.append({"rule": "credentials.empty-password", "path": path, **acc})
        elif kind == "extra_uid0":
            out.append({"rule": "credentials.extra-uid0", "path": path, **acc})
        elif kind == "telnet":
            out.append({"rule": "services.telnet", "path": path, **line})
            if "-l /bin/sh" in p["detail"]:  # telnetd running a shell: no login at all
                out.append({"rule": "services.shell-no-login", "path": path, **line})
        elif kind == "serial_root_shell":
            out.append({"rule": "services.shell-no-login", "path": path, **line})
        elif kind == "snmp_community":
            out.append({"rule": "services.snmp-community", "path": path, **line})
        elif kind == "anonymous_ftp":
            out.append({"rule": "services.ftp-anonymous", "path": path, **line})
        elif kind == "plain_http_admin":
            out.append({"rule": "services.http-admin", "path": path})
        elif kind == "host_key":
            out.append({"rule": "secrets.host-key", "path": path})
        elif kind == "private_key":
            out.append({"rule": "secrets.private-key", "path": path})
        elif kind == "private_key_in_binary":
            out.append({"rule": "secrets.private-key", "path": path, "offset": p["offset"]})
        elif kind == "expired_certificate":
            out.append({"rule": "secrets.cert-expired", "path": path})
        elif kind == "weak_certificate":
            if "RSA-1024" in p["detail"]:
                out.append({"rule": "secrets.cert-weak-key", "path": path})
            if "sha1" in p["detail"]:
                out.append({"rule": "secrets.cert-weak-signature", "path": path})
        else:
            raise AssertionError(f"unknown planted kind {kind}: teach this test what cra-fw reports for it")
    unique: dict[tuple, dict] = {}
    for e in out:  # a weak scheme is planted both as weak_password and weak_hash_scheme
        unique.setdefault(tuple(sorted(e.items())), e)
    return list(unique.values())


def _matches(f, exp: dict) -> bool:
    if f.rule_id != exp["rule"] or f.location.path != exp["path"]:
        return False
    if "account" in exp and f.extra.get("account") != exp["account"]:
        return False
    if "password" in exp and f.extra.get("password") != exp["password"]:
        return False
    if "line" in exp and f.location.line != exp["line"]:
        return False
    return "offset" not in exp or f.location.offset == exp["offset"]


@pytest.mark.parametrize(
    "image", _images(lambda im: im["planted"] and _is_squashfs(im)), ids=lambda im: im["name"]
)
def test_planted_problems_are_found_exactly(image, unpacked):
    ctx = tree_context(unpacked(image["file"]))
    result = run(ctx, only=CHECK_CATEGORIES)
    found = [f for f in result.findings if f.category in CHECK_CATEGORIES]
    expected = expected_findings(image["planted"])
    unmatched_expected = [e for e in expected if sum(_matches(f, e) for f in found) != 1]
    extra = [
        f"{f.rule_id} {f.location.path}:{f.location.line} {f.evidence}"
        for f in found
        if not any(_matches(f, e) for e in expected)
    ]
    assert unmatched_expected == [], "missing or duplicated"
    assert extra == [], "false positives"
    assert len(found) == len(expected)
    for f in found:
        assert f.cra_reference and f.remediation and f.location.layer_chain == ("L0:raw", "L1:squashfs")


@pytest.mark.parametrize("image", _images(lambda im: im.get("clean")), ids=lambda im: im["name"])
def test_clean_image_has_no_findings(image, unpacked):
    assert _is_squashfs(image)
    ctx = tree_context(unpacked(image["file"]))
    result = run(ctx)
    assert [f"{f.rule_id} {f.location.path} {f.evidence}" for f in result.findings] == []
    # it does start services; they are inventoried with what protects them
    ssh = [s for s in result.services if s.name == "ssh"]
    assert len(ssh) == 1 and ssh[0].port == 22 and ssh[0].binary == "/usr/sbin/dropbear"
    assert ssh[0].started_by == "script:/etc/init.d/rcS:7"
    consoles = [s for s in result.services if s.protocol == "serial"]
    assert [(s.bind_address, s.authentication) for s in consoles] == [("ttyS0", "password")]
    assert len(result.hardening) >= 5 and all(h.arch == "aarch64" and h.nx for h in result.hardening)


def test_set_a_service_inventory(unpacked):
    truth = _truth()
    image = next(im for im in truth["images"] if any(p["kind"] == "telnet" for p in im["planted"]))
    result = run(tree_context(unpacked(image["file"])), only=("services",))
    got = sorted((s.name, s.binary, s.port, s.protocol, s.authentication) for s in result.services)
    assert got == sorted(
        [
            ("console-shell", "/bin/sh", None, "serial", "none"),
            ("telnet", "/usr/sbin/telnetd", 23, "tcp", "password"),
            ("dns-dhcp", "/usr/sbin/dnsmasq", 53, "udp", "none"),
            ("snmp", "/usr/sbin/snmpd", 161, "udp", "community"),
            ("ftp", "/usr/sbin/vsftpd", 21, "tcp", "anonymous"),
            ("syslog", "syslogd", None, "", "n/a"),  # rcS starts it (fixtures/build.py)
        ]
    )


# ---- hardening agreement on every ELF of the fixture images ------------------------------


def _fixture_elves(unpacked) -> list[tuple[Path, object]]:
    out, seen = [], set()
    for im in _images(lambda im: _is_squashfs(im) and (im["planted"] or im.get("clean"))):
        ctx = tree_context(unpacked(im["file"]))
        for e in ctx.iter_files(kinds=[FileKind.ELF]):
            if e.elf is None or e.sha256 in seen:
                continue
            seen.add(e.sha256)
            v = verdicts(e.path, (), e.elf)
            if v is not None:
                out.append((Path(e.abs_path), v))
    if not out:
        pytest.skip("no fixture images")
    return out


def test_fixture_binaries_agree_with_checksec_py_and_pwntools(unpacked):
    cs_mod = pytest.importorskip("checksec.elf", reason="checksec.py not installed")
    os.environ.setdefault("PWNLIB_NOTERM", "1")
    pw_mod = pytest.importorskip("pwnlib.elf.elf", reason="pwntools not installed")
    checked = 0
    for path, ours in _fixture_elves(unpacked):
        cs = cs_mod.ELFSecurity(path).checksec_state
        pw = pw_mod.ELF(str(path), checksec=False)
        where = f"{path.name} ({ours.arch})"
        program = ours.pie != "dso" and ".so" not in path.name
        assert ours.nx is cs.nx, where
        # pwntools judges NX for the process, i.e. only for programs; for a library it says True
        # (glibc would still make the stack executable when loading a library with PF_X)
        if program and pw.nx is not None:
            assert ours.nx is pw.nx, where
        if program:
            assert ours.exec_stack is pw.execstack, where
        if program:  # (libc.so.6 has PT_INTERP, so it is "yes" here and "DSO" for checksec.py)
            assert (ours.pie == "yes") is (cs.pie.name == "PIE") is pw.pie, where
        assert ours.relro == {"No": "none", "Partial": "partial", "Full": "full"}[cs.relro.name], where
        assert ours.relro == {None: "none", "Partial": "partial", "Full": "full"}[pw.relro], where
        if ours.canary == "unknown":
            assert cs.canary is False and pw.canary is False, where
        elif program:
            # (shared objects differ: ld.so on ARM exports __stack_chk_guard, which the inventory
            # counts as canary evidence while both tools look for __stack_chk_fail only)
            assert (ours.canary == "yes") is cs.canary is pw.canary, where
        checked += 1
    assert checked >= 10


# two containers other than squashfs, through the whole pipeline (each scan unpacks for real)
_NEUTRAL = ("initramfs-armel.cpio.gz", "jffs2-le-armhf.jffs2")


@pytest.mark.slow
@pytest.mark.parametrize(
    "image",
    _images(lambda im: not im["planted"] and not im.get("clean") and im["name"] in _NEUTRAL),
    ids=lambda im: im["name"],
)
def test_images_without_planted_problems_report_none(image, tmp_path):
    """Every other fixture (neutral systems in other containers) through the real `cra-fw scan`."""
    from tests.conftest import scan_cli

    if not (IMAGES / image["file"]).exists():
        pytest.skip("image not built")
    run_ = scan_cli(IMAGES / image["file"], tmp_path / "out")
    assert run_.returncode == 0, run_.stderr
    report = run_.report
    ours = [
        (f["rule_id"], f["location"]["path"])
        for f in report["findings"]
        if f["category"] in (*CHECK_CATEGORIES, "hardening", "checks")
    ]
    assert ours == []
    assert report["hardening"], "the image's ELF files were judged"
