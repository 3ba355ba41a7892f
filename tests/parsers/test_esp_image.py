"""ESP image and partition-table readers against esptool-built images and the shared real ones."""

from __future__ import annotations

import hashlib
import struct

import pytest

from cra_fw.parsers import ParseError, esp_image, esp_partition
from tests.mcu_tools import APP_DESC, SHARED_MCU, esp32c3_app, esp8266_app


@pytest.fixture(scope="module")
def c3_app(tmp_path_factory):
    return esp32c3_app(tmp_path_factory.mktemp("c3"), ("fixture string one",))


def test_esp32c3_app(c3_app):
    data = c3_app.read_bytes()
    image = esp_image.parse(data, 0)
    assert (image.format, image.chip, image.chip_id, image.flash_size) == ("esp32", "esp32c3", 5, "4MB")
    assert image.entry == 0x40380000
    assert image.checksum_ok and image.sha256_ok
    assert image.sha256 == hashlib.sha256(data[: image.end - 32]).digest()
    assert image.end == len(data)
    loads = {s.load_addr for s in image.segments}
    assert {0x3C000020, 0x42000020, 0x40380000, 0x3FC88000} <= loads
    app = image.app
    assert app is not None
    assert (app.secure_version, app.version, app.project_name) == (
        APP_DESC["secure_version"],
        APP_DESC["version"],
        APP_DESC["project_name"],
    )
    assert (app.time, app.date, app.idf_ver) == (APP_DESC["time"], APP_DESC["date"], APP_DESC["idf_ver"])
    assert app.app_elf_sha256 != "00" * 32  # esptool patched the ELF digest in
    assert not image.is_bootloader
    assert image.signature_sector is None and image.sbv1_signature is None


def test_corruption_is_seen(c3_app):
    data = bytearray(c3_app.read_bytes())
    image = esp_image.parse(bytes(data), 0)
    seg = image.segments[-1]
    data[seg.offset] ^= 0x01
    flipped = esp_image.parse(bytes(data), 0)
    assert not flipped.checksum_ok and flipped.sha256_ok is False
    with pytest.raises(ParseError):
        esp_image.parse(bytes(data[: seg.offset]), 0)
    with pytest.raises(ParseError):
        esp_image.parse(b"\xe9" + b"\xff" * 40, 0)
    with pytest.raises(ParseError):
        esp_image.parse(b"\x00" * 64, 0)


def test_secure_boot_v2_signature_sector_is_located(c3_app):
    # the block layout espsecure writes: magic 0xE7, version 2 (RSA), CRC32 at 1196
    import zlib

    data = c3_app.read_bytes()
    padded = data + b"\xff" * (-len(data) % 4096)
    block = bytearray(b"\xe7\x02" + b"\x11" * 1194)
    block += struct.pack("<I", zlib.crc32(block)) + b"\0" * 16
    signed = padded + bytes(block) + b"\xff" * (4096 - len(block))
    image = esp_image.parse(signed, 0)
    assert image.signature_sector == len(padded)
    assert [(b.scheme, b.crc_ok) for b in image.signature_blocks] == [("rsa3072", True)]
    assert image.signed_end == len(signed)


@pytest.mark.parametrize("version", [1, 2])
def test_esp8266_images(tmp_path, version):
    path = esp8266_app(tmp_path, version)
    image = esp_image.parse(path.read_bytes(), 0)
    assert image.format == f"esp8266-v{version}"
    assert image.chip == "esp8266" and image.checksum_ok
    assert image.entry == 0x40100000
    assert image.end == path.stat().st_size
    if version == 2:
        assert image.crc32_ok is True
        assert image.segments[0].load_addr == 0  # irom0, stored with address 0
    assert {0x40100000, 0x3FFE8000} <= {s.load_addr for s in image.segments}


def test_partition_table_md5_and_names():
    rows = [
        (1, 2, 0x9000, 0x6000, b"nvs", 0),
        (1, 1, 0xF000, 0x1000, b"phy_init", 0),
        (0, 0, 0x10000, 0x100000, b"factory", 1),
        (0, 0x11, 0x110000, 0x100000, b"ota_1", 0),
        (1, 0x83, 0x210000, 0x10000, b"littlefs", 0),
    ]
    table = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", *r) for r in rows)
    table += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table).digest()
    parsed = esp_partition.parse(table + b"\xff" * 64, 0)
    assert parsed.md5_ok is True
    assert [(p.label, p.type_name, p.subtype_name) for p in parsed.partitions] == [
        ("nvs", "data", "nvs"),
        ("phy_init", "data", "phy"),
        ("factory", "app", "factory"),
        ("ota_1", "app", "ota_1"),
        ("littlefs", "data", "littlefs"),
    ]
    assert parsed.partitions[2].encrypted and not parsed.partitions[0].encrypted
    broken = bytearray(table)
    broken[5] ^= 1
    assert esp_partition.parse(bytes(broken), 0).md5_ok is False
    with pytest.raises(ParseError):
        esp_partition.parse(b"\xff" * 64, 0)


@pytest.mark.skipif(not SHARED_MCU.is_dir(), reason="shared firmware not present")
def test_shared_images_agree_with_esptool_image_info():
    # values read by hand with `esptool image-info` (v5.6.0) and xxd
    app = esp_image.parse((SHARED_MCU / "esp32_raccoon-R1.40_idf4.1.3_app.bin").read_bytes())
    assert (app.chip, len(app.segments), app.entry, app.checksum_ok, app.sha256_ok) == (
        "esp32",
        6,
        0x400816DC,
        True,
        True,
    )
    assert app.app is not None
    assert (app.app.project_name, app.app.version, app.app.idf_ver) == (
        "raccoon",
        "Racoon.R1.40",
        "v4.1.3-1-g696a99d5e4",
    )
    boot = esp_image.parse((SHARED_MCU / "esp32_raccoon_bootloader.bin").read_bytes())
    assert boot.is_bootloader and len(boot.segments) == 4 and boot.entry == 0x4008062C
    factory = (SHARED_MCU / "esp32c3_esphome-2025.9.1_firmware.factory.bin").read_bytes()
    c3boot = esp_image.parse(factory, 0)
    assert c3boot.bootloader is not None and c3boot.bootloader.idf_ver == "v5.4.2-25-g858a988d6e"
    table = esp_partition.parse(factory, esp_partition.find(factory))
    assert table.offset == 0x8000 and table.md5_ok is True
    assert [p.label for p in table.partitions] == ["nvs", "otadata", "app0", "app1", "eeprom", "spiffs"]
    sonoff = (SHARED_MCU / "esp8266_sonoff-basic_stock-ewelink_flash-dump-1MB.bin").read_bytes()
    boot8266 = esp_image.parse(sonoff, 0)
    assert (boot8266.format, len(boot8266.segments), boot8266.entry) == ("esp8266-v1", 3, 0x4010057C)
    user1 = esp_image.parse(sonoff, 0x1000)
    assert user1.format == "esp8266-v2" and user1.crc32_ok and user1.entry == 0x40100004
