"""report.json back into a typed :class:`~cra_fw.records.ScanReport`.

The batch client needs the records of a scan a worker wrote (ledger rows, the
gate, the portfolio) and of scans an earlier run finished (a resumed batch).
The reader follows the dataclasses' own type hints, so it keeps up with the
records as they change; a key the record does not declare is an error, except
the computed ones a record lists in ``__json_extra__``.  Lists the report does
not type yet stay plain mappings, which the shared readers (``gate``,
``report.annex1``) accept.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from cra_fw.errors import CraFwError
from cra_fw.records import ScanReport


class ReportLoadError(CraFwError):
    """report.json is missing, not JSON, or not the shape this version writes."""


@cache
def _stage_records() -> dict[str, type]:
    """The stage-owned records that cra_fw.records names only for type checkers."""
    from cra_fw.bundles.interface import BundleVerdict
    from cra_fw.checks.interface import ElfHardening, HardeningSummary, Service
    from cra_fw.vulns.records import VulnMatch

    return {
        "BundleVerdict": BundleVerdict,
        "ElfHardening": ElfHardening,
        "HardeningSummary": HardeningSummary,
        "Service": Service,
        "VulnMatch": VulnMatch,
    }


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, localns=_stage_records())


def _convert(tp: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, where)
        return value
    if origin in (list, tuple, set, frozenset):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return origin(items)
    if origin is dict:
        key_t, val_t = typing.get_args(tp) or (Any, Any)
        return {k: _convert(val_t, v, f"{where}.{k}") for k, v in value.items()}
    if tp in (list, tuple, dict, Any, object):
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_jsonable(cls: type, data: Any, where: str = "") -> Any:
    """Build record ``cls`` from what :func:`cra_fw.jsonout.to_jsonable` made of it."""
    if not isinstance(data, dict):
        raise ReportLoadError(f"{where or cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(getattr(cls, "__json_extra__", ()))
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in extra:
            continue
        spec = fields.get(key)
        if spec is None or not spec.init:
            raise ReportLoadError(f"{where or cls.__name__}: unknown key {key!r} for {cls.__name__}")
        kwargs[key] = _convert(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ReportLoadError(f"{where or cls.__name__}: {exc}") from exc


def load_report(path: Path) -> ScanReport:
    """Read ``OUTDIR/report.json`` into a ScanReport."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportLoadError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ReportLoadError(f"{path}: not JSON ({exc})") from exc
    report = from_jsonable(ScanReport, data)
    assert isinstance(report, ScanReport)
    return report
