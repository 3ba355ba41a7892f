"""Content-hash cache of per-file signature results.

Key: (sha256 of the file, digest of the signature set, matcher version).  A file seen
in an earlier scan with the same signatures is not read or matched again.  SQLite
in the cache folder; only the parent process writes, workers never touch it.  A
broken or unwritable cache disables itself and the scan goes on without it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cra_fw.identify.records import Hit

CACHE_VERSION = "2"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS file_hits (sha256 TEXT NOT NULL, sigdigest TEXT NOT NULL, "
    "sha512 TEXT NOT NULL, hits TEXT NOT NULL, PRIMARY KEY (sha256, sigdigest))"
)


class HitCache:
    """content key (sha256@path) -> (sha512, hits) for one signature digest."""

    def __init__(self, folder: Path | None, sigdigest: str) -> None:
        self.digest = f"{CACHE_VERSION}:{sigdigest}"
        self.error = ""
        self._db: sqlite3.Connection | None = None
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(folder / "identify-cache.sqlite"), timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self.error = f"identify cache at {folder} unusable ({exc}); scanning without it"
            self._db = None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_many(self, hashes: list[str]) -> dict[str, tuple[str, list[Hit]]]:
        out: dict[str, tuple[str, list[Hit]]] = {}
        if self._db is None or not hashes:
            return out
        try:
            for i in range(0, len(hashes), 500):
                chunk = hashes[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT sha256, sha512, hits FROM file_hits WHERE sigdigest = ? AND sha256 IN ({marks})",
                    [self.digest, *chunk],
                )
                for sha256, sha512, hits in rows:
                    out[sha256] = (sha512, [Hit(**h) for h in json.loads(hits)])
        except (sqlite3.Error, ValueError, TypeError):
            return {}
        return out

    def put_many(self, items: list[tuple[str, str, list[Hit]]]) -> None:
        if self._db is None or not items:
            return
        rows = [
            (sha256, self.digest, sha512, json.dumps([h.__dict__ for h in hits]))
            for sha256, sha512, hits in items
            if sha256
        ]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO file_hits VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self.error = f"identify cache write failed ({exc})"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
