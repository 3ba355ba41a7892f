"""cra-fw's own handlers for formats the backends lack or mis-handle.

One small class per format: ``find`` returns the regions of a file in that
format, ``extract`` writes a region's contents into a folder.  They run in
the same sandboxed child as the backend, before it, and win over it: backend
chunks inside a native region are dropped (recursion finds them again, one
level down, so the layer chain is the same whatever the backend).
"""

from __future__ import annotations

import mmap
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.formats import UIMAGE_TYPE


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    container: bool = True
    error: str = ""
    unsupported: bool = False
    details: dict[str, str] = field(default_factory=dict)
    members: tuple[tuple[str, int, int], ...] = ()  # (name, start, size) found while recognising it
    format: str = ""  # layer format when one handler recognises several (esp-app / esp-bootloader)


class NativeHandler:
    name: str = ""

    def find(self, data: mmap.mmap) -> list[Region]:
        raise NotImplementedError

    @staticmethod
    def _scan(data: mmap.mmap, magic: bytes, parse: Callable[[int], Region | None]) -> list[Region]:
        """Regions ``parse`` recognises at each occurrence of ``magic``, never overlapping."""
        out: list[Region] = []
        pos = data.find(magic)
        while pos != -1:
            region = parse(pos)
            if region is not None:
                out.append(region)
            pos = data.find(magic, region.end if region is not None else pos + 1)
        return out

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        raise NotImplementedError


class UImageHandler(NativeHandler):
    """Legacy U-Boot image: 64-byte big-endian header, CRC-checked, then the payload."""

    name = "uimage"
    MAGIC = b"\x27\x05\x19\x56"
    HEADER = struct.Struct(">IIIIIIIBBBB32s")

    def _header(self, data: mmap.mmap, pos: int) -> tuple | None:
        if pos + 64 > len(data):
            return None
        raw = bytes(data[pos : pos + 64])
        fields = self.HEADER.unpack(raw)
        hcrc = fields[1]
        if zlib.crc32(raw[:4] + b"\0\0\0\0" + raw[8:]) & 0xFFFFFFFF != hcrc:
            return None
        return fields

    def find(self, data: mmap.mmap) -> list[Region]:
        def parse(pos: int) -> Region | None:
            fields = self._header(data, pos)
            if fields is None:
                return None
            end = pos + 64 + fields[3]
            if end > len(data):
                return Region(
                    pos, len(data), error=f"uImage payload truncated: header says {fields[3]} bytes"
                )
            return Region(pos, end)

        return self._scan(data, self.MAGIC, parse)

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        fields = self._header(data, region.start)
        if fields is None:
            return
        outdir.mkdir(parents=True, exist_ok=True)
        image_type = UIMAGE_TYPE.get(fields[9], f"type{fields[9]}")
        body_start = region.start + 64
        if image_type == "multi":
            sizes = []
            pos = body_start
            while pos + 4 <= region.end and len(sizes) < 64:
                (n,) = struct.unpack_from(">I", data, pos)
                pos += 4
                if n == 0:
                    break
                sizes.append(n)
            for idx, n in enumerate(sizes):
                chunk = data[pos : min(pos + n, region.end)]
                (outdir / f"image{idx}.bin").write_bytes(chunk)
                pos += (n + 3) & ~3
            return
        copy_region(Path(data_path(data)), body_start, region.end, outdir / f"{image_type}.bin")


class FitHandler(NativeHandler):
    """U-Boot FIT: a device tree with an ``/images`` node; each image's data becomes one file.

    Images are written under their node names (``kernel-1``, ``fdt-1``...), so
    recursion unpacks a gzip kernel or a cpio ramdisk one level down.  The
    layer details say whether any configuration or image carries a signature;
    checking those signatures is the bundle verifier's job.
    """

    name = "fit"
    MAGIC = b"\xd0\x0d\xfe\xed"
    MAX_IMAGES = 256

    def _parse(self, data: mmap.mmap, pos: int) -> Region | None:
        from cra_fw.bundles.fdt import Fdt
        from cra_fw.bundles.fit import image_span
        from cra_fw.errors import CraFwError

        try:
            fdt = Fdt(data, pos, len(data))  # type: ignore[arg-type]  # mmap reads like a file
        except (CraFwError, ValueError, OverflowError, struct.error):
            return None
        images = fdt.node("/images")
        if images is None or not images.children:
            return None  # a plain device tree, not a FIT
        end = pos + fdt.totalsize
        members: list[tuple[str, int, int]] = []
        errors: list[str] = []
        for name, node in list(images.children.items())[: self.MAX_IMAGES]:
            try:
                start, size = image_span(fdt, node, len(data))
            except CraFwError as exc:
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
            "images": ",".join(f"{n}:{self._str(images.children[n], 'type')}" for n, _, _ in members),
            "configurations": str(len(conf_nodes)),
            "signed_configurations": ",".join(signed_confs),
            "signed_images": ",".join(signed_images),
            "signed": "yes" if signed_confs or signed_images else "no",
            "external_data": "yes"
            if any(images.children[n].prop("data") is None for n, _, _ in members)
            else "no",
        }
        description = self._str(fdt.root, "description")
        if description:
            details["description"] = description[:200]
        return Region(pos, end, error="; ".join(errors)[:300], details=details, members=tuple(members))

    @staticmethod
    def _str(node, prop: str) -> str:
        from cra_fw.errors import CraFwError

        try:
            return node.str(prop)
        except CraFwError:  # a malformed string property is just unknown
            return ""

    def find(self, data: mmap.mmap) -> list[Region]:
        return self._scan(data, self.MAGIC, lambda pos: self._parse(data, pos))

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        # the spans were read while recognising the FIT: no second parse
        outdir.mkdir(parents=True, exist_ok=True)
        for name, start, size in region.members:
            copy_region(Path(data_path(data)), start, start + size, outdir / _safe_name(name))


