"""Microcontroller containers built with the real tools (esptool elf2image / merge-bin, imgtool),
unpacked by the real `cra-fw unpack`: layer formats, offsets and load addresses in details."""

from __future__ import annotations

import os

import pytest

from cra_fw.parsers import esp_image
from tests.conftest import scan_cli
from tests.mcu_tools import (
    APP_DESC,
    esp32c3_app,
    esp32c3_bootloader,
    imgtool_key,
    mcuboot_image,
    merge_bin,
    partition_table,
)

ROWS = [
    ("nvs", 1, 2, 0x9000, 0x6000, 0),
    ("phy_init", 1, 1, 0xF000, 0x1000, 0),
    ("factory", 0, 0, 0x10000, 0x100000, 0),
    ("storage", 1, 0x83, 0x110000, 0x10000, 0),
]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    work = tmp_path_factory.mktemp("esp")
    app = esp32c3_app(work / "app", ("fixture rodata",))
    boot = esp32c3_bootloader(work / "boot")
    table = work / "pt.bin"
    table.write_bytes(partition_table(ROWS))
    return work, app, boot, table


def _layers(report, fmt):
    return [la for la in report["layers"] if la["format"] == fmt]


def test_app_image_layer_and_segments(parts, tmp_path):
    _work, app, _boot, _table = parts
    run = scan_cli(app, tmp_path / "o", command="unpack")
    assert run.returncode == 0, run.stderr
    (layer,) = _layers(run.report, "esp-app")
    d = layer["details"]
    assert (d["chip"], d["checksum"], d["sha256"]) == ("esp32c3", "ok", "ok")
    assert (d["project_name"], d["app_version"], d["idf_version"]) == (
        APP_DESC["project_name"],
        APP_DESC["version"],
        APP_DESC["idf_ver"],
    )
    assert d["secure_version"] == str(APP_DESC["secure_version"]) and d["secure_boot"] == "no signature block"
    image = esp_image.parse(app.read_bytes())
    assert d["segments"].split() == [f"{s.load_addr:#010x}@{s.offset:#x}+{s.size:#x}" for s in image.segments]
    paths = {f["path"] for f in run.report["files"] if f["layer_id"] == layer["id"]}
    assert {"/seg0_3c000020.bin", "/seg4_42000020.bin"} <= paths


def test_flash_dump_is_split_by_its_partition_table(parts, tmp_path):
    work, app, boot, table = parts
    flash = merge_bin(work, "esp32c3", [(0x0, boot), (0x8000, table), (0x10000, app)])
    run = scan_cli(flash, tmp_path / "o", command="unpack")
    assert run.returncode == 0, run.stderr
    report = run.report
    (top,) = _layers(report, "esp-flash")
    assert top["parent_id"] == "L0" and top["size"] == 2 * 1024 * 1024
    d = top["details"]
    assert d["chip"] == "esp32c3" and d["partition_table_md5"] == "ok"
    assert d["partition_table_offset"] == "0x8000" and d["bootloader_offset"] == "0x0"
    assert d["empty_partitions"] == "nvs,phy_init,storage"  # erased: listed, not written
    files = {f["path"] for f in report["files"] if f["layer_id"] == top["id"]}
    assert files == {"/bootloader@0x0.bin", "/partition-table@0x8000.bin", "/factory@0x10000.factory"}
    (boot_layer,) = _layers(report, "esp-bootloader")
    assert boot_layer["parent_path"] == "/bootloader@0x0.bin"
    (app_layer,) = _layers(report, "esp-app")
    assert app_layer["parent_path"] == "/factory@0x10000.factory"
    assert app_layer["details"]["app_version"] == APP_DESC["version"]
    (table_layer,) = _layers(report, "esp-partition-table")
    assert table_layer["details"]["md5"] == "ok"
    assert "factory app/factory 0x10000+0x100000" in table_layer["details"]["partitions"]


