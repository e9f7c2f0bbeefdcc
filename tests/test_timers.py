"""Time tiers from the data file, working days, and timers on the virtual clock (no sleeping)."""

from __future__ import annotations

import datetime as _dt

import pytest

from onething import UnknownTimeTier
from onething.timelimits import deadline_for, find_tier

from timeutil import actions, advance, do, to_handling

H = _dt.timedelta(hours=1)
D = _dt.timedelta(days=1)
CST = _dt.timezone(_dt.timedelta(hours=8))


def test_tiers_are_found_by_code_label_or_alias():
    assert find_tier("一般7天").code == "general"
    assert find_tier("紧急").duration == "PT2H"
    assert find_tier("complex").working_days is True
    with pytest.raises(UnknownTimeTier, match="特急"):
        find_tier("特急")


def test_working_day_tiers_skip_weekends_and_holidays_and_count_makeup_days():
    start = _dt.datetime(2026, 9, 30, 9, 0, tzinfo=CST)   # Wednesday before 国庆
    d = deadline_for("复杂15个工作日", start, stage="handle")
    due = _dt.datetime.fromisoformat(d["due"]).astimezone(CST)
    # 9-30 → 10-1..7 holidays; 10-10 (Saturday) is worked; 15 working days end on 10-27.
    assert due == _dt.datetime(2026, 10, 27, 9, 0, tzinfo=CST)
    warn = _dt.datetime.fromisoformat(d["warn"]).astimezone(CST)
    assert warn == due - 3 * D


def test_calendar_day_tiers_are_plain_durations():
    start = _dt.datetime(2026, 3, 6, 9, 0, tzinfo=CST)     # a Friday
    d = deadline_for("一般7天", start)
    assert _dt.datetime.fromisoformat(d["due"]) == start + 7 * D
    assert _dt.datetime.fromisoformat(d["warn"]) == start + 5 * D


def test_warning_then_supervision_fire_at_their_times(engine):
    number = to_handling(engine, "一般7天")
    case = engine.case(number)
    assert case.data["deadline"]["tier"] == "general"
    assert case.due_at == engine.clock.now() + 5 * D        # the warning comes first
    advance(engine, 5 * D - H)
    assert engine.tick() == []
    advance(engine, 2 * H)
    assert engine.tick() == [number]
    assert len(actions(engine, number, "warning")) == 1
    assert not actions(engine, number, "supervision")
    advance(engine, 2 * D)
    assert engine.tick() == [number]
    [sup] = actions(engine, number, "supervision")
    assert sup.detail["stage"] == "handle"
    assert [t.element for t in engine.tasks(case=number) if t.role == "leader"] == ["supervise"]


def test_emergency_tier_supervises_after_two_hours(engine):
    number = to_handling(engine, "紧急2小时")
    advance(engine, 2 * H + _dt.timedelta(seconds=1))
    engine.tick()
    assert len(actions(engine, number, "warning")) == 1
    assert len(actions(engine, number, "supervision")) == 1


def test_after_downtime_every_overdue_timer_fires_exactly_once(engine):
    numbers = [to_handling(engine) for _ in range(3)]
    advance(engine, 30 * D)                                 # the worker was down a month
    assert sorted(engine.tick()) == sorted(numbers)
    assert engine.tick() == []
    advance(engine, D)
    assert engine.tick() == []
    for number in numbers:
        assert len(actions(engine, number, "warning")) == 1
        assert len(actions(engine, number, "supervision")) == 1
        assert len([t for t in engine.tasks(case=number) if t.element == "supervise"]) == 1
    assert engine.next_due() is None


def test_a_case_closed_in_time_is_never_warned(engine):
    number = to_handling(engine)
    advance(engine, D)
    do(engine, number, "handle", handling="已疏通")
    assert engine.case(number).due_at is None               # the timers left with the stage
    advance(engine, 10 * D)
    assert engine.tick() == []
    assert not actions(engine, number, "warning")
