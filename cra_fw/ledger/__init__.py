"""The CRA ledger: products, releases, support periods, vulnerability cases and reporting clocks.

Kept in the shared SQLite database (namespace ``ledger``); see docs/ledger.md.
"""

from cra_fw.ledger.schema import NAMESPACE, VERSION
from cra_fw.ledger.store import open_ledger

__all__ = ["NAMESPACE", "VERSION", "open_ledger"]
