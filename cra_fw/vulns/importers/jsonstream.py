"""Read one array of a large top-level JSON object item by item.

NVD feed files hold hundreds of megabytes in one ``vulnerabilities`` array;
reading them item by item keeps memory bounded by the largest single item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from cra_fw.errors import FeedError

_WS = " \t\r\n"
MAX_ITEM_CHARS = 256 * 1024 * 1024  # one array item; real NVD items are well under 1 MB


class _Reader:
    def __init__(self, fh: IO[str], chunk: int = 1 << 20) -> None:
        self.fh = fh
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        pending = len(self.buf) - self.pos
        if pending > MAX_ITEM_CHARS:
            raise FeedError(
                f"one JSON item is larger than {MAX_ITEM_CHARS} characters; the file is not a usable feed"
            )
        want = max(self.chunk, pending)  # grow for items larger than a chunk
        data = self.fh.read(want)
        if not data:
            self.eof = True
            return
        self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self._fill()

    def expect(self, ch: str) -> None:
        got = self.peek()
        if got != ch:
            raise FeedError(f"malformed JSON: expected {ch!r}, found {got or 'end of file'!r}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise FeedError(f"malformed JSON: {exc.msg} near character {exc.pos}") from None
                self._fill()
                continue
            if end >= len(self.buf) and not self.eof and not isinstance(obj, (dict, list, str)):
                self._fill()  # a number may continue in the next chunk
                continue
            self.pos = end
            return obj


def iter_array(
    fh: IO[str], key: str, meta: dict[str, Any] | None = None, chunk: int = 1 << 20
) -> Iterator[Any]:
    """Yield the items of ``obj[key]`` for the top-level object in ``fh``.

    Scalar members seen before (and after) the array are stored in ``meta``.
    """
    reader = _Reader(fh, chunk)
    reader.expect("{")
    if reader.peek() == "}":
        return
    while True:
        name = reader.value()
        if not isinstance(name, str):
            raise FeedError("malformed JSON: object key is not a string")
        reader.expect(":")
        if name == key and reader.peek() == "[":
            reader.expect("[")
            if reader.peek() == "]":
                reader.pos += 1
            else:
                while True:
                    yield reader.value()
                    nxt = reader.peek()
                    reader.pos += 1
                    if nxt == "]":
                        break
                    if nxt != ",":
                        raise FeedError(f"malformed JSON: expected ',' or ']' in {key}, found {nxt!r}")
        else:
            value = reader.value()
            if meta is not None and not isinstance(value, (dict, list)):
                meta[name] = value
        nxt = reader.peek()
        reader.pos += 1
        if nxt == "}":
            return
        if nxt != ",":
            raise FeedError(f"malformed JSON: expected ',' or '}}' at top level, found {nxt!r}")
