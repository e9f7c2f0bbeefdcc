"""Time tiers per stage: signing for a case (签收) and handling it again (重新办理) each run
under their own tier from time_tiers.toml, with a warning and one supervision per stage."""

from __future__ import annotations

import datetime as _dt

from onething import timelimits as tl
from onething.metrics import figures
from onething.timelimits import deadline_for

from timeutil import CENTRE, LEAD, actions, advance, do, to_handling

M = _dt.timedelta(minutes=1)
H = _dt.timedelta(hours=1)
D = _dt.timedelta(days=1)
CST = _dt.timezone(_dt.timedelta(hours=8))


def _at(value: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(value).astimezone(CST)


def _dispatched(engine, tier: str = "一般7天", **extra) -> str:
    case = engine.start("appeal_12345", {"reporter": "张秀英", "channel": "12345",
                                         "region": "罗雄街道"})
    do(engine, case.number, "dispatch", lead_department=LEAD, collaborators=[],
       time_limit=tier, **extra)
    return case.number


def _time_limits(engine, number: str) -> list[dict]:
    return [e.detail["note"] for e in actions(engine, number, "handler")
            if e.detail.get("operator") == "set_time_limit"]


def test_working_hour_tiers_count_office_hours_on_working_days():
    friday = _dt.datetime(2026, 3, 6, 17, 0, tzinfo=CST)
    d = deadline_for("签收", friday)
    assert d["tier"] == "sign" and d["working_hours"] is True
    # One office hour on Friday (17:00–18:00), one on Monday (09:00–10:00).
    assert _at(d["due"]) == _dt.datetime(2026, 3, 9, 10, 0, tzinfo=CST)
    assert _at(d["warn"]) == _dt.datetime(2026, 3, 9, 9, 30, tzinfo=CST)
    lunch = deadline_for("签收", _dt.datetime(2026, 3, 2, 11, 30, tzinfo=CST))
    assert _at(lunch["due"]) == _dt.datetime(2026, 3, 2, 16, 0, tzinfo=CST)
    holiday = deadline_for("签收", _dt.datetime(2026, 10, 1, 9, 0, tzinfo=CST))  # 国庆
    assert _at(holiday["due"]) == _dt.datetime(2026, 10, 8, 11, 0, tzinfo=CST)


def test_the_sign_stage_warns_then_supervises_under_its_own_tier(engine):
    number = _dispatched(engine)                     # Monday 09:00: due 11:00, warned 10:30
    limit = engine.case(number).data["sign_deadline"]
    assert limit["stage"] == "sign" and limit["tier"] == "sign"
    assert engine.case(number).due_at == engine.clock.now() + 90 * M
    advance(engine, 90 * M + M)
    assert engine.tick() == [number]
    [warning] = actions(engine, number, "warning")
    assert warning.detail["stage"] == "sign"
    advance(engine, 30 * M)
    assert engine.tick() == [number]
    [sup] = actions(engine, number, "supervision")
    assert sup.detail["stage"] == "sign"
    [row] = tl.supervisions(engine, case=number)
    assert row["stage"] == "sign" and row["leader"] == "分管副县长"
    assert [t.element for t in engine.tasks(case=number) if t.role == "leader"] == ["supervise"]
    # Signed late: the handling stage now gets its own, fresh limit.
    do(engine, number, "sign", accepted=True)
    deadline = engine.case(number).data["deadline"]
    assert deadline["stage"] == "handle" and _at(deadline["start"]) == engine.clock.now()
    assert [n["stage"] for n in _time_limits(engine, number)] == ["sign", "handle"]


def test_a_dispatcher_may_choose_the_sign_tier_and_each_dispatch_restarts_it(engine):
    number = _dispatched(engine, "紧急2小时", sign_time_limit="紧急2小时")
    assert engine.case(number).data["sign_deadline"]["tier"] == "emergency"
    advance(engine, H)
    do(engine, number, "sign", accepted=False, return_reason="不属本单位职责")
    do(engine, number, "dispatch", lead_department="县水务局", collaborators=[],
       time_limit="一般7天", sign_time_limit="")
    again = engine.case(number).data["sign_deadline"]
    assert again["tier"] == "sign" and _at(again["start"]) == engine.clock.now()
    notes = _time_limits(engine, number)
    assert [(n["stage"], n["tier"]) for n in notes] == [("sign", "emergency"), ("sign", "sign")]
    assert notes[1]["due"] == again["due"]


def test_an_extension_of_the_sign_stage_moves_its_timers(engine):
    number = _dispatched(engine)
    due = engine.case(number).data["sign_deadline"]["due"]
    ext = tl.request_extension(engine, number, stage="sign", duration="PT2H",
                               reason="负责人外出开会", actor="赵敏", department=LEAD)
    done = tl.decide_extension(engine, ext["id"], approve=True, actor="李娜", department=CENTRE)
    assert done["new_due"] == _dt.datetime.fromisoformat(due) + 2 * H
    advance(engine, 2 * H + M)
    engine.tick()
    assert not actions(engine, number, "supervision")


def _reopened(engine) -> str:
    number = to_handling(engine, reporters=["李四"])
    do(engine, number, "handle", handling="已疏通")
    do(engine, number, "close", result="下水道已疏通")
    advance(engine, D)
    do(engine, number, "evaluate", satisfaction="不满意")
    return number


def test_a_reopened_case_gets_a_fresh_audited_limit_for_the_rework(engine):
    number = _reopened(engine)                       # Tuesday 09:00
    assert [t.element for t in engine.tasks(case=number)] == ["rework"]
    limit = engine.case(number).data["rework_deadline"]
    assert limit["stage"] == "rework" and _at(limit["start"]) == engine.clock.now()
    # 5 working days from Tuesday 3 March: Tuesday 10 March, warned a day before.
    assert _at(limit["due"]) == _dt.datetime(2026, 3, 10, 9, 0, tzinfo=CST)
    assert engine.case(number).due_at == _dt.datetime.fromisoformat(limit["warn"])
    assert [n["stage"] for n in _time_limits(engine, number)] == ["sign", "handle", "rework"]
    advance(engine, 7 * D + M)
    assert engine.tick() == [number]
    assert [a.detail["stage"] for a in actions(engine, number, "warning")] == ["rework"]
    assert [a.detail["stage"] for a in actions(engine, number, "supervision")] == ["rework"]
    assert [r["stage"] for r in tl.supervisions(engine, case=number)] == ["rework"]


def test_rework_done_in_time_is_never_supervised(engine):
    number = _reopened(engine)
    advance(engine, 2 * D)
    do(engine, number, "rework", handling="重新疏通")
    assert engine.case(number).due_at is None
    advance(engine, 30 * D)
    assert engine.tick() == []
    assert not tl.supervisions(engine, case=number)


def test_a_supervision_fired_by_a_collaborators_completion_is_recorded_once(engine):
    """Not via tick: the collaborator's command on the other branch fires the overdue 督办."""
    number = to_handling(engine, collaborators=[])
    case = engine.start("appeal_12345", {"reporter": "王五", "channel": "12345",
                                         "region": "罗雄街道"})
    do(engine, case.number, "dispatch", lead_department=LEAD, collaborators=["县水务局"],
       time_limit="一般7天")
    do(engine, case.number, "sign", accepted=True)
    do(engine, number, "handle", handling="已疏通")  # the other case closes on time
    do(engine, number, "close", result="已疏通")
    do(engine, number, "evaluate", satisfaction="满意")
    advance(engine, 8 * D)                           # both timers overdue; no tick has run
    do(engine, case.number, "collaborate", opinion="已配合疏通")
    [sup] = actions(engine, case.number, "supervision")
    assert sup.actor == "system" and sup.detail["stage"] == "handle"
    assert len(actions(engine, case.number, "warning")) == 1
    [row] = tl.supervisions(engine, case=case.number)
    assert row["stage"] == "handle" and row["opened_at"] == engine.clock.now()
    assert engine.tick() == []                       # nothing left to fire, nothing doubled
    assert len(tl.supervisions(engine, case=case.number)) == 1
    do(engine, case.number, "supervise", supervision_opinion="限期办结")
    do(engine, case.number, "handle", handling="已疏通")
    do(engine, case.number, "close", result="已疏通")
    assert do(engine, case.number, "evaluate", satisfaction="满意").status == "closed"
    total = figures(engine.db)[-1]
    assert (total.closed, total.supervised, total.on_time) == (2, 1, 1)
