"""Article 14 clocks: exact due times, the fix starting the final clock, ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cra_fw.errors import LedgerError
from cra_fw.ledger.clocks import (
    ClockState,
    Stage,
    clocks,
    current_stage,
    due_times,
    format_utc,
    human_delta,
    now_utc,
    parse_utc,
    urgency_key,
)

AWARE = datetime(2026, 11, 26, 14, 30, 15, tzinfo=UTC)


def test_due_times_from_awareness_are_exact():
    dues = due_times(AWARE, None)
    assert dues[Stage.EARLY_WARNING] == datetime(2026, 11, 27, 14, 30, 15, tzinfo=UTC)
    assert dues[Stage.NOTIFICATION] == datetime(2026, 11, 29, 14, 30, 15, tzinfo=UTC)
    assert dues[Stage.FINAL] is None  # no fix yet: the final-report clock has not started


def test_fix_starts_the_14_day_final_clock():
    fix = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    dues = due_times(AWARE, fix)
    assert dues[Stage.FINAL] == datetime(2026, 12, 17, 8, 0, tzinfo=UTC)
    # the fix does not move the other two deadlines
    assert dues[Stage.EARLY_WARNING] == AWARE + timedelta(hours=24)


def test_clock_states_and_remaining():
    now = AWARE + timedelta(hours=30)
    early, notif, final = clocks(AWARE, None)
    assert early.state(now) == ClockState.OVERDUE
    assert early.remaining(now) == timedelta(hours=-6)
    assert notif.state(now) == ClockState.RUNNING
    assert notif.remaining(now) == timedelta(hours=42)
    assert final.state(now) == ClockState.NOT_STARTED
    assert final.remaining(now) is None


def test_filing_stops_a_clock_and_late_filing_is_marked():
    filed = {Stage.EARLY_WARNING: AWARE + timedelta(hours=25), Stage.NOTIFICATION: AWARE + timedelta(hours=2)}
    early, notif, _final = clocks(AWARE, None, filed)
    now = AWARE + timedelta(days=10)
    assert early.state(now) == ClockState.FILED and early.filed_late
    assert notif.state(now) == ClockState.FILED and not notif.filed_late
    assert early.remaining(now) is None


def test_current_stage_moves_through_the_reports():
    assert current_stage(clocks(AWARE, None)) == "early-warning"
    one = {Stage.EARLY_WARNING: AWARE}
    assert current_stage(clocks(AWARE, None, one)) == "notification"
    two = one | {Stage.NOTIFICATION: AWARE}
    assert current_stage(clocks(AWARE, None, two)) == "awaiting-fix"
    fix = AWARE + timedelta(days=3)
    assert current_stage(clocks(AWARE, fix, two)) == "final"
    assert current_stage(clocks(AWARE, fix, two | {Stage.FINAL: fix})) == "closed"


def test_overdue_cases_sort_first():
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    overdue_a = clocks(now - timedelta(hours=30), None)  # early warning 6 h late
    overdue_b = clocks(now - timedelta(hours=80), None)  # early warning 56 h late: most overdue
    running = clocks(now - timedelta(hours=1), None)  # 23 h left
    later = clocks(now, None)  # 24 h left
    all_filed = clocks(
        now - timedelta(days=40), now - timedelta(days=30), {s: now - timedelta(days=1) for s in Stage}
    )
    keys = {
        "a": urgency_key(overdue_a, now, 1),
        "b": urgency_key(overdue_b, now, 2),
        "run": urgency_key(running, now, 3),
        "later": urgency_key(later, now, 4),
        "done": urgency_key(all_filed, now, 5),
    }
    assert sorted(keys, key=keys.get) == ["b", "a", "run", "later", "done"]


def test_times_are_stored_in_utc_and_shown_in_local_zone(monkeypatch):
    stamp = parse_utc("2026-11-26T15:30:15+01:00")
    assert format_utc(stamp) == "2026-11-26T14:30:15Z"
    assert parse_utc("2026-11-26") == datetime(2026, 11, 26, tzinfo=UTC)
    monkeypatch.setenv("CRA_FW_NOW", "2026-01-02T03:04:05Z")
    assert now_utc() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(LedgerError, match="not an ISO time"):
        parse_utc("yesterday")


def test_human_delta():
    assert human_delta(timedelta(hours=23, minutes=5)) == "23h 05m"
    assert human_delta(timedelta(days=2, hours=3)) == "2d 03h 00m"
    assert human_delta(timedelta(hours=-6)) == "-6h 00m"
