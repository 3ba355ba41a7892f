"""MCUboot reader against images made by imgtool (and the shared real images when present)."""

from __future__ import annotations

import hashlib
import os

import pytest

from cra_fw.parsers import ParseError, mcuboot
from tests.mcu_tools import SHARED_MCU, imgtool_key, mcuboot_image

PAYLOAD = os.urandom(3000) + b"fixture payload end"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("mcuboot")


def test_signed_rsa_image(work):
    key = imgtool_key(work, "rsa-2048")
    path = mcuboot_image(work / "rsa", PAYLOAD, "-v", "1.2.3+45", "-k", str(key), "-s", "9")
    data = path.read_bytes()
    image = mcuboot.parse(data, 0)
    assert image.endian == "little"
    assert str(image.version) == "1.2.3+45"
    assert (image.hdr_size, image.img_size) == (0x200, len(PAYLOAD))
    assert bytes(data[image.payload_start : image.payload_end]) == PAYLOAD
    assert [(t.name, t.protected) for t in image.tlvs] == [
        ("SEC_CNT", True),
        ("SHA256", False),
        ("KEYHASH", False),
        ("RSA2048_PSS", False),
    ]
    assert image.security_counter == 9
    assert image.encrypted is False and image.flag_names == ()
    # the SHA256 TLV covers header + payload + protected TLV area: the reader's span is right
    sha = image.tlv(0x10)
    assert sha is not None and sha.value == hashlib.sha256(data[: image.hashed_end]).digest()
    assert image.end == len(data)  # imgtool writes nothing after the TLV area without --pad
    assert image.tlv_error == ""


def test_hash_only_big_endian_and_flags(work):
    path = mcuboot_image(work / "be", PAYLOAD, "-v", "0.0.1", "-e", "big", "--non-bootable")
    image = mcuboot.parse(path.read_bytes(), 0)
    assert image.endian == "big"
    assert [t.name for t in image.tlvs] == ["SHA256"]
    assert image.signature_tlvs == ()
    assert image.flag_names == ("non_bootable",)


def test_encrypted_image_is_flagged(work):
    key = imgtool_key(work, "ecdsa-p256")
    enc = imgtool_key(work / "enc", "ecdsa-p256")
    path = mcuboot_image(work / "enc", PAYLOAD, "-v", "3.0.0", "-k", str(key), "-E", str(enc))
    data = path.read_bytes()
    image = mcuboot.parse(data, 0)
    assert image.encrypted and "encrypted_aes128" in image.flag_names
    assert {"ECDSA_SIG", "ENC_EC256"} <= {t.name for t in image.tlvs}
    assert PAYLOAD[:64] not in data  # imgtool really encrypted it


def test_truncated_and_foreign_input(work):
    path = mcuboot_image(work / "trunc", PAYLOAD, "-v", "1.0.0")
    data = path.read_bytes()
    image = mcuboot.parse(data, 0)
    with pytest.raises(ParseError):
        mcuboot.parse(data[: image.payload_end - 1], 0)
    cut = mcuboot.parse(data[: image.payload_end + 10], 0)  # TLV area cut short: kept, with the reason
    assert cut.tlv_error and cut.tlvs == ()
    with pytest.raises(ParseError):
        mcuboot.parse(b"\0" * 64, 0)
    with pytest.raises(ParseError):
        mcuboot.parse(data[:20], 0)
    # a TLV length pointing past its area is an error, not an exception
    bad = bytearray(data)
    first = image.payload_end + 4
    bad[first + 2 : first + 4] = (0xFFF0).to_bytes(2, "little")
    assert mcuboot.parse(bytes(bad), 0).tlv_error


@pytest.mark.skipif(not SHARED_MCU.is_dir(), reason="shared firmware not present")
def test_shared_images_hand_checked():
    # hand inspection (xxd of the header and TLV area; imgtool verify on the RSA image)
    image = mcuboot.parse((SHARED_MCU / "nrf5340-nrf7002_ncs3.2.4_app_update_1.0.1.mcuboot.bin").read_bytes())
    assert (str(image.version), image.hdr_size, image.img_size) == ("1.0.1+0", 0x200, 0x9F120)
    assert [t.name for t in image.tlvs] == ["SHA256", "KEYHASH", "RSA2048_PSS"]
    esp = mcuboot.parse((SHARED_MCU / "esp32_zephyr4.0_zephyr.signed.bin").read_bytes())
    assert (esp.hdr_size, [t.name for t in esp.tlvs]) == (0x20, ["SHA256"])
