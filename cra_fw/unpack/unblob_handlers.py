"""The unblob handlers cra-fw runs, imported one module at a time.

``import unblob.handlers`` imports every handler module unblob has, among them
its ELF handler, which imports lief (half a second and ~60 MiB before a scan
reads a byte).  cra-fw only asks the ELF handler where an ELF file ends; its
own :mod:`cra_fw.unpack.unblob_elf` answers that without lief.  So the
``unblob.handlers`` package is registered without running its ``__init__``
and the handler modules below are imported directly.

The table is unblob's ``BUILTIN_HANDLERS`` in unblob's order with two changes
(``tests/unpack/test_unblob_handlers.py`` holds it to that): ELF is cra-fw's
lief-free handler, and squashfs is 4.0 little-endian only, extracted by
squashfs-tools (every other flavour is cra-fw's native handler's).
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import types
from functools import cache
from pathlib import Path

# (module under unblob.handlers, class): unblob's BUILTIN_HANDLERS, in its order
UNBLOB_HANDLERS: tuple[tuple[str, str], ...] = (
    ("filesystem.cramfs", "CramFSHandler"),
    ("archive.dlink.deafbead", "DeafBeadHandler"),
    ("filesystem.extfs", "EXTHandler"),
    ("filesystem.fat", "FATHandler"),
    ("filesystem.jffs2", "JFFS2NewHandler"),
    ("filesystem.jffs2", "JFFS2OldHandler"),
    ("filesystem.minixfs", "MinixFSv1Handler"),
    ("filesystem.minixfs", "MinixFSv2Handler"),
    ("filesystem.minixfs", "MinixFSv3Handler"),
    ("filesystem.ntfs", "NTFSHandler"),
    ("filesystem.romfs", "RomFSFSHandler"),
    ("filesystem.squashfs", "SquashFSv4LEHandler"),  # replaced below
    ("filesystem.ubi", "UBIHandler"),
    ("filesystem.ubi", "UBIFSHandler"),
    ("filesystem.yaffs", "YAFFSHandler"),
    ("archive.moxa.frm", "MoxaFRMHandler"),
    ("archive.netgear.chk", "NetgearCHKHandler"),
    ("archive.netgear.trx", "NetgearTRXv1Handler"),
    ("archive.netgear.trx", "NetgearTRXv2Handler"),
    ("archive.dlink.encrpted_img", "EncrptedHandler"),
    ("archive.dlink.shrs", "SHRSHandler"),
    ("archive.dlink.alpha_encimg", "AlphaEncimgHandler"),
    ("archive.dlink.alpha_encimg", "AlphaEncimgV2Handler"),
    ("archive.dlink.fpkg", "FPKGHandler"),
    ("archive.xiaomi.hdr", "HDR1Handler"),
    ("archive.xiaomi.hdr", "HDR2Handler"),
    ("archive.qnap.qnap_nas", "QnapHandler"),
    ("archive.qnap.qnap_networking", "QnapNetworkingHandler"),
    ("archive.instar.bneg", "BNEGHandler"),
    ("archive.hp.bdl", "HPBDLHandler"),
    ("archive.instar.instar_hd", "InstarHDHandler"),
    ("archive.hp.ipkg", "HPIPKGHandler"),
    ("filesystem.android.sparse", "SparseHandler"),
    ("archive.ar", "ARHandler"),
    ("archive.arc", "ARCHandler"),
    ("archive.arj", "ARJHandler"),
    ("archive.cab", "CABHandler"),
    ("archive.msi", "MsiHandler"),
    ("archive.tar", "TarUstarHandler"),
    ("archive.tar", "TarUnixHandler"),
    ("archive.cpio", "PortableASCIIHandler"),
    ("archive.cpio", "PortableASCIIWithCRCHandler"),
    ("archive.cpio", "PortableOldASCIIHandler"),
    ("archive.cpio", "BinaryHandler"),
    ("archive.sevenzip", "SevenZipHandler"),
    ("archive.rar", "RarHandler"),
    ("archive.zip", "ZIPHandler"),
    ("archive.dmg", "DMGHandler"),
    ("filesystem.iso9660", "ISO9660FSHandler"),
    ("archive.stuffit", "StuffItSITHandler"),
    ("archive.stuffit", "StuffIt5Handler"),
    ("compression.bzip2", "BZip2Handler"),
    ("compression.compress", "UnixCompressHandler"),
    ("compression.gzip", "GZIPHandler"),
    ("compression.lzh", "LZHHandler"),
    ("compression.lzip", "LZipHandler"),
    ("compression.lzo", "LZOHandler"),
    ("compression.lzma", "LZMAHandler"),
    ("compression.lz4", "LegacyFrameHandler"),
    ("compression.lz4", "SkippableFrameHandler"),
    ("compression.lz4", "DefaultFrameHandler"),
    ("compression.xz", "XZHandler"),
    ("compression.zstd", "ZSTDHandler"),
    ("executable.elf", "ELF32Handler"),  # cra-fw's, below
    ("executable.elf", "ELF64Handler"),  # cra-fw's, below
    ("compression.zlib", "ZlibHandler"),
    ("archive.engeniustech.engenius", "EngeniusHandler"),
    ("archive.autel.ecc", "AutelECCHandler"),
    ("compression.uzip", "UZIPHandler"),
    ("filesystem.android.erofs", "EROFSHandler"),
    ("archive.partclone", "PartcloneHandler"),
    ("executable.xalz", "XALZHandler"),
    ("compression.qnx_deflate", "QNXDeflateHandler"),
    ("filesystem.ufs", "UFS1Handler"),
    ("filesystem.ufs", "UFS2Handler"),
    ("filesystem.ufs", "SolarisHandler"),
    ("filesystem.btrfs_stream", "BTRFSStreamHandler"),
    ("archive.tesla.sbfh", "SBFHHandler"),
    ("archive.airoha", "AirohaHandler"),
)


# -no-xattrs: xattrs are not needed for analysis and fail unprivileged.
# -da/-fr: unsquashfs's queues default to 256 MB each and fill up with large files;
# 32 MB keeps its memory flat in image size at no measurable cost
UNSQUASHFS_OPTIONS = ("-no-progress", "-no-xattrs", "-da", "32", "-fr", "32", "-f")


def _handlers_package() -> None:
    """Register ``unblob.handlers`` without running its ``__init__`` (which imports them all).

    Its submodules import as usual, and so does ``unblob.finder`` (which takes the
    ``Handlers`` type from it); ``unblob.processing`` and unblob's CLI, which want
    ``BUILTIN_HANDLERS``, are not used by cra-fw.
    """
    if "unblob.handlers" in sys.modules:
        return
    from unblob import models

    spec = importlib.util.find_spec("unblob.handlers")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("unblob.handlers not found")
    package = types.ModuleType("unblob.handlers")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__package__ = "unblob.handlers"
    package.__spec__ = spec
    package.Handlers = models.Handlers  # type: ignore[attr-defined]
    package.DirectoryHandlers = models.DirectoryHandlers  # type: ignore[attr-defined]
    sys.modules["unblob.handlers"] = package
    import unblob

    unblob.handlers = package  # type: ignore[attr-defined]


def _share_struct_parsers() -> None:
    """One dissect.cstruct parser per C definition text, whoever asks for it.

    Several unblob handlers (cpio above all) build a new ``StructParser`` for every
    candidate offset, and each one parses its C definitions again on first use: in
    200 MB of random data that is thousands of parses of the same text (seconds of
    CPU).  The parsed definitions are never modified, so one per text is enough.
    """
    from dissect.cstruct import cstruct
    from unblob import file_utils

    if getattr(file_utils.StructParser, "_cra_fw_shared", False):
        return
    parsed: dict[tuple[str, str], object] = {}

    def shared(definitions: str, endian: str) -> object:
        key = (definitions, endian)
        parser = parsed.get(key)
        if parser is None:
            parser = cstruct(endian=endian)
            parser.load(definitions)
            parsed[key] = parser
        return parser

    file_utils.StructParser.cparser_le = property(lambda self: shared(self._definitions, "<"))  # type: ignore[method-assign,assignment]
    file_utils.StructParser.cparser_be = property(lambda self: shared(self._definitions, ">"))  # type: ignore[method-assign,assignment]
    file_utils.StructParser._cra_fw_shared = True  # type: ignore[attr-defined]


def _quiet_structlog() -> None:
    """structlog, which unblob logs through, silenced and without rich.

    unblob logs every pattern match at debug level; cra-fw reports what matters itself.
    structlog imports rich (0.1-0.2 s) for pretty tracebacks when it is installed; with
    everything below CRITICAL dropped it never formats one, so rich is kept out.
    """
    import logging

    if "structlog" not in sys.modules and "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]  # structlog then does without it
        try:
            import structlog
        finally:
            del sys.modules["rich"]
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


@cache
def unblob_handlers() -> tuple:
    """The handler classes cra-fw runs, in unblob's order (imported on first call)."""
    _quiet_structlog()
    _handlers_package()
    _share_struct_parsers()
    from cra_fw.unpack.unblob_elf import ELF32Handler, ELF64Handler

    own = {"ELF32Handler": ELF32Handler, "ELF64Handler": ELF64Handler, "SquashFSv4LEHandler": _squashfs()}
    out = []
    for module, name in UNBLOB_HANDLERS:
        if name in own:
            out.append(own[name])
        else:
            out.append(getattr(importlib.import_module(f"unblob.handlers.{module}"), name))
    return tuple(out)


