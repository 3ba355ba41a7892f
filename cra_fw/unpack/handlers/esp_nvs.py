"""ESP-IDF NVS partitions: each entry becomes a file ``<namespace>/<key>`` holding its value.

Strings without their NUL, integers as decimal text, blobs joined from their chunks, so
the credential and secret checks read Wi-Fi passwords, MQTT credentials and API tokens
like any other file.  Namespaces, entry count, format version and unreadable pages go
into the details; an NVS whose entries are all unreadable is reported as encrypted.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from cra_fw.parsers import ParseError, esp_nvs
from cra_fw.unpack.native import NativeHandler, Region, mapped, safe_name

MAX_ENTRIES = 4096


class EspNvsHandler(NativeHandler):
    name = "esp-nvs"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < esp_nvs.PAGE or len(data) % esp_nvs.PAGE or not esp_nvs.looks_like_nvs(data):  # type: ignore[arg-type]
            return []
        try:
            nvs = esp_nvs.parse(data)  # type: ignore[arg-type]  # mmap slices like bytes
        except ParseError:
            return []
        namespaces = sorted({e.namespace for e in nvs.entries})
        details = {
            "nvs_version": str(nvs.version),
            "pages": f"{nvs.pages_used} used of {nvs.pages}",
            "entries": str(len(nvs.entries)),
            "namespaces": ",".join(namespaces),
            "encrypted": "likely (entries unreadable)" if nvs.encrypted else "no",
        }
        if nvs.pages_unreadable:
            details["unreadable_pages"] = str(nvs.pages_unreadable)
        return [Region(0, len(data), details=details, unsupported=nvs.encrypted)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            nvs = esp_nvs.parse(data)  # type: ignore[arg-type]
            if nvs.encrypted:
                return
            outdir.mkdir(parents=True, exist_ok=True)
            for entry in nvs.entries[:MAX_ENTRIES]:
                folder = outdir / safe_name(entry.namespace or "_")
                folder.mkdir(exist_ok=True)
                (folder / safe_name(entry.key)).write_bytes(entry.value)
