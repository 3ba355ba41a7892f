"""Squashfs that unsquashfs cannot read: versions 2.x/3.x, big-endian, vendor magics and codecs.

Standard little-endian 4.0 images with a compressor squashfs-tools knows are
left to the backend (unsquashfs is fast C); everything else is read by
cra-fw's own reader (:mod:`cra_fw.unpack.squashfs_reader`), which finds the
codec by decoding the first metadata block.  A 2.x/3.x image whose blocks
decode with no known codec is reported as unsupported (an unknown vendor
compressor); a 4.0 image that names a known compressor yet does not decode is
damaged, and fails.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cra_fw.errors import UnpackError
from cra_fw.unpack.native import NativeHandler, Region, mapped
from cra_fw.unpack.squashfs_reader import (
    V4_COMPRESSION,
    SquashfsImage,
    extract_image,
    find_superblocks,
    parse_superblock,
)
from cra_fw.unpack.treewriter import TreeWriter

# compressors Debian's unsquashfs reads in a standard little-endian 4.0 image (lzma is left out:
# vendors write LZMA with headers squashfs-tools rejects)
UNSQUASHFS_V4 = {1, 3, 4, 5, 6}


def codec_label(name: str) -> str:
    return "gzip" if name == "zlib" else name


class SquashfsHandler(NativeHandler):
    name = "squashfs"

    def find(self, data: mmap.mmap) -> list[Region]:
        out: list[Region] = []
        for sb in find_superblocks(data):
            if sb.magic == b"hsqs" and sb.major == 4 and not sb.big and sb.compression_id in UNSQUASHFS_V4:
                continue
            details = sb.details
            if sb.major == 1:
                error = "squashfs 1.x is recognised but cra-fw has no reader for it"
                out.append(
                    Region(sb.start, sb.start + sb.bytes_used, unsupported=True, error=error, details=details)
                )
                continue
            image = SquashfsImage(data, sb)
            try:
                image.identify_codec()
            except (UnpackError, struct.error) as exc:
                # a compressor the superblock names and cra-fw knows, yet nothing decodes: damage
                known = sb.major == 4 and sb.compression_id in V4_COMPRESSION
                end = sb.start + sb.bytes_used
                out.append(Region(sb.start, end, unsupported=not known, error=str(exc), details=details))
                continue
            if image.codec is not None:
                details["compression"] = codec_label(image.codec.name)
            out.append(Region(sb.start, sb.start + sb.bytes_used, details=details))
        return out

    def extract(self, path: Path, region: Region, outdir: Path) -> None:
        with mapped(path) as data:
            sb = parse_superblock(data, region.start, len(data))
            if sb is None or region.unsupported:
                return
            writer = TreeWriter(outdir)
            extract_image(data, sb, writer)
            writer.finish("squashfs")