def _squashfs() -> type:
    from unblob.extractors import Command
    from unblob.handlers.filesystem.squashfs import SquashFSv4LEHandler
    from unblob.models import Extractor

    from cra_fw.unpack.squashfs_reader import extract_squashfs

    class SquashfsToolsExtractor(Extractor):
        """unsquashfs from squashfs-tools; cra-fw's own reader when unsquashfs refuses."""

        def get_dependencies(self) -> list[str]:
            return ["unsquashfs"]

        def extract_at(self, path: Path, offset: int, outdir: Path) -> bool:
            """unsquashfs on the file system at ``offset`` of ``path``, without carving it out.

            False (and nothing left behind) when that fails: the region is then carved and
            extracted the usual way, with its error report and cra-fw's own reader after.
            """
            if not shutil.which("unsquashfs"):
                return False
            cmd = ["unsquashfs", *UNSQUASHFS_OPTIONS, "-o", str(offset), "-d", str(outdir), str(path)]
            proc = subprocess.run(cmd, capture_output=True, check=False)
            if proc.returncode != 0:
                shutil.rmtree(outdir, ignore_errors=True)
                return False
            return True

        def extract(self, inpath: Path, outdir: Path):  # noqa: ANN201 - unblob's ExtractResult | None
            if not shutil.which("unsquashfs"):
                extract_squashfs(inpath, outdir)
                return None
            cmd = Command("unsquashfs", *UNSQUASHFS_OPTIONS, "-d", "{outdir}", "{inpath}")
            try:
                return cmd.extract(inpath, outdir)
            except Exception as first:
                # unsquashfs refused (vendor compressor, damage): try cra-fw's own reader,
                # keeping whatever unsquashfs already wrote when that fails too
                try:
                    extract_squashfs(inpath, outdir)
                except Exception:  # noqa: BLE001
                    raise first from None
                return None

    class SquashFSv4Handler(SquashFSv4LEHandler):
        # unblob types it as its sasquatch extractor; any Extractor does
        EXTRACTOR = SquashfsToolsExtractor()  # type: ignore[assignment]

        def calculate_chunk(self, file, start_offset: int):  # noqa: ANN001, ANN201 - unblob's types
            # LZMA images are cra-fw's own handler's: vendors write LZMA headers unsquashfs rejects
            file.seek(start_offset + 20)
            if file.read(2) == b"\x02\x00":
                return None
            file.seek(start_offset)
            return super().calculate_chunk(file, start_offset)

    return SquashFSv4Handler
