"""MCU checks through the real `cra-fw scan`: credentials in NVS (built with Espressif's
esp-idf-nvs-partition-gen) and in an ESP8266 dump, certificates in flash, plaintext flash,
unsigned MCUboot images; and what must not be reported."""

from __future__ import annotations

import os

import pytest

from cra_fw.checks.interface import fingerprint
from tests.conftest import scan_cli
from tests.mcu_tools import (
    SHARED_MCU,
    esp32c3_app,
    esp32c3_bootloader,
    imgtool_key,
    mcuboot_image,
    merge_bin,
    nvs_partition,
    partition_table,
)

NVS_CSV = """key,type,encoding,value
nvs.net80211,namespace,,
sta.ssid,data,string,HomeNet-5G
sta.pswd,data,string,correct-horse-battery
app,namespace,,
mqtt_uri,data,string,mqtts://broker.example.net:8883
mqtt_pass,data,string,s3cr3t-mqtt
boot_count,data,u32,42
"""


def _by_rule(report):
    out: dict[str, list] = {}
    for f in report["findings"]:
        out.setdefault(f["rule_id"], []).append(f)
    return out


@pytest.fixture(scope="module")
def flash_scan(tmp_path_factory):
    work = tmp_path_factory.mktemp("flash")
    app = esp32c3_app(work / "app")
    boot = esp32c3_bootloader(work / "boot")
    table = work / "pt.bin"
    table.write_bytes(
        partition_table([("nvs", 1, 2, 0x9000, 0x6000, 0), ("factory", 0, 0, 0x10000, 0x100000, 0)])
    )
    nvs = nvs_partition(work / "nvs", NVS_CSV)
    flash = merge_bin(work, "esp32c3", [(0x0, boot), (0x8000, table), (0x9000, nvs), (0x10000, app)])
    run = scan_cli(flash, work / "out")
    assert run.returncode in (0, 1), run.stderr
    return run.report


def test_nvs_is_unpacked_to_entries(flash_scan):
    (nvs,) = [la for la in flash_scan["layers"] if la["format"] == "esp-nvs"]
    assert nvs["parent_path"] == "/nvs@0x9000.nvs"
    assert nvs["details"]["namespaces"] == "app,nvs.net80211"
    assert nvs["details"]["encrypted"] == "no"
    paths = {f["path"] for f in flash_scan["files"] if f["layer_id"] == nvs["id"]}
    assert {"/app/mqtt_pass", "/app/boot_count", "/nvs.net80211/sta.ssid", "/nvs.net80211/sta.pswd"} <= paths


def test_wifi_and_mqtt_credentials_in_nvs(flash_scan):
    rules = _by_rule(flash_scan)
    (wifi,) = rules["mcu.wifi-credentials"]
    assert wifi["severity"] == "high" and wifi["fingerprint"] == fingerprint("correct-horse-battery")
    assert "'HomeNet-5G'" in wifi["evidence"] and "correct-horse-battery" not in wifi["evidence"]
    (mqtt,) = rules["mcu.nvs-credential"]  # mqtt_pass only: not the URI, not the counter
    assert mqtt["title"].endswith("app/mqtt_pass") and mqtt["fingerprint"] == fingerprint("s3cr3t-mqtt")


def test_plaintext_flash_dump(flash_scan):
    (plain,) = _by_rule(flash_scan)["mcu.flash-plaintext"]
    assert plain["severity"] == "medium" and "factory@0x10000.factory" in plain["evidence"]
    assert "mcu.app-unsigned-for-secure-boot" not in _by_rule(flash_scan)  # the bootloader is not signed


def test_unsigned_mcuboot_image_only(tmp_path):
    payload = os.urandom(4096)
    plain = mcuboot_image(tmp_path / "p", payload, "-v", "1.0.0")
    signed = mcuboot_image(
        tmp_path / "s", payload, "-v", "1.0.0", "-k", str(imgtool_key(tmp_path, "ecdsa-p256"))
    )
    r1 = scan_cli(plain, tmp_path / "o1").report
    r2 = scan_cli(signed, tmp_path / "o2").report
    assert [f["severity"] for f in _by_rule(r1)["mcu.unsigned-image"]] == ["medium"]
    assert "mcu.unsigned-image" not in _by_rule(r2)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MCU.is_dir(), reason="shared firmware not present")
def test_sonoff_dump_findings(tmp_path):
    # ground truth by hand (xxd): system_param sector 0xfd000 holds station SSID '8DB0839D' with
    # password '094FAFE8' and soft-AP 'ITEAD-1000745bbf' with '12345678'; sector 0x78000 (eWeLink
    # settings) holds apikey 'e906d1b6-32af-40fc-a28c-5e0ab6b931b1'; a self-signed RSA-1024 DER
    # certificate CN=coolkit.cn sits at 0x582b6 (app) and 0x7f022.  The '-----BEGIN RSA PRIVATE KEY-----'
    # text at 0x66627 is Mbed TLS's PEM parser constant with no key after it: no private key.
    run = scan_cli(SHARED_MCU / "esp8266_sonoff-basic_stock-ewelink_flash-dump-1MB.bin", tmp_path / "o")
    rules = _by_rule(run.report)
    assert {f["fingerprint"] for f in rules["mcu.wifi-credentials"]} == {fingerprint("094FAFE8")}
    (ap,) = rules["mcu.wifi-default-password"]
    assert ap["fingerprint"] == fingerprint("12345678") and "ITEAD-1000745bbf" in ap["evidence"]
    assert {f["fingerprint"] for f in rules["mcu.cloud-key"]} == {
        fingerprint("e906d1b6-32af-40fc-a28c-5e0ab6b931b1")
    }
    (cert,) = rules["mcu.flash-certificate-weak"]
    assert "CN=coolkit.cn" in cert["evidence"] and "RSA-1024" in cert["title"]
    assert not [r for r in rules if "private-key" in r]