def test_uf2_from_esptool_names_the_chip(parts, tmp_path):
    work, app, _boot, _table = parts
    uf2 = merge_bin(work, "esp32c3", [(0x10000, app)], fmt="uf2")
    run = scan_cli(uf2, tmp_path / "o", command="unpack")
    assert run.returncode == 0, run.stderr
    (layer,) = _layers(run.report, "uf2")
    assert layer["details"]["chip"] == "esp32c3"  # family 0xD42BA06C
    assert layer["details"]["ranges"].startswith("esp32c3:0x00010000-")
    (inner,) = _layers(run.report, "esp-app")
    assert inner["parent_path"] == "/esp32c3_0x00010000.bin"


def test_mcuboot_intel_hex_from_imgtool(tmp_path):
    key = imgtool_key(tmp_path, "ecdsa-p256")
    payload = os.urandom(2048)
    hexfile = mcuboot_image(
        tmp_path / "m", payload, "-v", "2.3.4+5", "-k", str(key), "-x", "0x20000", name="signed.hex"
    )
    run = scan_cli(hexfile, tmp_path / "o", command="unpack")
    assert run.returncode == 0, run.stderr
    (hexl,) = _layers(run.report, "intel-hex")
    assert hexl["details"]["bad_checksums"] == "0"
    assert hexl["details"]["ranges"].startswith("0x00020000-")
    (mcub,) = _layers(run.report, "mcuboot")
    assert mcub["parent_path"] == "/0x00020000.bin"
    d = mcub["details"]
    assert (d["version"], d["signature"], d["encrypted"]) == ("2.3.4+5", "ECDSA_SIG", "no")
    assert d["tlvs"].split()[0].startswith("SHA256@")
    files = [f for f in run.report["files"] if f["layer_id"] == mcub["id"]]
    assert [f["size"] for f in files] == [len(payload)]


@pytest.mark.parametrize("cut", [30, 200, 5000])
def test_truncated_images_are_no_traceback(parts, tmp_path, cut):
    _work, app, _boot, _table = parts
    bad = tmp_path / "cut.bin"
    bad.write_bytes(app.read_bytes()[:cut])
    run = scan_cli(bad, tmp_path / "o", command="unpack")
    assert run.returncode in (0, 1, 3) and "Traceback" not in run.stderr
    assert not _layers(run.report, "esp-app")  # a cut image is not claimed as one


@pytest.mark.parametrize(("fmt", "layer"), [("srec", "srec"), ("ihex", "intel-hex")])
def test_objcopy_records_to_ranges(parts, tmp_path, fmt, layer):
    from tests.mcu_tools import run, tool

    work, _app, _boot, _table = parts
    elf = work / "app" / "app.elf"
    out = tmp_path / f"app.{fmt}"
    run(tool("riscv64-unknown-elf-objcopy"), "-O", fmt, str(elf), str(out))
    report = scan_cli(out, tmp_path / "o", command="unpack").report
    (rec,) = _layers(report, layer)
    assert rec["details"]["bad_checksums"] == "0"
    # the four output sections of the linker script, at their load addresses
    starts = [r.split("-")[0] for r in rec["details"]["ranges"].split()]
    assert starts == ["0x3c000020", "0x3fc88000", "0x40380000", "0x42000020"]
    if fmt == "srec":
        assert str(out).startswith(rec["details"]["header"])  # objcopy writes the (cut) file name
    names = {f["path"] for f in report["files"] if f["layer_id"] == rec["id"]}
    assert names == {f"/{s}.bin" for s in starts}


