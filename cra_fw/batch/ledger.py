"""The batch's one ledger writer, on the client: the rows `cra-fw release add` writes.

Workers never open the ledger: they return results, and this writer records a
release for each manifest row naming a product and a version, from the
report.json the worker left in ``OUTDIR/<sha256>/``.  A product the ledger does
not know yet is added with the manifest's manufacturer.
"""

from __future__ import annotations

from pathlib import Path

from cra_fw.batch.loadreport import ReportLoadError, load_report
from cra_fw.batch.records import BatchItem, ImageResult, ImageStatus
from cra_fw.errors import CraFwError, LedgerError

RECORDED = "recorded"
ALREADY = "already recorded"


class LedgerWriter:
    def __init__(self, db_path: Path | None) -> None:
        from cra_fw.ledger.store import open_ledger

        self.db = open_ledger(db_path)

    def record(self, result: ImageResult, item: BatchItem, outdir: Path) -> str:
        """Record ``item`` as a release; what happened, in a few words."""
        from cra_fw.ledger.clocks import now_utc, parse_utc
        from cra_fw.ledger.store import add_product, get_product, get_release, record_release

        if not item.release_label:
            return ""
        if result.status != ImageStatus.ANALYSED:
            return f"not recorded: image {result.status.value}"
        now = now_utc()
        try:
            try:
                get_product(self.db, item.product)
            except LedgerError:
                add_product(self.db, item.product, manufacturer=item.manufacturer, now=now)
            try:
                existing = get_release(self.db, item.product, item.version)
            except LedgerError:
                existing = None
            if existing is not None:
                if existing.image_sha256 == result.sha256:
                    return ALREADY
                return (
                    f"not recorded: {item.release_label} is already recorded with another image "
                    f"(sha256 {existing.image_sha256[:16]}...)"
                )
            report_json = Path(outdir).resolve() / result.sha256 / "report.json"
            report = load_report(report_json)
            record_release(
                self.db,
                item.product,
                item.version,
                report,
                now=now,
                released_at=parse_utc(item.released) if item.released else None,
                report_path=str(report_json),
            )
        except (CraFwError, ReportLoadError) as exc:
            return f"not recorded: {exc}"
        return RECORDED

    def support_end(self, product: str) -> str:
        """``YYYY-MM``, or "not declared"."""
        from cra_fw.ledger.store import get_product, get_support

        try:
            found = get_support(self.db, get_product(self.db, product).id)
        except LedgerError:
            return "not declared"
        return found.end_month if found else "not declared"

    def close(self) -> None:
        self.db.conn.close()
