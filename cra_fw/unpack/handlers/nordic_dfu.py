"""Nordic DFU packages: a zip with ``manifest.json`` (nrfutil / nRF Connect SDK / adafruit-nrfutil).

Two manifest shapes exist: nrfutil's ``{"manifest": {"application": {"bin_file",
"dat_file", ...}}}`` (init packet + payload per part) and the nRF Connect SDK's
``{"format-version": 1, "files": [{"type", "board", "soc", "load_address", "file",
...}]}`` (MCUboot images).  The members are written out (bounded), the manifest's facts
go into the layer details; the payloads are unpacked one level down.
"""

from __future__ import annotations

import json
import mmap
import zipfile
from pathlib import Path

from cra_fw.unpack.native import MappedFile, NativeHandler, Region, safe_name

MAX_MEMBERS = 64
MAX_MEMBER = 64 << 20
MAX_MANIFEST = 1 << 20


def _manifest(zf: zipfile.ZipFile) -> dict | None:
    try:
        info = zf.getinfo("manifest.json")
    except KeyError:
        return None
    if info.file_size > MAX_MANIFEST:
        return None
    try:
        doc = json.loads(zf.read(info))
    except (ValueError, zipfile.BadZipFile, RuntimeError):
        return None
    return doc if isinstance(doc, dict) else None


def _details(doc: dict) -> dict[str, str]:
    details: dict[str, str] = {}
    if isinstance(doc.get("files"), list):
        details["manifest"] = f"nrf connect sdk (format-version {doc.get('format-version', '?')})"
        parts = []
        for item in doc["files"][:MAX_MEMBERS]:
            if not isinstance(item, dict):
                continue
            load = item.get("load_address")
            parts.append(
                " ".join(
                    str(x)
                    for x in (
                        item.get("type", "?"),
                        item.get("file", "?"),
                        f"load={load:#x}" if isinstance(load, int) else "",
                        f"board={item.get('board')}" if item.get("board") else "",
                        f"soc={item.get('soc')}" if item.get("soc") else "",
                        f"version={item.get('version_MCUBOOT') or item.get('version')}"
                        if item.get("version_MCUBOOT") or item.get("version")
                        else "",
                    )
                    if x
                )
            )
        details["files"] = "; ".join(parts)
        socs = {str(i["soc"]) for i in doc["files"] if isinstance(i, dict) and isinstance(i.get("soc"), str)}
        if len(socs) == 1:
            details["soc"] = socs.pop()
        if isinstance(doc.get("name"), str):
            details["name"] = doc["name"][:100]
    elif isinstance(doc.get("manifest"), dict):
        details["manifest"] = "nrfutil"
        parts = []
        for kind, part in list(doc["manifest"].items())[:MAX_MEMBERS]:
            if isinstance(part, dict):
                text = f"{kind} bin={part.get('bin_file', '?')} init={part.get('dat_file', 'none')}"
                init = part.get("init_packet_data")
                if isinstance(init, dict):
                    text += " " + " ".join(
                        f"{k}={init[k]}"
                        for k in ("application_version", "device_type", "device_revision", "softdevice_req")
                        if k in init
                    )
                parts.append(text)
        details["files"] = "; ".join(parts)
        details["init_packets"] = str(
            sum(1 for p in doc["manifest"].values() if isinstance(p, dict) and p.get("dat_file"))
        )
    return details


class NordicDfuHandler(NativeHandler):
    name = "nordic-dfu"

    def find(self, data: mmap.mmap) -> list[Region]:
        if bytes(data[:4]) != b"PK\x03\x04":
            return []
        try:
            with zipfile.ZipFile(MappedFile(data)) as zf:
                doc = _manifest(zf)
        except (zipfile.BadZipFile, OSError, ValueError):
            return []
        if doc is None:
            return []
        details = _details(doc)
        if not details:
            return []
        return [Region(0, len(data), details=details)]

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist()[:MAX_MEMBERS]:
                if info.is_dir() or info.file_size > MAX_MEMBER:
                    continue
                name = safe_name(info.filename.replace("/", "_"))
                with zf.open(info) as src, open(outdir / name, "wb") as out:
                    out.write(src.read(MAX_MEMBER + 1)[:MAX_MEMBER])
