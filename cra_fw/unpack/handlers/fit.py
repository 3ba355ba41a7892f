"""U-Boot FIT: a device tree with an ``/images`` node; each image's data becomes one file.

Images are written under their node names (``kernel-1``, ``fdt-1``...), so
recursion unpacks a gzip kernel or a cpio ramdisk one level down.  The layer
details say whether any configuration or image carries a signature; checking
those signatures is the bundle verifier's job.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.parsers import ParseError
from cra_fw.parsers.fdt import Fdt, Node
from cra_fw.parsers.fit import image_span
from cra_fw.regions import copy_region
from cra_fw.unpack.native import NativeHandler, Region, safe_name

MAX_IMAGES = 256


def _str(node: Node, prop: str) -> str:
    try:
        return node.str(prop)
    except ParseError:  # a malformed string property is just unknown
        return ""


class FitHandler(NativeHandler):
    name = "fit"
    MAGIC = b"\xd0\x0d\xfe\xed"

    def _parse(self, data: mmap.mmap, pos: int) -> Region | None:
        try:
            fdt = Fdt(data, pos, len(data))  # type: ignore[arg-type]  # mmap reads like a file
        except (ParseError, ValueError, OverflowError, struct.error):
            return None
        images = fdt.node("/images")
        if images is None or not images.children:
            return None  # a plain device tree, not a FIT
        end = pos + fdt.totalsize
        members: list[tuple[str, int, int]] = []
        errors: list[str] = []
        for name, node in list(images.children.items())[:MAX_IMAGES]:
            try:
                start, size = image_span(fdt, node, len(data))
            except ParseError as exc:
                errors.append(str(exc))
                continue
            members.append((name, start, size))
            end = max(end, start + size)
        confs = fdt.node("/configurations")
        conf_nodes = list(confs.children.values()) if confs is not None else []
        signed_confs = [c.name for c in conf_nodes if any(k.startswith("signature") for k in c.children)]
        signed_images = [
            n for n, node in images.children.items() if any(k.startswith("signature") for k in node.children)
        ]
        details = {
            "images": ",".join(f"{n}:{_str(images.children[n], 'type')}" for n, _, _ in members),
            "configurations": str(len(conf_nodes)),
            "signed_configurations": ",".join(signed_confs),
            "signed_images": ",".join(signed_images),
            "signed": "yes" if signed_confs or signed_images else "no",
            "external_data": "yes"
            if any(images.children[n].prop("data") is None for n, _, _ in members)
            else "no",
        }
        description = _str(fdt.root, "description")
        if description:
            details["description"] = description[:200]
        return Region(pos, end, error="; ".join(errors)[:300], details=details, members=tuple(members))

    def find(self, data: mmap.mmap) -> list[Region]:
        return self.scan(data, self.MAGIC, lambda pos: self._parse(data, pos))

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        # the spans were read while recognising the FIT: no second parse
        outdir.mkdir(parents=True, exist_ok=True)
        for name, start, size in region.members:
            copy_region(path, start, start + size, outdir / safe_name(name))
