"""Stage 1: unpack an image into a tree of layers, safely."""

from cra_fw.unpack.walker import UnpackResult, get_backend, unpack_image

__all__ = ["UnpackResult", "get_backend", "unpack_image"]
