"""scan_embedded over a real directory tree, through the real inventory stage."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from cra_fw.bundles import Verdict, scan_embedded
from cra_fw.bundles.trust import TrustStore, key_fingerprint
from cra_fw.context import ScanContext, ScanOptions
from cra_fw.inventory import build_inventory
from cra_fw.records import ImageInfo, Layer, LayerStatus, Severity

from .helpers import OUT

CRA = ("Annex I Part I (2)(c)", "Annex I Part I (2)(f)", "Annex I Part II 7")


def tree_context(root: Path, trust: tuple[Path, ...] = ()) -> ScanContext:
    options = ScanOptions(workers=2, progress=False, trust=trust)
    image = Layer(id="L0", parent_id=None, format="raw", offset=0, size=0, sha256="0" * 64,
                  status=LayerStatus.IDENTIFIED, depth=0)
    layer = Layer(id="L1", parent_id="L0", format="squashfs", offset=0, size=0, sha256="1" * 64,
                  status=LayerStatus.EXTRACTED, depth=1, root=str(root))
    inv = build_inventory([image, layer], options=options)
    info = ImageInfo(name=root.name, size=0, sha256=hashlib.sha256(str(root).encode()).hexdigest(), sha512="",
                     md5="")
    return ScanContext(image=info, layers=[image, layer], files=list(inv.files), options=options)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    if not (OUT / "expected.json").exists():
        pytest.skip("fixtures/bundles/out is missing: run python fixtures/bundles/build.py")
    root = tmp_path / "rootfs"
    files = {
        "boot/fit.itb": OUT / "fit/valid-rsa.itb",
        "boot/old.itb": OUT / "fit/unsigned.itb",
        "boot/u-boot.dtb": OUT / "fit/ctl-rsa.dtb",
        "data/update.raucb": OUT / "rauc/plain-rsa.raucb",
        "data/rescue.raucb": OUT / "rauc/unsigned.raucb",
        "data/app.swu": OUT / "swupdate/missing-sha256.swu",
        "data/os.mender": OUT / "mender/valid-rsa.mender",
        "etc/rauc/ca.cert.pem": OUT / "keys/ca.crt",
        "etc/swupdate/public.pem": OUT / "keys/signer-rsa.pub.pem",
        "usr/share/doc/LICENSE": Path("/usr/share/common-licenses/Apache-2.0"),
    }
    for rel, src in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    (root / "etc/rauc/system.conf").write_text("[system]\ncompatible=cra-fw-test\nbootloader=uboot\n\n"
                                               "[keyring]\npath=ca.cert.pem\n")
    (root / "etc/swupdate.cfg").write_text('globals :\n{\n\tpublic-key-file = "/etc/swupdate/public.pem";\n};\n')
    (root / "etc/mender").mkdir(parents=True)
    (root / "etc/mender/mender.conf").write_text('{"ServerURL": "https://hosted.mender.io"}\n')
    return root


TRUST = (OUT / "keys/ca.crt", OUT / "keys/signer-rsa.pub.pem", OUT / "fit/ctl-rsa.dtb")


def test_verdicts_and_findings_with_trust(tree: Path) -> None:
    result = scan_embedded(tree_context(tree, TRUST))
    verdicts = {v.path: (v.format, v.verdict) for v in result.verdicts}
    assert verdicts == {
        "L1:/boot/fit.itb": ("fit", Verdict.VALID),
        "L1:/boot/old.itb": ("fit", Verdict.UNSIGNED),
        "L1:/data/update.raucb": ("rauc", Verdict.VALID),
        "L1:/data/rescue.raucb": ("rauc", Verdict.UNSIGNED),
        "L1:/data/app.swu": ("swupdate", Verdict.PARTIALLY_SIGNED),
        "L1:/data/os.mender": ("mender", Verdict.VALID),
    }
    bundle_findings = {(f.rule_id, f.location.path, f.severity) for f in result.findings
                       if f.rule_id.startswith("update.bundle")}
    assert bundle_findings == {
        ("update.bundle-unsigned", "/boot/old.itb", Severity.HIGH),
        ("update.bundle-unsigned", "/data/rescue.raucb", Severity.HIGH),
        ("update.bundle-partially-signed", "/data/app.swu", Severity.HIGH),
    }
    for f in result.findings:
        assert f.category == "update"
        if f.rule_id.startswith("update.bundle") or f.rule_id.startswith("update.key"):
            assert f.cra_reference == CRA
        assert f.location.layer_chain == ("L0:raw", "L1:squashfs")
    # workspace paths never leak into verdicts
    assert not any(str(tree) in v.path or str(tree) in v.reason for v in result.verdicts)


def test_shipped_keys_are_reported(tree: Path) -> None:
    result = scan_embedded(tree_context(tree))
    keys = {(k.kind, k.path): k.fingerprints for k in result.keys}
    ca_fp = key_fingerprint(TrustStore.load([OUT / "keys/ca.crt"]).certificates[0].public_key())
    rsa_fp = TrustStore.load([OUT / "keys/signer-rsa.pub.pem"]).keys[0].fingerprint
    assert keys == {
        ("rauc-keyring", "/etc/rauc/ca.cert.pem"): (ca_fp,),
        ("swupdate-key", "/etc/swupdate/public.pem"): (rsa_fp,),
        ("uboot-dtb", "/boot/u-boot.dtb"): (rsa_fp,),
    }
    rules = {f.rule_id for f in result.findings}
    assert "update.mender-no-verify-key" in rules
    assert {"update.key-rauc-keyring", "update.key-swupdate-key", "update.key-uboot-dtb"} <= rules
    assert "update.rauc-no-keyring" not in rules and "update.rauc-keyring-missing" not in rules


def test_without_trust_signed_bundles_are_info_only(tree: Path) -> None:
    result = scan_embedded(tree_context(tree))
    by_path = {v.path: v for v in result.verdicts}
    assert by_path["L1:/data/update.raucb"].verdict is Verdict.UNTRUSTED_SIGNER
    assert by_path["L1:/boot/fit.itb"].verdict is Verdict.UNTRUSTED_SIGNER
    assert not any(v.verdict is Verdict.VALID for v in result.verdicts)
    info = [f for f in result.findings if f.location.path == "/data/update.raucb"]
    assert len(info) == 1 and info[0].severity is Severity.INFO
    high = {f.location.path for f in result.findings if f.severity is Severity.HIGH}
    assert high == {"/boot/old.itb", "/data/rescue.raucb", "/data/app.swu", "/etc/mender/mender.conf"}


def test_bad_trust_file_is_a_finding_not_a_crash(tree: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a key\n")
    result = scan_embedded(tree_context(tree, (bogus,)))
    assert any(f.rule_id == "update.trust-unusable" for f in result.findings)
    assert len(result.verdicts) == 6


def test_rauc_without_keyring_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "etc/rauc").mkdir(parents=True)
    (root / "etc/rauc/system.conf").write_text("[system]\ncompatible=x\n")
    result = scan_embedded(tree_context(root))
    assert [f.rule_id for f in result.findings] == ["update.rauc-no-keyring"]
    assert result.verdicts == ()
