"""One supervision per case and stage, audited extensions, and every reporter asked."""

from __future__ import annotations

import datetime as _dt

import pytest

from onething import ExtensionError
from onething import timelimits as tl

from timeutil import CENTRE, LEAD, actions, advance, do, to_handling

D = _dt.timedelta(days=1)


def test_supervision_is_recorded_once_per_case_and_stage(engine):
    number = to_handling(engine)
    advance(engine, 8 * D)
    engine.tick()
    engine.tick()
    [row] = tl.supervisions(engine, case=number)
    assert row["stage"] == "handle" and row["leader"] == "分管副县长"
    # Recording again (a second worker, a replay) keeps exactly one.
    timers = engine.process("appeal_12345").timers
    with engine.transaction() as conn:
        again = tl.record_supervisions(conn, engine.case_id(number), timers,
                                       {"supervise_handle": row["due_at"].isoformat()},
                                       leader="分管副县长", now=engine.clock.now())
    assert again == 0
    assert len(tl.supervisions(engine, case=number)) == 1


def test_an_approved_extension_moves_the_deadline_and_is_audited(engine):
    number = to_handling(engine)
    due = engine.case(number).data["deadline"]["due"]
    ext = tl.request_extension(engine, number, stage="handle", duration="P3D",
                               reason="管道塌陷需要更换，材料采购3天", actor="赵敏", department=LEAD)
    assert ext["status"] == "requested"
    with pytest.raises(ExtensionError, match=CENTRE):
        tl.decide_extension(engine, ext["id"], approve=True, actor="赵敏", department=LEAD)
    done = tl.decide_extension(engine, ext["id"], approve=True, actor="李娜", department=CENTRE,
                               note="同意延期3天")
    assert done["status"] == "approved"
    new_due = _dt.datetime.fromisoformat(due) + 3 * D
    assert done["new_due"] == new_due
    assert engine.case(number).data["deadline"]["due"] == new_due.isoformat()
    with pytest.raises(ExtensionError, match="already approved"):
        tl.decide_extension(engine, ext["id"], approve=False, actor="李娜", department=CENTRE)
    # The old deadline passes quietly; the new one brings the one supervision.
    advance(engine, 8 * D)
    engine.tick()
    assert not actions(engine, number, "supervision")
    advance(engine, 3 * D)
    engine.tick()
    assert len(actions(engine, number, "supervision")) == 1
    assert [e.action for e in engine.history(number)
            if e.action.startswith("extension")] == ["extension_requested", "extension_approved"]


def test_a_rejected_extension_changes_nothing(engine):
    number = to_handling(engine)
    due = engine.case(number).due_at
    ext = tl.request_extension(engine, number, stage="handle", duration="P2D", reason="人手不足",
                               actor="赵敏", department=LEAD)
    tl.decide_extension(engine, ext["id"], approve=False, actor="李娜", department=CENTRE)
    assert engine.case(number).due_at == due
    assert actions(engine, number, "extension_rejected")
    with pytest.raises(ExtensionError, match="reason"):
        tl.request_extension(engine, number, stage="handle", duration="P2D", reason=" ",
                             actor="赵敏", department=LEAD)


def _to_evaluation(engine, number):
    do(engine, number, "handle", handling="已疏通")
    do(engine, number, "close", result="下水道已疏通")


def test_every_reporter_gets_the_reply_and_is_asked(engine):
    number = to_handling(engine, reporters=["李四", {"name": "王五", "phone": "139"}, "张秀英"])
    _to_evaluation(engine, number)
    replies = [m["payload"]["to"] for m in engine.outbox(case=number) if m["kind"] == "reply"]
    assert sorted(replies) == sorted(["张秀英", "李四", "王五"])
    asks = [t for t in engine.tasks(case=number) if t.element == "evaluate"]
    assert len(asks) == 3 and {t.department for t in asks} == {CENTRE}
    view = do(engine, number, "evaluate", satisfaction="基本满意")
    assert view.status == "closed"


def test_unsatisfied_reopens_once_then_goes_to_the_county_leader(engine):
    number = to_handling(engine, reporters=["李四"])
    _to_evaluation(engine, number)
    do(engine, number, "evaluate", satisfaction="不满意")
    assert [t.element for t in engine.tasks(case=number)] == ["rework"]
    do(engine, number, "rework", handling="重新疏通")
    do(engine, number, "close", result="已更换管道")
    assert len([m for m in engine.outbox(case=number) if m["kind"] == "reply"]) == 4
    asks = [t for t in engine.tasks(case=number) if t.element == "evaluate"]
    engine.complete(asks[0].id, actor="杨帆", department=CENTRE, data={"satisfaction": "满意"})
    engine.complete(asks[1].id, actor="杨帆", department=CENTRE, data={"satisfaction": "不满意"})
    [leader] = engine.tasks(case=number)
    assert leader.element == "leader_review" and leader.department == "分管副县长"
    view = engine.complete(leader.id, actor="副县长", department="分管副县长",
                           data={"leader_opinion": "约谈物业", "result": "物业整改"})
    assert view.status == "closed"