def _safe_name(name: str) -> str:
    # node names come from the image: keep them readable but never a path
    cleaned = re.sub(r"[^A-Za-z0-9._@,+-]", "_", name)[:128]
    return cleaned if cleaned.strip(".") else f"_{cleaned}"


class UbiHandler(NativeHandler):
    """UBI: consecutive erase blocks starting with 'UBI#'; each volume is written as an image file.

    Native so that both backends yield the same ubi > ubifs chain (binwalk would
    flatten a UBI image straight into files).
    """

    name = "ubi"
    MAGIC = b"UBI#"

    def find(self, data: mmap.mmap) -> list[Region]:
        first = data.find(self.MAGIC)
        if first == -1:
            return []
        second = data.find(self.MAGIC, first + 64)
        peb = second - first if second != -1 else len(data) - first
        if peb <= 0 or peb & (peb - 1) or peb < 4096:
            return []
        end = first
        while end + 4 <= len(data) and data[end : end + 4] == self.MAGIC:
            end += peb
        return [Region(first, min(end, len(data)))]

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        from ubireader import settings
        from ubireader.ubi import ubi
        from ubireader.ubi_io import ubi_file

        settings.warn_only_block_read_errors = True
        outdir.mkdir(parents=True, exist_ok=True)
        path = data_path(data)
        second = data.find(self.MAGIC, region.start + 64)
        peb = second - region.start if second != -1 else region.end - region.start
        ufile = ubi_file(path, peb, region.start, region.end)
        try:
            image_obj = ubi(ufile)
            for image in image_obj.images:
                for name, volume in image.volumes.items():
                    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "volume"
                    with open(outdir / f"{safe}.ubifs", "wb") as out:
                        for block in volume.reader(image_obj):
                            out.write(block)
        finally:
            ufile.close()


class UbifsHandler(NativeHandler):
    """A UBIFS volume image: extracted with ubi_reader, keeping permission bits."""

    name = "ubifs"
    MAGIC = b"\x31\x18\x10\x06"

    def find(self, data: mmap.mmap) -> list[Region]:
        if data[:4] != self.MAGIC or len(data) < 90 or data[20] != 6:
            return []  # only a volume image that starts with its superblock node
        leb_size, leb_cnt = struct.unpack_from("<II", data, 36)
        end = min(len(data), leb_size * leb_cnt) if leb_size and leb_cnt else len(data)
        return [Region(0, end)]

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        from ubireader import settings
        from ubireader.ubi_io import ubi_file
        from ubireader.ubifs import ubifs
        from ubireader.ubifs.output import extract_files

        settings.warn_only_block_read_errors = True
        outdir.mkdir(parents=True, exist_ok=True)
        (leb_size,) = struct.unpack_from("<I", data, 36)
        ufile = ubi_file(data_path(data), leb_size, region.start, region.end)
        try:
            extract_files(ubifs(ufile), str(outdir), perms=True)
        finally:
            ufile.close()


class ExtHandler(NativeHandler):
    """ext2/3/4 at the start of a file, dumped with e2fsprogs' debugfs (modes restored afterwards).

    Native because binwalk's ext path (mount, then 7z) needs privileges or loses
    empty folders and links; with this both backends read ext the same way.
    """

    name = "ext"

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 0x468 or data[0x438:0x43A] != b"\x53\xef":
            return []
        (blocks,) = struct.unpack_from("<I", data, 0x404)
        (log_block,) = struct.unpack_from("<I", data, 0x418)
        if log_block > 6:
            return []
        size = blocks * (1024 << log_block)
        if not 0 < size <= len(data):
            return []
        return [Region(0, size)]

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        import shutil
        import subprocess

        debugfs = shutil.which("debugfs")
        if debugfs is None:
            raise RuntimeError("debugfs is missing: apt-get install e2fsprogs")
        outdir.mkdir(parents=True, exist_ok=True)
        path = data_path(data)
        if region.end != len(data):
            carved = outdir.parent / f"{region.start:08x}.ext.carved"
            copy_region(Path(path), region.start, region.end, carved)
            path = str(carved)
        try:
            subprocess.run(
                [debugfs, "-R", f"rdump / {outdir}", path], capture_output=True, check=False, timeout=600
            )
        finally:
            if path != data_path(data):
                Path(path).unlink(missing_ok=True)


