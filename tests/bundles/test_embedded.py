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

from .helpers import OUT, SHARED

CRA = ("Annex I Part I (2)(c)", "Annex I Part I (2)(f)", "Annex I Part II 7")


def tree_context(root: Path, trust: tuple[Path, ...] = ()) -> ScanContext:
    options = ScanOptions(workers=2, progress=False, trust=trust)
    image = Layer(
        id="L0",
        parent_id=None,
        format="raw",
        offset=0,
        size=0,
        sha256="0" * 64,
        status=LayerStatus.IDENTIFIED,
        depth=0,
    )
    layer = Layer(
        id="L1",
        parent_id="L0",
        format="squashfs",
        offset=0,
        size=0,
        sha256="1" * 64,
        status=LayerStatus.EXTRACTED,
        depth=1,
        root=str(root),
    )
    inv = build_inventory([image, layer], options=options)
    info = ImageInfo(
        name=root.name, size=0, sha256=hashlib.sha256(str(root).encode()).hexdigest(), sha512="", md5=""
    )
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
    (root / "etc/rauc/system.conf").write_text(
        "[system]\ncompatible=cra-fw-test\nbootloader=uboot\n\n[keyring]\npath=ca.cert.pem\n"
    )
    (root / "etc/swupdate.cfg").write_text(
        'globals :\n{\n\tpublic-key-file = "/etc/swupdate/public.pem";\n};\n'
    )
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
    bundle_findings = {
        (f.rule_id, f.location.path, f.severity)
        for f in result.findings
        if f.rule_id.startswith("update.bundle")
    }
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


def test_without_trust_bundles_are_checked_against_the_shipped_keys(tree: Path) -> None:
    result = scan_embedded(tree_context(tree))
    by_path = {v.path: v for v in result.verdicts}
    # RAUC bundle and FIT verify against the keyring / control DTB the image ships
    rauc, fit = by_path["L1:/data/update.raucb"], by_path["L1:/boot/fit.itb"]
    assert (rauc.verdict, rauc.anchor) == (Verdict.VALID, "rauc-keyring:L1:/etc/rauc/ca.cert.pem")
    assert (fit.verdict, fit.anchor) == (Verdict.VALID, "uboot-dtb:L1:/boot/u-boot.dtb")
    assert any("not against an independent --trust anchor" in n for n in rauc.notes)
    # no Mender key shipped: the signed artifact stays unverified (the SWUpdate key is the
    # same RSA key, but the Mender client would never use it)
    mender = by_path["L1:/data/os.mender"]
    assert (mender.verdict, mender.anchor) == (Verdict.UNTRUSTED_SIGNER, "")
    shipped = {
        (f.location.path, f.severity)
        for f in result.findings
        if f.rule_id == "update.bundle-verified-shipped-key"
    }
    assert shipped == {("/data/update.raucb", Severity.INFO), ("/boot/fit.itb", Severity.INFO)}
    info = [f for f in result.findings if f.location.path == "/data/os.mender"]
    assert len(info) == 1 and info[0].severity is Severity.INFO
    high = {f.location.path for f in result.findings if f.severity is Severity.HIGH}
    assert high == {"/boot/old.itb", "/data/rescue.raucb", "/data/app.swu", "/etc/mender/mender.conf"}


def test_bundle_refused_by_the_shipped_keyring_is_high(tree: Path) -> None:
    shutil.copy(
        OUT / "keys/other-ca.crt", tree / "etc/rauc/ca.cert.pem"
    )  # a keyring that is not the signer's
    result = scan_embedded(tree_context(tree))
    rauc = {v.path: v for v in result.verdicts}["L1:/data/update.raucb"]
    assert (rauc.verdict, rauc.anchor) == (Verdict.UNTRUSTED_SIGNER, "shipped")
    assert any(
        "does not verify against the keys shipped in this image: rauc-keyring" in n for n in rauc.notes
    )
    found = [f for f in result.findings if f.location.path == "/data/update.raucb"]
    assert [(f.rule_id, f.severity) for f in found] == [("update.bundle-untrusted-signer", Severity.HIGH)]
    # with --trust the shipped keys are not used at all
    with_trust = scan_embedded(tree_context(tree, (OUT / "keys/ca.crt",)))
    rauc = {v.path: v for v in with_trust.verdicts}["L1:/data/update.raucb"]
    # the anchor named is the --trust certificate that validated it, not a shipped key
    assert rauc.verdict == Verdict.VALID
    assert rauc.anchor.startswith(f"{OUT / 'keys/ca.crt'}: certificate CN=cra-fw test root CA")


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


# ------------------------------------------------------------------ FITs as the image, or carved from it


def scan_image(image: Path, workspace: Path, trust: tuple[Path, ...] = ()):
    """The real unpack and inventory stages, then scan_embedded, as the pipeline runs them."""
    from cra_fw.unpack import unpack_image

    options = ScanOptions(workers=1, progress=False, trust=trust)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    unpacked = unpack_image(image, workspace, options, digest)
    inv = build_inventory(list(unpacked.layers), options=options)
    info = ImageInfo(
        name=image.name, size=image.stat().st_size, sha256=digest, sha512="", md5="", path=str(image)
    )
    ctx = ScanContext(
        image=info, layers=list(unpacked.layers), files=list(inv.files), options=options, workspace=workspace
    )
    return ctx, scan_embedded(ctx)


