"""The unblob backend: unblob's handlers find and extract chunks of one file.

unblob extracts squashfs with ``sasquatch``, which Debian does not ship.
Standard little-endian squashfs 4.0 goes to squashfs-tools' ``unsquashfs``
instead, with cra-fw's own reader as the fallback; every other squashfs
flavour (2.x, 3.x, big-endian, vendor magics and codecs) is cra-fw's own
native handler's (:mod:`cra_fw.unpack.handlers.squashfs`).
"""

from __future__ import annotations

import shutil
from operator import attrgetter
from pathlib import Path

from cra_fw.regions import copy_region
from cra_fw.unpack.formats import load_formats
from cra_fw.unpack.interface import Backend, BackendResult, Carve
from cra_fw.unpack.unblob_handlers import unblob_handlers


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
        handlers = unblob_handlers()  # first: it keeps unblob.finder from importing every handler
        from unblob.finder import build_hyperscan_database

        build_hyperscan_database(handlers)

    def carve(self, path: Path, outdir: Path) -> BackendResult:
        handlers = unblob_handlers()
        from unblob.file_utils import File
        from unblob.finder import search_chunks
        from unblob.models import ExtractError, Task, TaskResult

        table = load_formats()
        size = path.stat().st_size
        result = TaskResult(task=Task(blob_id="", path=path, depth=0))
        carves: list[Carve] = []
        with File.from_path(path) as file:
            chunks = remove_inner_chunks(search_chunks(file, size, handlers, result))
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
                in_place = getattr(chunk.handler.EXTRACTOR, "extract_at", None)
                if not whole and in_place is not None and in_place(path, start, target):
                    # read where it lies: no copy of the region (200 MB of squashfs in a flash image)
                    carves.append(Carve(fmt, start, end, chunk.handler.NAME, extracted=str(target)))
                    continue
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


def remove_inner_chunks(chunks: list) -> list:
    """The chunks no other chunk contains, largest first (as unblob's own step of that name).

    Written here because ``unblob.processing`` imports its whole command-line tool.
    """
    outer: list = []
    for chunk in sorted(chunks, key=attrgetter("size"), reverse=True):
        if not any(o.contains(chunk) for o in outer):
            outer.append(chunk)
    return outer


def _report_text(report: object) -> str:
    stderr = getattr(report, "stderr", b"") or b""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    cmd = getattr(report, "command", "")
    text = f"{cmd}: {stderr.strip()}" if cmd else str(report)
    return text[:500]
