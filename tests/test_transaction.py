"""Several commands as one transaction: all of them commit, or none does."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from onething import OnethingError, WrongDepartment, store

REPORT = {"reporter": "王女士", "collaborators": []}


def count_cases(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(store.cases)).scalar_one()


def test_commands_in_one_transaction_commit_together(engine, data_file):
    with engine.transaction():
        case = engine.start(str(data_file("minimal.bpmn")), REPORT)
        task = case.open_tasks[0]
        engine.complete(task.id, actor="赵敏", department="县住建局", data={"resolved": False})
    assert engine.case(case.number).version == 2
    assert [e.action for e in engine.history(case.number)] == ["start", "complete"]


def test_a_failure_rolls_every_command_back(engine, data_file):
    with pytest.raises(OnethingError, match="stop"):
        with engine.transaction():
            case = engine.start(str(data_file("minimal.bpmn")), REPORT)
            engine.complete(case.open_tasks[0].id, actor="赵敏", department="县住建局",
                            data={"resolved": False})
            raise OnethingError("stop")
    assert count_cases(engine) == 0


def test_a_caught_inner_failure_leaves_no_partial_write(engine, data_file):
    with engine.transaction():
        case = engine.start(str(data_file("minimal.bpmn")), REPORT)
        with pytest.raises(WrongDepartment):
            engine.complete(case.open_tasks[0].id, actor="x", department="县公安局")
    assert engine.case(case.number).version == 1
    assert [e.action for e in engine.history(case.number)] == ["start"]
