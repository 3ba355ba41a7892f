"""Records to JSON-ready values, dropping workspace-only fields."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any


def json_fields(cls: type) -> tuple[str, ...]:
    """The keys a record class has in JSON: its ``__json_extra__`` properties, then every field
    that is not workspace-only (``metadata={"internal": True}`` or a leading underscore)."""
    extra = tuple(getattr(cls, "__json_extra__", ()))
    return extra + tuple(
        f.name for f in dataclasses.fields(cls) if not (f.metadata.get("internal") or f.name.startswith("_"))
    )


def to_jsonable(value: Any) -> Any:
    """Convert records (dataclasses, enums, tuples, paths) into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_jsonable(getattr(value, name)) for name in json_fields(type(value))}
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
