"""Article 14 reporting clocks, computed from stored UTC timestamps.

For an actively exploited vulnerability, counted from when the manufacturer
became aware: early warning within 24 hours, notification within 72 hours;
the final report is due 14 days after a corrective or mitigating measure is
available.  Every function takes ``now`` so tests can fix the time.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cra_fw.errors import LedgerError

EARLY_WARNING_AFTER = timedelta(hours=24)
NOTIFICATION_AFTER = timedelta(hours=72)
FINAL_AFTER_FIX = timedelta(days=14)
NOW_ENV = "CRA_FW_NOW"


class Stage(enum.StrEnum):
    EARLY_WARNING = "early-warning"
    NOTIFICATION = "notification"
    FINAL = "final"


STAGES = (Stage.EARLY_WARNING, Stage.NOTIFICATION, Stage.FINAL)


class ClockState(enum.StrEnum):
    FILED = "filed"
    OVERDUE = "overdue"
    RUNNING = "running"
    NOT_STARTED = "not-started"  # final report: no fix available yet


@functools.lru_cache(maxsize=65536)
def parse_utc(text: str) -> datetime:
    """An ISO date or date-time (zone-less means UTC) as an aware UTC datetime."""
    # cached: a ledger's cases share few distinct times (one per monitor run or release)
    value = text.strip()
    if not value:
        raise LedgerError("empty time: give an ISO time like 2026-11-26T14:30Z")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LedgerError(f"{text!r} is not an ISO time; use e.g. 2026-11-26 or 2026-11-26T14:30Z") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def format_utc(stamp: datetime) -> str:
    """How times are stored: second precision, UTC, with a Z."""
    return stamp.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_local(stamp: datetime | None) -> str:
    """A time in the user's local zone (TZ), for display."""
    if stamp is None:
        return "-"
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def now_utc() -> datetime:
    """The current time, or ``$CRA_FW_NOW`` when set (reproducible runs and tests)."""
    fixed = os.environ.get(NOW_ENV)
    if fixed:
        return parse_utc(fixed)
    return datetime.now(UTC).replace(microsecond=0)


def human_delta(delta: timedelta) -> str:
    """'2d 03h 05m' (negative deltas get a minus sign)."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}d {hours:02d}h {minutes:02d}m"
    return f"{sign}{hours}h {minutes:02d}m"


@dataclass(frozen=True)
class Clock:
    """One report's deadline for one case."""

    stage: Stage
    due: datetime | None  # None: not started (final report before a fix exists)
    filed_at: datetime | None = None

    def state(self, now: datetime) -> ClockState:
        if self.filed_at is not None:
            return ClockState.FILED
        if self.due is None:
            return ClockState.NOT_STARTED
        return ClockState.OVERDUE if now > self.due else ClockState.RUNNING

    def remaining(self, now: datetime) -> timedelta | None:
        """Time left (negative when overdue); None when filed or not started."""
        if self.filed_at is not None or self.due is None:
            return None
        return self.due - now

    @property
    def filed_late(self) -> bool:
        return self.filed_at is not None and self.due is not None and self.filed_at > self.due


def due_times(aware_at: datetime, fix_available_at: datetime | None) -> dict[Stage, datetime | None]:
    """The three deadlines of an actively exploited vulnerability."""
    return {
        Stage.EARLY_WARNING: aware_at + EARLY_WARNING_AFTER,
        Stage.NOTIFICATION: aware_at + NOTIFICATION_AFTER,
        Stage.FINAL: fix_available_at + FINAL_AFTER_FIX if fix_available_at is not None else None,
    }


def clocks(
    aware_at: datetime, fix_available_at: datetime | None, filed: dict[Stage, datetime] | None = None
) -> tuple[Clock, ...]:
    """The clocks of one case, given its filings so far."""
    filed = filed or {}
    dues = due_times(aware_at, fix_available_at)
    return tuple(Clock(stage, dues[stage], filed.get(stage)) for stage in STAGES)


def current_stage(case_clocks: Iterable[Clock]) -> str:
    """The report to work on next: the first unfiled started clock; 'awaiting-fix' or 'closed' otherwise."""
    pending_final = False
    for clock in case_clocks:
        if clock.filed_at is not None:
            continue
        if clock.due is None:
            pending_final = True
            continue
        return str(clock.stage)
    return "awaiting-fix" if pending_final else "closed"


def next_due(case_clocks: Iterable[Clock]) -> datetime | None:
    """The earliest deadline not yet met (filed), or None."""
    dues = [c.due for c in case_clocks if c.filed_at is None and c.due is not None]
    return min(dues) if dues else None


def urgency_key(case_clocks: tuple[Clock, ...], now: datetime, case_id: int) -> tuple:
    """Sort key: overdue cases first (most overdue first), then by the next deadline, then id."""
    due = next_due(case_clocks)
    if due is None:
        return (2, datetime.max.replace(tzinfo=UTC), case_id)
    return (0 if due < now else 1, due, case_id)
