"""Readers for binary formats that more than one stage needs (unpack handlers, verifiers).

Each module reads one format from a bytes-like buffer (``bytes`` or ``mmap``) at an
offset, or a file (``fdt``, whose trees can be hundreds of MB), and returns
records, or raises :class:`ParseError`; it knows nothing of layers, findings
or verdicts (a verifier turns a ``ParseError`` into the ``malformed`` verdict).  Readers never
write, never follow offsets outside the buffer and bound every count they read.
Stages import these modules; the modules import nothing from any stage.
"""

from __future__ import annotations

from cra_fw.errors import CraFwError


class ParseError(CraFwError, ValueError):
    """The bytes are not (or no longer) a well-formed instance of the format."""


def cstr(raw: bytes) -> str:
    """A NUL-terminated, fixed-size text field as printable text ('' when it is not text)."""
    text = raw.split(b"\0", 1)[0]
    try:
        out = text.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return out if out.isprintable() else ""
