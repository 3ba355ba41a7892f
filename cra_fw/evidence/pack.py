"""OUTDIR/evidence.zip: the scan's outputs with a manifest of their hashes.

The manifest (``manifest.json``, the pack's first member) records the SHA-256
and size of every other member, the image's name, size and hashes, the tool
version, the scan's start and end, and the age of each vulnerability feed used.
Signing the pack (:mod:`cra_fw.evidence.sign`) covers the manifest and the
pack's bytes, so every member is bound to the exact image.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cra_fw import __version__, safejson
from cra_fw.db import default_path
from cra_fw.evidence.sign import PACK_MANIFEST, EvidenceError, file_digest
from cra_fw.feeddb import feed_status, open_feed_db
from cra_fw.jsonout import to_jsonable
from cra_fw.records import ScanReport

PACK_NAME = "evidence.zip"
MANIFEST_FORMAT = "cra-fw-evidence/1"
# The outputs a scan writes; whichever exist go into the pack, report.json must.
MEMBERS = (
    "report.json",
    "report.html",
    "sbom.cdx.json",
    "sbom.cdx.xml",
    "sbom.spdx.json",
    "vex.cdx.json",
    "findings.sarif",
)
REQUIRED = ("report.json",)


class PackError(EvidenceError):
    """The evidence pack cannot be written."""


def feed_ages_from_db(
    db_path: Path | None = None, now: dt.datetime | None = None
) -> dict[str, dict[str, Any]]:
    """Each imported feed's date, import time and age in days, from the feed database ({} if none)."""
    path = Path(db_path) if db_path else default_path()
    if not path.exists():
        return {}
    try:
        db = open_feed_db(path, readonly=True)
        try:
            statuses = feed_status(db)
        finally:
            db.conn.close()
    except Exception:  # noqa: BLE001 - a broken database must not stop the pack; the scan reported it
        return {}
    out: dict[str, dict[str, Any]] = {}
    for s in statuses:
        age = s.age_days(now)
        out[s.name] = {
            "feed_date": s.feed_date,
            "imported_at": s.imported_at,
            "records": s.records,
            "age_days": round(age, 2) if age is not None else None,
        }
    return out


def _image_from_report_json(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        data = safejson.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"{path} cannot be read as JSON ({exc}); run `cra-fw scan` again") from exc
    if not isinstance(data, dict) or not isinstance(data.get("image"), dict):
        raise PackError(f"{path} is not a cra-fw report.json; run `cra-fw scan` again")
    return (
        data["image"],
        data.get("tool") or {},
        {
            "started": data.get("started", ""),
            "finished": data.get("finished", ""),
            "schema_version": data.get("schema_version", ""),
        },
    )


def _scan_outputs(outdir: Path, report: ScanReport | None) -> list[str]:
    """The files the scan wrote, as report.json lists them, each still as the scan wrote it."""
    if report is not None:
        listed = [(o.name, o.sha256) for o in report.outputs]
    else:
        try:
            data = safejson.loads((outdir / "report.json").read_text(encoding="utf-8"))
            listed = [(str(o["name"]), str(o["sha256"])) for o in data.get("outputs", [])]
        except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
            raise PackError(
                f"{outdir / 'report.json'} does not list the scan's outputs ({exc}); scan again"
            ) from exc
    names = []
    for name, sha in listed:
        if "/" in name or name not in MEMBERS:
            raise PackError(f"report.json lists {name!r}, which is not an output of cra-fw scan; scan again")
        path = outdir / name
        if not path.is_file():
            raise PackError(f"{path} is missing: the pack holds exactly the files the scan wrote; scan again")
        if file_digest(path)[1] != sha:
            raise PackError(f"{path} changed after the scan wrote it; scan again")
        names.append(name)
    return names


def build_manifest(
    outdir: Path,
    members: Iterable[str],
    report: ScanReport | None = None,
    feed_ages: Mapping[str, Any] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    """The manifest for ``members`` (names relative to ``outdir``)."""
    outdir = Path(outdir)
    if report is not None:
        image = to_jsonable(report.image)
        tool = to_jsonable(report.tool)
        scan = {
            "started": report.started,
            "finished": report.finished,
            "schema_version": report.schema_version,
        }
    else:
        image, tool, scan = _image_from_report_json(outdir / "report.json")
    entries = []
    for name in members:
        size, digest = file_digest(outdir / name)
        entries.append({"path": name, "size": size, "sha256": digest})
    return {
        "format": MANIFEST_FORMAT,
        "created": created
        or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "tool": {
            "name": tool.get("name", "cra-fw"),
            "version": tool.get("version", __version__),
            "packed_by": f"cra-fw {__version__}",
        },
        "scan": scan,
        "image": {k: image.get(k) for k in ("name", "size", "sha256", "sha512", "md5")},
        "feeds": dict(feed_ages or {}),
        "members": entries,
    }


def _zip_time(stamp: str) -> tuple[int, int, int, int, int, int]:
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        when = dt.datetime(1980, 1, 1)
    when = max(when.replace(tzinfo=None), dt.datetime(1980, 1, 1))
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


def write_pack(
    outdir: Path,
    report: ScanReport | None = None,
    *,
    feed_ages: Mapping[str, Any] | None = None,
    extra: Iterable[Path] = (),
    out: Path | None = None,
    created: str | None = None,
) -> Path:
    """Write ``outdir/evidence.zip`` from exactly the outputs the scan wrote; return its path.

    The members are report.json and the files its ``outputs`` list names, each checked
    against the hash the scan recorded: a file left by an earlier scan, or changed
    since, never enters the pack.

    ``feed_ages`` maps feed name to its freshness (see :func:`feed_ages_from_db`);
    ``extra`` adds more files of ``outdir`` (e.g. a JUnit report).
    """
    outdir = Path(outdir)
    for name in REQUIRED:
        if not (outdir / name).is_file():
            raise PackError(f"{outdir / name} is missing: run `cra-fw scan IMAGE -o {outdir}` first")
    names = ["report.json", *_scan_outputs(outdir, report)]
    for path in extra:
        path = Path(path)
        try:
            rel = path.resolve().relative_to(outdir.resolve()).as_posix()
        except ValueError as exc:
            raise PackError(
                f"{path} is not inside {outdir}: only outputs of this scan go into the pack"
            ) from exc
        if not path.is_file():
            raise PackError(f"{path}: no such file to add to the pack")
        if rel not in names and rel != PACK_MANIFEST:
            names.append(rel)
    manifest = build_manifest(outdir, names, report, feed_ages, created)
    stamp = _zip_time(manifest["created"])
    expected = {m["path"]: m["sha256"] for m in manifest["members"]}
    target = Path(out) if out else outdir / PACK_NAME
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(PACK_MANIFEST, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in names:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            digest = hashlib.sha256()
            with open(outdir / name, "rb") as src, zf.open(info, "w") as dst:
                for block in iter(lambda s=src: s.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
            if digest.hexdigest() != expected[name]:
                tmp.unlink(missing_ok=True)
                raise PackError(f"{outdir / name} changed while the pack was written; write the pack again")
    os.replace(tmp, target)
    return target
