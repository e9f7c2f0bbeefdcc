"""Test helpers: drive an appeal_12345 case to a stage on the virtual clock."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from onething import Engine

CENTRE = "县调度指挥中心"
LEAD = "县住建局"


def do(engine: Engine, number: str, element: str, **data: Any) -> Any:
    """Complete every open task `element` of the case with `data`; the last case view."""
    tasks = [t for t in engine.tasks(case=number) if t.element == element]
    assert tasks, (element, [t.element for t in engine.tasks(case=number)])
    view = None
    for t in tasks:
        view = engine.complete(t.id, actor="测试", department=t.department, data=data)
    return view


def to_handling(engine: Engine, tier: str = "一般7天", **start: Any) -> str:
    """An appeal case signed by the lead, so the handling stage's time limit runs."""
    case = engine.start("appeal_12345", {"reporter": "张秀英", "channel": "12345",
                                         "region": "罗雄街道", **start})
    do(engine, case.number, "dispatch", lead_department=LEAD, collaborators=[],
       time_limit=tier)
    do(engine, case.number, "sign", accepted=True)
    return case.number


def advance(engine: Engine, delta: _dt.timedelta) -> None:
    engine.clock.advance(delta)  # type: ignore[attr-defined]


def actions(engine: Engine, number: str, action: str) -> list[Any]:
    return [e for e in engine.history(number) if e.action == action]
