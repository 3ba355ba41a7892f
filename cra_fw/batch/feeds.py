"""The feed database on a cluster: one consistent snapshot, one local copy per node, never written.

SQLite must not be shared over network file systems (its locks and WAL shared
memory do not work there), and a `cra-fw db update` during a long batch must not
change the matches half-way.  So with ``--scheduler`` the client takes a
snapshot of the feed database into ``OUTDIR/.batch/feeds/`` (SQLite's backup
API: consistent while others write), and the first task on each node copies it
to the node's local temporary folder; every scan on that node reads that copy.
The client alone writes the ledger, to the original database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

SNAPSHOTS = Path(".batch") / "feeds"


def take_snapshot(db: Path, outdir: Path) -> Path:
    """A consistent copy of ``db`` under OUTDIR (named by its content id)."""
    st = db.stat()
    ident = hashlib.sha256(f"{db.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = outdir / SNAPSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"feeds-{ident}.db"
    if target.exists():
        return target
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy around
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(tmp, target)
    return target


def drop_snapshots(outdir: Path) -> None:
    shutil.rmtree(outdir / SNAPSHOTS, ignore_errors=True)


def local_copy(snapshot: Path) -> Path:
    """This node's copy of ``snapshot`` (made once per node, whatever the number of workers)."""
    folder = Path(tempfile.gettempdir()) / f"cra-fw-feeds-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / snapshot.name
    if target.exists():
        return target
    with open(folder / f"{snapshot.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker on this node may be copying it now
        try:
            if not target.exists():
                tmp = folder / f".{snapshot.name}.{os.getpid()}.tmp"
                shutil.copyfile(snapshot, tmp)
                os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)
    return target
