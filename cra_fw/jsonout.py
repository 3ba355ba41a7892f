"""Records to JSON-ready values, dropping workspace-only fields."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert records (dataclasses, enums, tuples, paths) into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for name in getattr(type(value), "__json_extra__", ()):  # computed properties worth keeping
            out[name] = to_jsonable(getattr(value, name))
        for f in dataclasses.fields(value):
            if f.metadata.get("internal") or f.name.startswith("_"):
                continue
            out[f.name] = to_jsonable(getattr(value, f.name))
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, sort_keys=False)