def _need_fixtures() -> None:
    if not (OUT / "expected.json").exists():
        pytest.skip("fixtures/bundles/out is missing: run python fixtures/bundles/build.py")


@pytest.mark.parametrize(
    ("fixture", "trust", "verdict"),
    [
        ("fit/unsigned.itb", (), Verdict.UNSIGNED),
        ("fit/valid-rsa.itb", (OUT / "fit/ctl-rsa.dtb",), Verdict.VALID),
        ("fit/valid-rsa.itb", (), Verdict.UNTRUSTED_SIGNER),
    ],
)
def test_fit_given_as_the_image(
    fixture: str, trust: tuple[Path, ...], verdict: Verdict, tmp_path: Path
) -> None:
    _need_fixtures()
    image = tmp_path / "firmware.itb"
    shutil.copy(OUT / fixture, image)
    ctx, result = scan_image(image, tmp_path / "ws", trust)
    assert any(layer.format == "fit" and layer.offset == 0 for layer in ctx.layers)
    # reached twice (the image itself and its fit layer): verified and reported once
    assert [(v.path, v.format, v.verdict) for v in result.verdicts] == [("L0:firmware.itb", "fit", verdict)]
    bundle = [f for f in result.findings if f.rule_id.startswith("update.bundle")]
    if verdict is Verdict.VALID:
        assert bundle == []
    else:
        assert len(bundle) == 1
        assert bundle[0].location.path == "firmware.itb" and bundle[0].location.layer_chain == ("L0:raw",)
        assert bundle[0].severity is (Severity.HIGH if verdict is Verdict.UNSIGNED else Severity.INFO)


@pytest.mark.parametrize(
    ("fixture", "trust", "verdict"),
    [
        ("fit/unsigned.itb", (), Verdict.UNSIGNED),
        ("fit/valid-rsa.itb", (OUT / "fit/ctl-rsa.dtb",), Verdict.VALID),
        ("fit/payload-flipped.itb", (OUT / "fit/ctl-rsa.dtb",), Verdict.DIGEST_MISMATCH),
    ],
)
def test_fit_carved_from_a_flash_image(
    fixture: str, trust: tuple[Path, ...], verdict: Verdict, tmp_path: Path
) -> None:
    _need_fixtures()
    fit = (OUT / fixture).read_bytes()
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * 0x10000 + fit + b"\xff" * (0x8000 - len(fit) % 0x8000))
    ctx, result = scan_image(image, tmp_path / "ws", trust)
    fit_layers = [layer for layer in ctx.layers if layer.format == "fit"]
    assert [(layer.offset, layer.size) for layer in fit_layers] == [(0x10000, len(fit))]
    lid = fit_layers[0].id
    assert [(v.path, v.verdict) for v in result.verdicts] == [(f"{lid}:flash.bin@0x10000", verdict)]
    bundle = [f for f in result.findings if f.rule_id.startswith("update.bundle")]
    assert len(bundle) == (0 if verdict is Verdict.VALID else 1)
    for f in bundle:
        assert f.location.offset == 0x10000 and f.location.path == "flash.bin"
        assert f.location.layer_chain == ("L0:raw", f"{lid}:fit")
    assert not any(str(tmp_path) in v.reason for v in result.verdicts)


def test_fit_inside_an_unpacked_file_is_found_once(tmp_path: Path) -> None:
    _need_fixtures()
    root = tmp_path / "rootfs"
    (root / "boot").mkdir(parents=True)
    shutil.copy(OUT / "fit/unsigned.itb", root / "boot/fit.itb")
    ctx = tree_context(root)
    entry = ctx.lookup("L1", "/boot/fit.itb")
    assert entry is not None
    # the same file also carved as a fit layer of L1: one verdict, not two
    fit_layer = Layer(
        id="L2",
        parent_id="L1",
        format="fit",
        offset=0,
        size=entry.size,
        sha256="2" * 64,
        status=LayerStatus.EXTRACTED,
        depth=2,
        parent_path="/boot/fit.itb",
    )
    ctx = ScanContext(image=ctx.image, layers=[*ctx.layers, fit_layer], files=ctx.files, options=ctx.options)
    result = scan_embedded(ctx)
    assert [(v.path, v.verdict) for v in result.verdicts] == [("L1:/boot/fit.itb", Verdict.UNSIGNED)]


SHARED_FIT = [p for p in (SHARED / "uboot_fit.itb", SHARED / "fact/uboot_fit.itb") if p.exists()]


def test_real_uboot_fit_image_is_reported_unsigned(tmp_path: Path) -> None:
    if not SHARED_FIT:
        pytest.skip("uboot_fit.itb is not in ../shared/firmware")
    ctx, result = scan_image(SHARED_FIT[0], tmp_path / "ws")
    fits = [v for v in result.verdicts if v.format == "fit"]
    assert [(v.path, v.verdict) for v in fits] == [(f"L0:{SHARED_FIT[0].name}", Verdict.UNSIGNED)]
    unsigned = [f for f in result.findings if f.rule_id == "update.bundle-unsigned"]
    assert len(unsigned) == 1 and unsigned[0].severity is Severity.HIGH
    assert unsigned[0].location.path == SHARED_FIT[0].name
    assert not any(v.verdict is Verdict.VALID for v in result.verdicts)
