"""SQL functions the ledger views call, bound to the rules cra-fw already has.

The views are SQL (Datasette canned queries and dashboard charts), but the rules
they show are written once, in Python: the Article 14 clocks
(:mod:`cra_fw.ledger.clocks` through the ledger's :class:`Case` record), support
periods (:mod:`cra_fw.ledger.support`), the release gate (:mod:`cra_fw.gate`) and
version order (:mod:`cra_fw.versions`).  :func:`register` adds these thin
adapters to every connection Datasette opens to the ledger, so the web view and
the CLI cannot drift apart.  Every function takes "now" from
:func:`cra_fw.ledger.clocks.now_utc` (``$CRA_FW_NOW`` fixes it, as for the CLI).
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cra_fw.gate import finding_trips, level_trips, parse_fail_on, parse_fail_on_vuln
from cra_fw.ledger.clocks import ClockState, Stage, format_utc, human_delta, next_due, now_utc, urgency_key
from cra_fw.ledger.records import Case, Filing, SupportPeriod
from cra_fw.ledger.support import months_left
from cra_fw.records import Finding, Severity
from cra_fw.versions import compare

# a case's overall state, from its clocks: the first that applies
OVERDUE, RUNNING = str(ClockState.OVERDUE), str(ClockState.RUNNING)


@dataclass(frozen=True)
class GatePolicy:
    """The release gate the portfolio applies to each product's latest release (as ``scan`` does)."""

    fail_on: Severity | None
    fail_on_vuln: tuple[str, ...]

    @classmethod
    def parse(cls, fail_on: str | None, fail_on_vuln: str | None) -> GatePolicy:
        return cls(parse_fail_on(fail_on), parse_fail_on_vuln(fail_on_vuln))

    @property
    def text(self) -> str:
        parts = []
        if self.fail_on:
            parts.append(f"--fail-on {self.fail_on.value}")
        if self.fail_on_vuln:
            parts.append(f"--fail-on-vuln {','.join(self.fail_on_vuln)}")
        return " ".join(parts) or "no gate"


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 1)


@functools.lru_cache(maxsize=4096)
def _case_clocks(
    status: str, exploited: int, aware_at: str, fix_at: str, filed_json: str, now_text: str
) -> str:
    # cached on every input including now: a large ledger's cases share few distinct times
    now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
    filed = json.loads(filed_json or "{}")
    case = Case(
        id=0,
        product_id=0,
        product="",
        advisory_id="",
        aware_at=aware_at,
        actively_exploited=bool(exploited),
        status=status,
        created="",
        fix_available_at=fix_at or "",
        filings=tuple(Filing(0, Stage(stage), at) for stage, at in sorted(filed.items()) if at),
    )
    clocks = case.clocks if status == "open" else ()
    states = [str(c.state(now)) for c in clocks]
    due = next_due(clocks)
    out: dict[str, object] = {
        "stage": case.stage,
        "state": OVERDUE if OVERDUE in states else RUNNING if RUNNING in states else case.stage,
        "urgency": urgency_key(clocks, now, 0)[0],
        "next_due": format_utc(due) if due else None,
        "hours_left": _hours((due - now).total_seconds()) if due else None,
        "time_left": human_delta(due - now) if due else None,
    }
    for clock in case.clocks:
        left = clock.remaining(now)
        out[str(clock.stage)] = {
            "due": format_utc(clock.due) if clock.due else None,
            "state": str(clock.state(now)),
            "hours_left": _hours(left.total_seconds()) if left is not None else None,
            "filed_at": format_utc(clock.filed_at) if clock.filed_at else None,
            "late": clock.filed_late,
        }
    return json.dumps(out)


def case_clocks(status: str, exploited: int, aware_at: str, fix_at: str, filed_json: str) -> str:
    """JSON: the case's stage, overall state, urgency (0 overdue, 1 running, 2 nothing due),
    next deadline and hours left, and per stage its due time, state, hours left and filing."""
    return _case_clocks(status or "open", int(exploited or 0), aware_at, fix_at or "", filed_json, _now())


def _now() -> str:
    return format_utc(now_utc())


def support_months(start_month: str | None, end_month: str | None) -> int | None:
    if not start_month or not end_month:
        return None
    return SupportPeriod(0, start_month, end_month).months


def support_months_left(end_month: str | None) -> int | None:
    return months_left(end_month, now_utc()) if end_month else None


_CONSTRAINT = re.compile(r"(>=|<=|==|!=|>|<|=)?\s*([^\s,<>=!]+)")


@functools.lru_cache(maxsize=256)
def _constraints(spec: str) -> tuple[tuple[str, str], ...]:
    """'>=1.2, <1.3.1' -> (('>=', '1.2'), ('<', '1.3.1')); a bare version means '='."""
    return tuple((op or "=", bound) for op, bound in _CONSTRAINT.findall(spec))


_OPS: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def version_in(version: str | None, spec: str | None, purl: str | None = "") -> int:
    """1 when ``version`` meets every constraint of ``spec`` (empty: any version).

    Debian order for ``pkg:deb`` components, the generic firmware order otherwise.
    """
    if not spec or not spec.strip():
        return 1
    if not version:
        return 0
    scheme = "debian" if (purl or "").startswith("pkg:deb/") else "generic"
    return int(all(_OPS[op](compare(version, bound, scheme)) for op, bound in _constraints(spec)))


def _gate_functions(policy: GatePolicy) -> dict[str, Callable]:
    @functools.lru_cache(maxsize=64)
    def finding_hits(severity: str | None) -> int:
        try:
            sev = Severity.parse(severity or "")
        except ValueError:
            return 0
        return int(finding_trips(Finding("", "", sev, "", ()), policy.fail_on))

    @functools.lru_cache(maxsize=64)
    def vuln_hits(severity: str | None, kev: int | None) -> int:
        try:
            sev: Severity | None = Severity.parse(severity or "")
        except ValueError:
            sev = None  # unscored
        return int(level_trips(sev, bool(kev), policy.fail_on_vuln))

    def verdict(vuln_hit_count: int, finding_hit_count: int, assessed: int, failed_stages: int) -> str:
        """The gate's outcome, in the words of `cra-fw scan`'s gate summary."""
        if failed_stages:
            return "incomplete"
        if (vuln_hit_count or 0) + (finding_hit_count or 0):
            return "fail"
        if policy.fail_on_vuln and not assessed:
            return "fail: not assessed"
        return "pass" if policy.fail_on or policy.fail_on_vuln else "no gate"

    return {"cra_finding_trips": finding_hits, "cra_vuln_trips": vuln_hits, "cra_gate": verdict}


def register(conn: sqlite3.Connection, policy: GatePolicy) -> None:
    """Add the cra_* functions to one connection."""
    conn.create_function("cra_now", 0, _now)
    conn.create_function("cra_case_clocks", 5, case_clocks)
    conn.create_function("cra_support_months", 2, support_months, deterministic=True)
    conn.create_function("cra_months_left", 1, support_months_left)
    conn.create_function("cra_version_in", 3, version_in, deterministic=True)
    gate = _gate_functions(policy)
    conn.create_function("cra_finding_trips", 1, gate["cra_finding_trips"], deterministic=True)
    conn.create_function("cra_vuln_trips", 2, gate["cra_vuln_trips"], deterministic=True)
    conn.create_function("cra_gate", 4, gate["cra_gate"], deterministic=True)
