"""Inputs of a batch: image files, folders (recursively) and manifests; their content addresses.

A manifest is CSV (header row) or JSON (a list of objects, or ``{"images": [...]}``)
with the columns ``path`` (required; relative to the manifest), ``product``,
``version``, ``manufacturer``, ``release_date`` (``date`` and ``released`` are
accepted too) and optionally ``sha256``.  Hashes are cached per
(path, size, mtime, inode) in ``OUTDIR/.batch/hashes.json`` so a rerun does not
read every image again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from cra_fw.batch.records import BatchItem
from cra_fw.errors import InputError

MANIFEST_SUFFIXES = (".csv", ".json")
_COLUMNS = {
    "path": "path",
    "file": "path",
    "image": "path",
    "product": "product",
    "version": "version",
    "manufacturer": "manufacturer",
    "release_date": "released",
    "date": "released",
    "released": "released",
    "sha256": "sha256",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")
# folders that are never firmware inputs (our own outputs, VCS metadata)
_SKIP_DIRS = {".git", ".batch", ".partial", "__pycache__"}


def is_manifest(path: Path) -> bool:
    """A .csv or .json file whose first bytes look like a manifest, not firmware."""
    if path.suffix.lower() not in MANIFEST_SUFFIXES or not path.is_file():
        return False
    try:
        head = path.read_bytes()[:4096].decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix.lower() == ".json":
        return head.lstrip()[:1] in ("[", "{")
    first = head.splitlines()[0].lower() if head else ""
    return any(col.strip() in ("path", "file", "image") for col in first.split(","))


def read_manifest(path: Path) -> list[BatchItem]:
    """The items a CSV or JSON manifest lists (paths relative to the manifest's folder)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from exc
    rows: list[dict[str, object]]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: not JSON ({exc})") from exc
        if isinstance(data, dict):
            data = data.get("images", data.get("releases"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f'{path}: expected a list of objects (or {{"images": [...]}})')
        rows = data
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    items: list[BatchItem] = []
    for number, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        fields: dict[str, str] = {}
        for key, value in row.items():
            name = _COLUMNS.get(str(key or "").strip().lower())
            if name and value is not None:
                fields[name] = str(value).strip()
        where = f"{path}:{number}"
        if not fields.get("path"):
            raise InputError(f"{where}: no path")
        if bool(fields.get("product")) != bool(fields.get("version")):
            raise InputError(f"{where}: give both product and version, or neither")
        sha = fields.get("sha256", "").lower()
        if sha and not _SHA256.fullmatch(sha):
            raise InputError(f"{where}: sha256 {sha!r} is not 64 hex digits")
        image = Path(fields["path"])
        if not image.is_absolute():
            image = path.parent / image
        fields["path"] = str(image)
        items.append(BatchItem(**fields))  # type: ignore[arg-type]
    return items


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            candidate = Path(root) / name
            if candidate.is_file() and not candidate.is_symlink():
                yield candidate


def collect(inputs: Iterable[Path], exclude: Path | None = None) -> list[BatchItem]:
    """Items from files, folders (recursively, in name order) and manifests, in the order given."""
    items: list[BatchItem] = []
    skip = exclude.resolve() if exclude else None
    for given in inputs:
        path = Path(given)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            for found in _walk(path):
                if skip is not None and found.resolve().is_relative_to(skip):
                    continue
                items.append(BatchItem(path=str(found)))
        elif is_manifest(path):
            items.extend(read_manifest(path))
        else:
            items.append(BatchItem(path=str(path)))
    return items


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class HashCache:
    """sha256 by (path, size, mtime, inode), kept between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                self.entries = loaded
        except (OSError, ValueError):
            pass

    @staticmethod
    def _key(path: Path) -> tuple[str, list]:
        st = path.stat()
        return str(path.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]

    def get(self, path: Path) -> tuple[str, int] | None:
        name, stamp = self._key(path)
        entry = self.entries.get(name)
        if entry and entry[:3] == stamp:
            return entry[3], stamp[0]
        return None

    def put(self, path: Path, sha: str) -> None:
        name, stamp = self._key(path)
        self.entries[name] = [*stamp, sha]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries))
        os.replace(tmp, self.path)


def hash_items(
    items: list[BatchItem],
    cache: HashCache,
    threads: int = 4,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[BatchItem], list[tuple[BatchItem, str]]]:
    """Fill in sha256 and size; items that cannot be read come back with the reason."""

    def one(item: BatchItem) -> tuple[BatchItem, str]:
        path = Path(item.path)
        try:
            if not path.is_file():
                return item, "not a regular file" if path.exists() else "no such file"
            if item.sha256:  # the manifest's word; the scan's own hash checks it
                return replace(item, size=path.stat().st_size), ""
            cached = cache.get(path)
            sha, size = cached if cached else sha256_file(path)
            if not cached:
                cache.put(path, sha)
            return replace(item, sha256=sha, size=size), ""
        except OSError as exc:
            return item, f"cannot read: {exc.strerror or exc}"

    good: list[BatchItem] = []
    bad: list[tuple[BatchItem, str]] = []
    with ThreadPoolExecutor(max(1, threads)) as pool:  # hashlib releases the GIL
        for done, (item, error) in enumerate(pool.map(one, items), start=1):
            if error:
                bad.append((item, error))
            else:
                good.append(item)
            if progress:
                progress(done)
    cache.save()
    return good, bad