def test_fat_data_partition_in_a_flash_dump(parts, tmp_path):
    """A raw FAT data partition (dosfstools + mtools, as ESP-IDF's read-only FAT images are laid out)."""
    from tests.mcu_tools import run, tool

    _work, app, boot, _table = parts
    fat = tmp_path / "fat.img"
    run(tool("mkfs.fat"), "-C", "-S", "4096", "-s", "1", str(fat), "512")
    (tmp_path / "config.json").write_text('{"ota_url": "https://updates.example.net/fw.bin"}\n')
    run(tool("mcopy"), "-i", str(fat), str(tmp_path / "config.json"), "::/config.json")
    table = tmp_path / "pt.bin"
    table.write_bytes(
        partition_table([("factory", 0, 0, 0x10000, 0x100000, 0), ("ffat", 1, 0x81, 0x110000, 0x80000, 0)])
    )
    flash = merge_bin(tmp_path, "esp32c3", [(0x0, boot), (0x8000, table), (0x10000, app), (0x110000, fat)])
    report = scan_cli(flash, tmp_path / "o", command="unpack").report
    (fat_layer,) = _layers(report, "fat")
    assert fat_layer["parent_path"] == "/ffat@0x110000.fat"
    files = {f["path"] for f in report["files"] if f["layer_id"] == fat_layer["id"]}
    assert "/config.json" in files


def test_littlefs_partition_files(parts, tmp_path):
    """A LittleFS data partition made by littlefs-python (the littlefs C library), read by cra-fw's own reader."""
    littlefs = pytest.importorskip("littlefs", reason="pip install littlefs-python")
    _work, app, boot, _table = parts
    fs = littlefs.LittleFS(block_size=4096, block_count=32)
    fs.mkdir("cfg")
    with fs.open("cfg/settings.json", "w") as fh:
        fh.write('{"broker": "mqtt.example.net"}')
    big = bytes(range(256)) * 100  # spans several blocks: a CTZ skip list
    with fs.open("blob.bin", "wb") as fh:
        fh.write(big)
    image = tmp_path / "lfs.bin"
    image.write_bytes(fs.context.buffer)
    table = tmp_path / "pt.bin"
    table.write_bytes(
        partition_table(
            [("factory", 0, 0, 0x10000, 0x100000, 0), ("littlefs", 1, 0x83, 0x110000, 0x20000, 0)]
        )
    )
    flash = merge_bin(tmp_path, "esp32c3", [(0x0, boot), (0x8000, table), (0x10000, app), (0x110000, image)])
    run = scan_cli(flash, tmp_path / "o", "--keep-extracted", command="unpack")
    (lfs,) = _layers(run.report, "littlefs")
    assert lfs["parent_path"] == "/littlefs@0x110000.littlefs"
    assert (lfs["details"]["block_size"], lfs["details"]["block_count"]) == ("4096", "32")
    files = {f["path"]: f for f in run.report["files"] if f["layer_id"] == lfs["id"]}
    assert set(files) >= {"/cfg", "/cfg/settings.json", "/blob.bin"}
    import hashlib

    assert files["/blob.bin"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert files["/cfg/settings.json"]["size"] == len('{"broker": "mqtt.example.net"}')


def test_nrfutil_legacy_dfu_package(tmp_path):
    from tests.mcu_tools import run, tool

    app = tmp_path / "nrfapp.bin"
    app.write_bytes(os.urandom(8192))
    pkg = tmp_path / "pkg.zip"
    run(
        tool("adafruit-nrfutil"), "dfu", "genpkg", "--dev-type", "0x0052", "--application", str(app), str(pkg)
    )
    report = scan_cli(pkg, tmp_path / "o", command="unpack").report
    (layer,) = _layers(report, "nordic-dfu")
    d = layer["details"]
    assert (d["manifest"], d["init_packets"]) == ("nrfutil", "1")
    assert d["files"].startswith("application bin=nrfapp.bin init=nrfapp.dat ")
    assert "device_type=82" in d["files"]
    files = {f["path"] for f in report["files"] if f["layer_id"] == layer["id"]}
    assert files == {"/nrfapp.bin", "/nrfapp.dat", "/manifest.json"}
    assert not _layers(report, "zip")  # the package is one layer, not a zip plus a guess