class Yaffs2Handler(NativeHandler):
    """A YAFFS2 image (NAND dump with spare areas) at the start of a file, via ``unyaffs``.

    Neither backend knows YAFFS2.  Recognised by its first object header: the
    object type (file, symlink, directory, hardlink, special), parent object 1
    (the root), the unused 0xFFFF checksum field and a printable name.
    """

    name = "yaffs2"
    TYPES = range(1, 6)

    def find(self, data: mmap.mmap) -> list[Region]:
        if len(data) < 2048 + 16:
            return []
        for endian, order in (("little", "<"), ("big", ">")):
            obj_type, parent = struct.unpack_from(order + "II", data, 0)
            if obj_type not in self.TYPES or parent != 1 or data[8:10] != b"\xff\xff":
                continue
            name = bytes(data[10:266]).split(b"\0", 1)[0]
            if not name or not all(0x20 <= c < 0x7F for c in name):
                continue
            return [Region(0, len(data), details={"endianness": endian})]
        return []

    def extract(self, data: mmap.mmap, region: Region, outdir: Path) -> None:
        import shutil
        import subprocess

        tool = shutil.which("unyaffs")
        if tool is None:
            raise RuntimeError("unyaffs is missing: apt-get install unyaffs")
        outdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [tool, data_path(data), str(outdir)], capture_output=True, check=False, timeout=600
        )
        if proc.returncode != 0:
            raise RuntimeError(f"unyaffs failed: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")


_PATHS: dict[int, str] = {}


def data_path(data: mmap.mmap) -> str:
    """The file an mmap was opened from (handlers that need a path, not bytes)."""
    return _PATHS[id(data)]


def register_path(data: mmap.mmap, path: str) -> None:
    _PATHS[id(data)] = path


# one module per handler under cra_fw/unpack/handlers/; they import NativeHandler and Region
# from here, so they are imported after them
from cra_fw.unpack.handlers.cramfs import CramfsHandler  # noqa: E402
from cra_fw.unpack.handlers.dlob import DlobHandler  # noqa: E402
from cra_fw.unpack.handlers.esp_flash import EspFlashHandler  # noqa: E402
from cra_fw.unpack.handlers.esp_image import EspImageHandler  # noqa: E402
from cra_fw.unpack.handlers.esp_nvs import EspNvsHandler  # noqa: E402
from cra_fw.unpack.handlers.esp_partition_table import EspPartitionTableHandler  # noqa: E402
from cra_fw.unpack.handlers.intel_hex import IntelHexHandler  # noqa: E402
from cra_fw.unpack.handlers.jffs2 import Jffs2Handler  # noqa: E402
from cra_fw.unpack.handlers.littlefs import LittleFsHandler  # noqa: E402
from cra_fw.unpack.handlers.mcuboot import McubootHandler  # noqa: E402
from cra_fw.unpack.handlers.nordic_dfu import NordicDfuHandler  # noqa: E402
from cra_fw.unpack.handlers.quantenna import QuantennaUbootHandler  # noqa: E402
from cra_fw.unpack.handlers.seama import SeamaHandler  # noqa: E402
from cra_fw.unpack.handlers.squashfs import SquashfsHandler  # noqa: E402
from cra_fw.unpack.handlers.srec import SrecHandler  # noqa: E402
from cra_fw.unpack.handlers.tplink import TplinkHandler  # noqa: E402
from cra_fw.unpack.handlers.uf2 import Uf2Handler  # noqa: E402
from cra_fw.unpack.handlers.vxworks import VxWorksHandler  # noqa: E402

NATIVE_HANDLERS: tuple[NativeHandler, ...] = (
    EspFlashHandler(),
    EspImageHandler(),
    EspPartitionTableHandler(),
    EspNvsHandler(),
    LittleFsHandler(),
    IntelHexHandler(),
    SrecHandler(),
    Uf2Handler(),
    NordicDfuHandler(),
    McubootHandler(),
    QuantennaUbootHandler(),
    TplinkHandler(),
    DlobHandler(),
    SeamaHandler(),
    UImageHandler(),
    FitHandler(),
    UbiHandler(),
    UbifsHandler(),
    ExtHandler(),
    Yaffs2Handler(),
    SquashfsHandler(),
    CramfsHandler(),
    Jffs2Handler(),
    VxWorksHandler(),
)
