"""MCUboot images (``imgtool sign`` output, Zephyr ``zephyr.signed.bin``).

The layer's one file is the payload (``payload@<load address>.bin``); header fields,
version, flags and the TLVs (with their offsets and whether they are protected) go into
the details.  An encrypted payload is recognised and flagged, not unpacked.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, mcuboot
from cra_fw.parsers.mcuboot import McubootImage
from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region, mapped

MAX_IMAGES = 8
ESP_LOAD_MAGIC = 0xACE637D3  # Espressif's MCUboot port: the payload starts with a load header


def image_details(image: McubootImage) -> dict[str, str]:
    details = {
        "version": str(image.version),
        "endianness": image.endian,
        "header_size": f"{image.hdr_size:#x}",
        "image_size": f"{image.img_size:#x}",
        "load_addr": f"{image.load_addr:#010x}",
        "flags": ",".join(image.flag_names) or "none",
        "encrypted": "yes" if image.encrypted else "no",
        "tlvs": " ".join(
            f"{t.name}{'(protected)' if t.protected else ''}@{t.offset - 4 - image.offset:#x}+{len(t.value)}"
            for t in image.tlvs
        ),
        "signature": ",".join(t.name for t in image.signature_tlvs) or "none (hash only)",
    }
    counter = image.security_counter
    if counter is not None:
        details["security_counter"] = str(counter)
    if image.tlv_error:
        details["tlv_error"] = image.tlv_error
    return details


class McubootHandler(NativeHandler):
    name = "mcuboot"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        pos = mcuboot.find(data)  # type: ignore[arg-type]  # mmap slices like bytes
        while pos != -1 and len(out) < MAX_IMAGES:
            try:
                image = mcuboot.parse(data, pos)  # type: ignore[arg-type]
            except ParseError:
                pos = mcuboot.find(data, pos + 1)  # type: ignore[arg-type]
                continue
            if pos != 0 and image.tlv_error:
                # inside other data (an MCUboot bootloader holds the magic as a constant)
                pos = mcuboot.find(data, pos + 1)  # type: ignore[arg-type]
                continue
            details = image_details(image)
            if not image.encrypted and image.img_size >= 8:
                magic = int.from_bytes(data[image.payload_start : image.payload_start + 4], "little")
                if magic == ESP_LOAD_MAGIC:
                    details["payload"] = "espressif mcuboot load header"
            out.append(
                Region(
                    pos,
                    max(image.end, image.hashed_end),
                    error=image.tlv_error,
                    unsupported=image.encrypted,
                    details=details,
                )
            )
            pos = mcuboot.find(data, max(image.end, pos + 1))  # type: ignore[arg-type]
        return out

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            image = mcuboot.parse(data, region.start)  # type: ignore[arg-type]
        if image.encrypted:
            return  # the payload is AES-encrypted: nothing readable to unpack
        outdir.mkdir(parents=True, exist_ok=True)
        copy_region(
            path,
            image.payload_start,
            image.payload_end,
            outdir / f"payload@{image.load_addr:08x}.bin",
        )
