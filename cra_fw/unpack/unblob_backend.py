"""The unblob backend: unblob's handlers find and extract chunks of one file.

unblob extracts squashfs with ``sasquatch``, which Debian does not ship.
Standard little-endian squashfs 4.0 goes to squashfs-tools' ``unsquashfs``
instead, with cra-fw's own reader as the fallback; every other squashfs
flavour (2.x, 3.x, big-endian, vendor magics and codecs) is cra-fw's own
native handler's (:mod:`cra_fw.unpack.handlers.squashfs`).
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.formats import load_formats
from cra_fw.unpack.interface import Backend, BackendResult, Carve


@cache
def _handlers() -> tuple:
    from unblob.extractors import Command
    from unblob.handlers import BUILTIN_HANDLERS
    from unblob.handlers.filesystem.squashfs import SquashFSv4LEHandler
    from unblob.models import Extractor

    from cra_fw.unpack.squashfs_reader import extract_squashfs

    class SquashfsToolsExtractor(Extractor):
        """unsquashfs from squashfs-tools; cra-fw's own reader when unsquashfs refuses."""

        def get_dependencies(self) -> list[str]:
            return ["unsquashfs"]

        def extract(self, inpath: Path, outdir: Path):
            if not shutil.which("unsquashfs"):
                extract_squashfs(inpath, outdir)
                return None
            # -no-xattrs: xattrs are not needed for analysis and fail unprivileged.
            # -da/-fr: unsquashfs's queues default to 256 MB each and fill up with large
            # files; 32 MB keeps its memory flat in image size at no measurable cost
            cmd = Command(
                "unsquashfs",
                "-no-progress",
                "-no-xattrs",
                "-da",
                "32",
                "-fr",
                "32",
                "-f",
                "-d",
                "{outdir}",
                "{inpath}",
            )
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
        EXTRACTOR = SquashfsToolsExtractor()

        def calculate_chunk(self, file, start_offset: int):
            # LZMA images are cra-fw's own handler's: vendors write LZMA headers unsquashfs rejects
            file.seek(start_offset + 20)
            if file.read(2) == b"\x02\x00":
                return None
            file.seek(start_offset)
            return super().calculate_chunk(file, start_offset)

    out = []
    for handler in BUILTIN_HANDLERS:
        if handler.NAME == "squashfs_v4_le":
            out.append(SquashFSv4Handler)
        elif handler.NAME.startswith("squashfs"):
            continue  # cra-fw's own squashfs handler reads every other flavour
        else:
            out.append(handler)
    return tuple(out)


class UnblobBackend(Backend):
    name = "unblob"

    def available(self) -> str | None:
        try:
            import unblob  # noqa: F401
        except ImportError:
            return "unblob is not installed: pip install unblob"
        if not shutil.which("unsquashfs"):
            return "unsquashfs is missing: apt-get install squashfs-tools"
        return None

    def prepare(self) -> None:
        """Import unblob and build its handler table once, before forking children."""
        import logging

        import structlog

        # unblob logs every pattern match at debug level; cra-fw reports what matters itself
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
        _handlers()
        from unblob.finder import build_hyperscan_database

        build_hyperscan_database(_handlers())

    def carve(self, path: Path, outdir: Path) -> BackendResult:
        from unblob.file_utils import File
        from unblob.finder import search_chunks
        from unblob.models import ExtractError, Task, TaskResult
        from unblob.processing import remove_inner_chunks

        table = load_formats()
        size = path.stat().st_size
        result = TaskResult(task=Task(blob_id="", path=path, depth=0))
        carves: list[Carve] = []
        with File.from_path(path) as file:
            chunks = remove_inner_chunks(search_chunks(file, size, _handlers(), result))
            chunks.sort(key=lambda c: c.start_offset)
            for chunk in chunks:
                spec = table.from_unblob(chunk.handler.NAME)
                fmt = spec.name if spec else chunk.handler.NAME
                container = spec.container if spec else True
                start, end = chunk.start_offset, chunk.end_offset
                if not container:
                    carves.append(Carve(fmt, start, end, chunk.handler.NAME, container=False))
                    continue
                target = outdir / f"{start:08x}.{fmt}"
                whole = start == 0 and end == size
                if whole:
                    inpath = path
                else:
                    inpath = outdir / f"{start:08x}.{fmt}.carved"
                    copy_region(path, start, end, inpath)
                error = ""
                try:
                    res = chunk.extract(inpath, target)
                    failed = [
                        r
                        for r in (res.reports if res else [])
                        if type(r).__name__.endswith("Report") and "Fail" in type(r).__name__
                    ]
                    if failed:
                        error = _report_text(failed[0])
                except ExtractError as exc:
                    error = _report_text(exc.reports[0]) if exc.reports else "extraction failed"
                except Exception as exc:  # noqa: BLE001 - one bad chunk must not stop the others
                    error = f"{type(exc).__name__}: {exc}"[:500]
                finally:
                    if not whole:
                        inpath.unlink(missing_ok=True)
                carves.append(
                    Carve(
                        fmt,
                        start,
                        end,
                        chunk.handler.NAME,
                        extracted=str(target) if target.exists() else "",
                        error=error,
                    )
                )
        return BackendResult(carves=tuple(carves))


def _report_text(report: object) -> str:
    stderr = getattr(report, "stderr", b"") or b""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    cmd = getattr(report, "command", "")
    text = f"{cmd}: {stderr.strip()}" if cmd else str(report)
    return text[:500]
