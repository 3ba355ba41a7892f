"""An application with no signature in a flash whose bootloader is signed for Secure Boot v2
(espsecure sign-data --version 2): a high finding; with the app signed too, none."""

from __future__ import annotations

from tests.conftest import scan_cli
from tests.mcu_tools import esp32c3_app, esp32c3_bootloader, merge_bin, partition_table, run, tool


def _rules(report):
    return {f["rule_id"] for f in report["findings"]}


def test_unsigned_app_behind_a_signed_bootloader(tmp_path):
    key = tmp_path / "sbv2.pem"
    run(tool("espsecure"), "generate-signing-key", "--version", "2", "--scheme", "rsa3072", str(key))
    boot = esp32c3_bootloader(tmp_path / "boot")
    app = esp32c3_app(tmp_path / "app")
    signed_boot, signed_app = tmp_path / "boot-signed.bin", tmp_path / "app-signed.bin"
    for unsigned, signed in ((boot, signed_boot), (app, signed_app)):
        run(
            tool("espsecure"),
            "sign-data",
            "--version",
            "2",
            "--keyfile",
            str(key),
            "--output",
            str(signed),
            str(unsigned),
        )
    table = tmp_path / "pt.bin"
    table.write_bytes(partition_table([("factory", 0, 0, 0x10000, 0x100000, 0)]))

    flash = merge_bin(tmp_path, "esp32c3", [(0x0, signed_boot), (0x8000, table), (0x10000, app)])
    report = scan_cli(flash, tmp_path / "o1").report
    (boot_layer,) = [la for la in report["layers"] if la["format"] == "esp-bootloader"]
    assert boot_layer["details"]["secure_boot"].startswith("v2 signature sector at 0x")
    finding = next(f for f in report["findings"] if f["rule_id"] == "mcu.app-unsigned-for-secure-boot")
    assert finding["severity"] == "high"

    (tmp_path / "both").mkdir()
    flash2 = merge_bin(
        tmp_path / "both", "esp32c3", [(0x0, signed_boot), (0x8000, table), (0x10000, signed_app)]
    )
    report2 = scan_cli(flash2, tmp_path / "o2").report
    assert "mcu.app-unsigned-for-secure-boot" not in _rules(report2)
    (app_layer,) = [la for la in report2["layers"] if la["format"] == "esp-app"]
    assert "rsa3072" in app_layer["details"]["secure_boot"]
