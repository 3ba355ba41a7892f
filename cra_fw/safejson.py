"""JSON from files cra-fw does not control (feeds, VEX, exports, packs, bundles).

``json.loads`` raises RecursionError on input nested a few thousand levels deep; here
that is a ValueError like any other malformed JSON, so every caller's "not valid JSON"
path handles it and nothing crashes.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads``; a document nested too deeply is a ValueError, never a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply to be read") from None
