"""FIRST EPSS scores (CSV, optionally gzip): ``#model_version:...,score_date:...`` then ``cve,epss,percentile``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO


def iter_epss(fh: IO[str], meta: dict[str, str]) -> Iterator[dict]:
    """Rows for the ``epss`` table; the score date from the comment line goes into ``meta``."""
    header: list[str] | None = None
    for row in csv.reader(fh):
        if not row:
            continue
        if row[0].startswith("#"):
            for item in ",".join(row).lstrip("#").split(","):
                key, _, value = item.partition(":")
                meta[key.strip()] = value.strip()
            continue
        if header is None:
            header = [h.strip().lower() for h in row]
            continue
        rec = dict(zip(header, row, strict=False))
        cve = rec.get("cve", "")
        if not cve.startswith("CVE-"):
            continue
        try:
            yield {
                "cve_id": cve,
                "score": float(rec.get("epss", "")),
                "percentile": float(rec.get("percentile", "") or 0),
                "date": meta.get("score_date", "")[:10],
            }
        except ValueError:
            continue
