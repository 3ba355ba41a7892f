"""ESP8266 / ESP32-family application and bootloader images (``esptool elf2image`` output).

A file that starts with an ESP image becomes an ``esp-app`` or ``esp-bootloader`` layer
whose files are the segments (``seg<N>_<load address>.bin``), so identification reads
the code and data the chip loads.  Header, checksum, SHA-256, app descriptor and the
Secure Boot signature location go into the layer details.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, esp_image
from cra_fw.parsers.esp_image import EspImage
from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region, mapped

MAX_SEGMENTS_WRITTEN = 16


def image_details(image: EspImage) -> dict[str, str]:
    """Layer details of one ESP image (shared with the flash-dump handler)."""
    details = {
        "chip": image.chip or f"chip-id-{image.chip_id}",
        "image_format": image.format,
        "entry": f"{image.entry:#010x}",
        "flash_mode": image.flash_mode,
        "flash_size": image.flash_size,
        "segments": " ".join(
            f"{s.load_addr:#010x}@{s.offset - image.offset:#x}+{s.size:#x}" for s in image.segments
        ),
        "checksum": "ok"
        if image.checksum_ok
        else f"bad (stored {image.checksum:#04x}, computed {image.checksum_computed:#04x})",
        "sha256": "absent" if not image.hash_appended else ("ok" if image.sha256_ok else "bad"),
    }
    if image.crc32_ok is not None:
        details["crc32"] = "ok" if image.crc32_ok else "bad"
    if image.format == "esp32":
        details["min_chip_rev"] = f"v{image.min_rev_full // 100}.{image.min_rev_full % 100}"
    app = image.app
    if app is not None:
        details.update(
            {
                "project_name": app.project_name,
                "app_version": app.version,
                "idf_version": app.idf_ver,
                "build_date": f"{app.date} {app.time}".strip(),
                "secure_version": str(app.secure_version),
                "app_elf_sha256": app.app_elf_sha256,
            }
        )
    boot = image.bootloader
    if boot is not None:
        details.update(
            {
                "idf_version": boot.idf_ver,
                "build_date": boot.date_time,
                "secure_version": str(boot.secure_version),
                "bootloader_version": str(boot.version),
            }
        )
    if image.signature_sector is not None:
        schemes = ",".join(b.scheme + ("" if b.crc_ok else "(crc-bad)") for b in image.signature_blocks)
        details["secure_boot"] = (
            f"v2 signature sector at {image.signature_sector - image.offset:#x}: {schemes}"
        )
    elif image.sbv1_signature is not None:
        details["secure_boot"] = f"v1 signature appended at {image.sbv1_signature - image.offset:#x}"
    else:
        details["secure_boot"] = "no signature block"
    return {k: v for k, v in details.items() if v != ""}


def image_format(image: EspImage) -> str:
    return "esp-bootloader" if image.is_bootloader else "esp-app"


def write_segments(path: Path, image: EspImage, outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for idx, seg in enumerate(image.segments[:MAX_SEGMENTS_WRITTEN]):
        name = f"seg{idx}_{seg.load_addr:08x}.bin"
        copy_region(path, seg.offset, seg.offset + seg.size, outdir / name)


def parse_at(data: mmap.mmap, pos: int) -> EspImage | None:
    try:
        return esp_image.parse(data, pos)  # type: ignore[arg-type]  # mmap slices like bytes
    except ParseError:
        return None


class EspImageHandler(NativeHandler):
    """An ESP image at the start of a file (a flash dump is the flash handler's)."""

    name = "esp-app"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 24 or data[0] not in (esp_image.MAGIC, esp_image.MAGIC_V2):
            return []
        image = parse_at(data, 0)
        if image is None:
            return []
        error = "" if image.checksum_ok else "image checksum does not match its segments"
        if image.sha256_ok is False:
            error = "appended SHA-256 does not match the image"
        return [
            Region(0, image.signed_end, error=error, details=image_details(image), format=image_format(image))
        ]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            image = parse_at(data, region.start)
            if image is not None:
                write_segments(path, image, outdir)
