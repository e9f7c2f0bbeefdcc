"""The engine's commands on SQLite and PostgreSQL: start, work lists, claim, complete, audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from onething import (
    CaseNotFound,
    OnethingError,
    ProcessNotFound,
    TaskNotFound,
    TaskNotReady,
    WrongDepartment,
)
from onething import store

REPORT = {"reporter": "王女士", "channel": "12345", "region": "罗平县罗雄街道",
          "description": "小区路灯坏了一周", "collaborators": ["县供电局", "县财政局"]}


def start(engine, data_file, **extra):
    return engine.start(str(data_file("minimal.bpmn")), {**REPORT, **extra}, actor="李娜")


def test_start_returns_a_case_number_and_the_first_tasks(engine, data_file):
    case = start(engine, data_file)
    assert case.number.startswith("YJS")
    assert case.status == "open"
    assert case.data["reporter"] == "王女士"
    assert {t.department for t in case.open_tasks} == {"县财政局", "县供电局"}


def test_each_collaborator_instance_belongs_to_its_department(engine, data_file):
    case = start(engine, data_file)
    assert {t.department for t in engine.tasks("县供电局")} == {"县供电局"}
    assert len(engine.tasks("县供电局")) == 1
    assert engine.tasks("县住建局") == []
    assert {t.role for t in case.open_tasks} == {"collaborators"}


def test_a_role_lane_goes_to_the_department_bound_in_case_data(engine, data_file):
    case = start(engine, data_file, collaborators=[], lead_department="县水务局")
    assert [(t.element, t.department, t.role) for t in case.open_tasks] == [
        ("handle", "县水务局", "lead")]


def test_a_role_lane_falls_back_to_its_default(engine, data_file):
    case = start(engine, data_file, collaborators=[])
    assert [t.department for t in case.open_tasks] == ["县住建局"]


def test_completing_every_task_closes_the_case_and_replies(engine, data_file):
    case = start(engine, data_file)
    for task in case.open_tasks:
        engine.complete(task.id, actor="张工", department=task.department, data={"opinion": "同意"})
    handle = engine.tasks("县住建局")[0]
    case = engine.complete(handle.id, actor="赵敏", department="县住建局",
                           data={"resolved": True, "result": "已修复"})
    assert case.status == "closed"
    assert case.closed_at is not None
    assert case.open_tasks == []
    assert case.data["reply_result"]["sent_to"] == ["王女士"]
    [message] = engine.outbox(case=case.number)
    assert message["payload"]["message"] == "已办结：已修复"


def test_a_gateway_condition_routes_by_form_data(engine, data_file):
    case = start(engine, data_file, collaborators=[])
    handle = case.open_tasks[0]
    case = engine.complete(handle.id, actor="赵敏", department="县住建局", data={"resolved": False})
    assert [t.element for t in case.open_tasks] == ["handle"]
    assert case.open_tasks[0].id != handle.id


def test_the_audit_log_records_who_did_what_and_the_data(engine, data_file):
    case = start(engine, data_file, collaborators=[])
    task = case.open_tasks[0]
    engine.claim(task.id, actor="赵敏", department="县住建局")
    engine.complete(task.id, actor="赵敏", department="县住建局",
                    data={"resolved": True, "result": "已修复"})
    log = [(e.action, e.actor, e.department, e.element) for e in engine.history(case.number)]
    assert log[0] == ("start", "李娜", None, None)
    assert ("claim", "赵敏", "县住建局", "handle") in log
    assert ("complete", "赵敏", "县住建局", "handle") in log
    assert ("handler", "system", None, "reply") in log
    assert log[-1][0] == "closed"
    complete = next(e for e in engine.history(case.number) if e.action == "complete")
    assert complete.detail["data"] == {"resolved": True, "result": "已修复"}
    assert complete.detail["changed"] == ["resolved", "result"]


def test_a_task_of_another_department_is_refused(engine, data_file):
    case = start(engine, data_file)
    task = case.open_tasks[0]
    with pytest.raises(WrongDepartment) as err:
        engine.complete(task.id, actor="某人", department="县公安局")
    assert err.value.case == case.number and task.department in str(err.value)
    assert engine.case(case.number).version == case.version


def test_a_task_completed_twice_is_refused_the_second_time(engine, data_file):
    case = start(engine, data_file)
    task = case.open_tasks[0]
    engine.complete(task.id, actor="张工", department=task.department)
    with pytest.raises(TaskNotReady) as err:
        engine.complete(task.id, actor="张工", department=task.department)
    assert "done" in str(err.value)


def test_a_claimed_task_cannot_be_completed_by_a_colleague(engine, data_file):
    case = start(engine, data_file)
    task = case.open_tasks[0]
    engine.claim(task.id, actor="张工", department=task.department)
    with pytest.raises(TaskNotReady, match="claimed"):
        engine.complete(task.id, actor="李工", department=task.department)


def test_unknown_case_task_and_matter_are_clear_errors(engine, data_file):
    with pytest.raises(CaseNotFound, match="YJS000"):
        engine.case("YJS000")
    with pytest.raises(TaskNotFound):
        engine.complete("no-such-task", actor="x", department="y")
    with pytest.raises(ProcessNotFound, match="appeal_12345"):
        engine.start("no_such_matter", {})


def test_bad_form_data_is_refused_before_anything_is_written(engine, data_file):
    case = start(engine, data_file)
    task = case.open_tasks[0]
    with pytest.raises(OnethingError, match="__class__"):
        engine.complete(task.id, actor="x", department=task.department, data={"__class__": 1})
    assert engine.case(case.number).version == case.version


def test_a_process_version_is_stored_once_and_pinned_by_its_cases(engine, data_file, tmp_path):
    path = tmp_path / "minimal.bpmn"
    path.write_bytes(data_file("minimal.bpmn").read_bytes())
    first = engine.start(str(path), {**REPORT, "collaborators": []})
    again = engine.start(str(path), {**REPORT, "collaborators": []})
    assert first.process_version == again.process_version
    path.write_bytes(path.read_bytes().replace(b'name="\xe5\x8a\x9e\xe7\x90\x86"', b'name="Handle"'))
    edited = engine.start(str(path), {**REPORT, "collaborators": []})
    assert edited.process_version != first.process_version
    assert engine.case(first.number).process_version == first.process_version
    assert engine.case(first.number).open_tasks[0].name == "办理"
    assert edited.open_tasks[0].name == "Handle"
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.process_versions)).scalar() == 2


def test_the_stored_state_excludes_the_spec(engine, data_file):
    import json
    import zlib

    case = start(engine, data_file)
    with engine.db.connect() as conn:
        blob = conn.execute(sa.select(store.cases.c.state)
                            .where(store.cases.c.number == case.number)).scalar_one()
    state = json.loads(zlib.decompress(blob))
    assert "spec" not in state and "subprocess_specs" not in state
    assert state["tasks"]


def test_a_fresh_engine_continues_a_case_from_the_database(engine, data_file, db_url, clock):
    from onething import Engine

    case = start(engine, data_file, collaborators=[])
    other = Engine(db_url, clock=clock, load_entry_points=False)
    try:
        task = other.tasks("县住建局")[0]
        done = other.complete(task.id, actor="赵敏", department="县住建局",
                              data={"resolved": True, "result": "好"})
        assert done.status == "closed"
    finally:
        other.close()
    assert engine.case(case.number).status == "closed"


def test_timers_fire_on_the_virtual_clock(engine, data_file, clock):
    case = start(engine, data_file, collaborators=[])
    assert case.due_at is not None
    assert engine.tick() == []
    clock.advance("P5DT1M")
    assert engine.tick() == [case.number]
    assert engine.tick() == []
    actions = [e.action for e in engine.history(case.number)]
    assert actions.count("timer") + actions.count("warning") == 1
    assert engine.case(case.number).open_tasks[0].element == "handle"


def test_each_collaborators_answer_is_kept_under_its_department(engine, data_file):
    case = start(engine, data_file)
    for task in case.open_tasks:
        case = engine.complete(task.id, actor="张工", department=task.department,
                               data={"opinion": f"{task.department}同意"})
    assert case.data["contributions"] == {"县供电局": {"opinion": "县供电局同意"},
                                          "县财政局": {"opinion": "县财政局同意"}}


def test_a_timer_cancelled_with_its_task_is_not_audited_as_fired(engine, data_file, clock):
    case = start(engine, data_file, collaborators=[])
    task = case.open_tasks[0]
    engine.complete(task.id, actor="赵敏", department="县住建局",
                    data={"resolved": True, "result": "好"})
    assert "warning" not in [e.action for e in engine.history(case.number)]


def test_a_cancelled_case_has_no_open_tasks_and_keeps_its_reason(engine, data_file):
    case = start(engine, data_file)
    done = engine.cancel(case.number, reason="与YJS1重复，已并单", actor="李娜",
                         department="县调度指挥中心")
    assert done.status == "cancelled" and done.open_tasks == [] and done.due_at is None
    assert engine.tasks(case=case.number) == []
    assert engine.history(case.number)[-1].detail == {"reason": "与YJS1重复，已并单"}
    with pytest.raises(OnethingError, match="already finished"):
        engine.cancel(case.number, reason="again", actor="李娜")


def test_cancelling_needs_a_reason(engine, data_file):
    case = start(engine, data_file)
    with pytest.raises(OnethingError, match="reason"):
        engine.cancel(case.number, reason=" ", actor="李娜")


@pytest.mark.parametrize("actor", ["", "   ", "张" * 201])
def test_an_empty_or_overlong_actor_is_refused(engine, data_file, actor):
    with pytest.raises(OnethingError, match="actor"):
        engine.start(str(data_file("minimal.bpmn")), REPORT, actor=actor)


def test_a_department_name_too_long_to_store_is_refused_with_nothing_written(engine, data_file):
    with pytest.raises(OnethingError, match="not a usable department name"):
        start(engine, data_file, collaborators=["局" * 300])
    assert engine.cases() == []


def test_incidents_of_an_unknown_case_is_an_error(engine):
    with pytest.raises(CaseNotFound):
        engine.incidents(case="YJS000")


def test_tick_inside_a_transaction_is_refused(engine):
    with pytest.raises(OnethingError, match="transaction"):
        with engine.transaction():
            engine.tick()


def test_a_claim_on_another_open_task_shows_in_the_returned_case(engine, data_file):
    case = start(engine, data_file)
    first, second = case.open_tasks
    engine.claim(first.id, actor="张工", department=first.department)
    after = engine.complete(second.id, actor="李工", department=second.department)
    [still] = after.open_tasks
    assert (still.id, still.status, still.claimed_by) == (first.id, "claimed", "张工")


def test_a_claim_is_refused_with_the_reason(engine, data_file):
    case = start(engine, data_file)
    task = case.open_tasks[0]
    with pytest.raises(WrongDepartment):
        engine.claim(task.id, actor="某人", department="县公安局")
    mine = engine.claim(task.id, actor="张工", department=task.department)
    assert (mine.status, mine.claimed_by, mine.case) == ("claimed", "张工", case.number)
    assert engine.claim(task.id, actor="张工", department=task.department).claimed_by == "张工"
    with pytest.raises(TaskNotReady, match="by 张工"):
        engine.claim(task.id, actor="李工", department=task.department)
    engine.complete(task.id, actor="张工", department=task.department)
    with pytest.raises(TaskNotReady, match="done"):
        engine.claim(task.id, actor="张工", department=task.department)
    with pytest.raises(TaskNotFound):
        engine.claim("nope", actor="张工", department=task.department)
    claims = [e for e in engine.history(case.number) if e.action == "claim"]
    assert len(claims) == 2
