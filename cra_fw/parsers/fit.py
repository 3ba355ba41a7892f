"""U-Boot FIT images: where each image's data lies (embedded or external)."""

from __future__ import annotations

from cra_fw.parsers import ParseError
from cra_fw.parsers.fdt import Fdt, Node


def image_span(fdt: Fdt, node: Node, file_size: int) -> tuple[int, int]:
    """(absolute file offset, size) of an image node's data: embedded ``data``, or external
    data at ``data-position`` (from the FIT's start) or ``data-offset`` (after the tree)."""
    data = node.prop("data")
    if data is not None:
        return data.offset, data.size
    size_p = node.prop("data-size")
    size = size_p.as_u32() if size_p is not None else None
    pos = node.prop("data-position")
    off = node.prop("data-offset")
    if size is None or (pos is None and off is None):
        raise ParseError(f"image {node.name} has no data")
    if pos is not None and pos.as_u32() is not None:
        start = fdt.base + (pos.as_u32() or 0)
    else:
        start = fdt.base + ((fdt.totalsize + 3) & ~3) + (off.as_u32() or 0 if off is not None else 0)
    if start + size > file_size:
        raise ParseError(f"image {node.name}: data lies beyond the end of the file")
    return start, size
