"""`monitor`'s matching in the batch's Dask pool: components in chunks, matched where the feeds are.

Each task opens the feed database itself (read-only use; a local file on every
worker) and returns the matches; the client keeps the one writer role and
stores them, exactly as when matching in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cra_fw.records import Component

CHUNK = 2000  # components per task: the Matcher's caches pay off within a chunk


def match_chunk(db_path: str, components: list[Component]) -> list[list]:
    """On a worker: the open matches of each component against the feeds in ``db_path``."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.ledger import feeds

    db = open_feed_db(Path(db_path))
    try:
        return list(feeds.match_each(components, db))
    finally:
        db.conn.close()


def pool_matcher(
    db_path: Path, scheduler: str | None, workers: int | None
) -> Callable[[list[Component]], list[list]]:
    """A ``match_many`` for :func:`cra_fw.ledger.monitor.run_monitor` that uses a Dask pool."""

    def match_many(components: list[Component]) -> list[list]:
        from cra_fw.batch.engine import ClusterOptions, Events, open_client

        if not components:
            return []
        chunks = [components[i : i + CHUNK] for i in range(0, len(components), CHUNK)]
        with open_client(ClusterOptions(scheduler, workers), Events()) as client:
            futures = client.map(
                match_chunk, [str(Path(db_path).resolve())] * len(chunks), chunks, pure=False
            )
            results = client.gather(futures)
        return [matches for chunk in results for matches in chunk]

    return match_many
