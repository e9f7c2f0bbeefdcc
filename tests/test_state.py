"""A case's stored state (onething.state): what loads is the workflow that was saved.

Equivalence is checked through SpiffWorkflow's own serializer: `_spiff_view` is the dict
SpiffWorkflow writes for a workflow (task ids, states, parents and children, data,
internal_data, last_state_change, triggered, workflow data, correlations, subprocesses,
bpmn_events), so two workflows with the same view are the same case.
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

import onething.engine as engine_module
from onething import Engine, VirtualClock
from onething import state
from onething.scenario import load_scenario, run_scenario
from onething.state import FORMAT, dump_state, load_state

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted(glob.glob(str(Path(__file__).parent.parent / "examples" / "*.toml")))


# ------------------------------------------------------------------------------ helpers
def dump_format1(workflow: BpmnWorkflow) -> bytes:
    """What onething wrote before format 2 (kept here to write format-1 states)."""
    state._REGISTRY._encoder_mode = True
    try:
        dct = state._SERIALIZER.to_dict(workflow)
    finally:
        state._REGISTRY._encoder_mode = False
    dct["format"] = 1
    raw = json.dumps(dct, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return zlib.compress(raw, 6)


def _decoded(blob: bytes) -> Any:
    return json.loads(zlib.decompress(blob))


def _spiff_view(workflow: BpmnWorkflow) -> dict[str, Any]:
    dct = json.loads(zlib.decompress(dump_format1(workflow)))
    dct.pop("format")
    dct["bpmn_events"] = state._REGISTRY.convert(workflow.bpmn_events)
    return dct


def _assert_same(loaded: BpmnWorkflow, original: BpmnWorkflow) -> None:
    assert _spiff_view(loaded) == _spiff_view(original)
    assert list(loaded.tasks) == list(original.tasks)
    assert loaded.task_tree.id == original.task_tree.id
    assert (loaded.last_task and loaded.last_task.id) == (original.last_task and original.last_task.id)
    assert sorted(loaded.event_manager.tasks) == sorted(original.event_manager.tasks)
    assert list(loaded.subprocesses) == list(original.subprocesses)
    for task_id, sub in original.subprocesses.items():
        assert list(loaded.subprocesses[task_id].tasks) == list(sub.tasks)
        assert loaded.subprocesses[task_id].depth == sub.depth
    for task in original.get_tasks():
        other = loaded.get_task_from_id(task.id)
        assert other.task_spec is task.task_spec
        assert other.data == task.data
        parent = other.parent
        if parent is not None:  # each task has its own lists and dicts, as in memory
            assert not [k for k, v in other.data.items()
                        if isinstance(v, (dict, list, set)) and parent.data.get(k) is v]


def _shape(workflow: Any) -> dict[str, Any]:
    """A workflow without what differs between two runs of it: task ids and timestamps."""
    at = {task_id: i for i, task_id in enumerate(workflow.tasks)}
    shape: dict[str, Any] = {
        "tasks": [(t.task_spec.name, t.state, t.triggered, at.get(t._parent),
                   [at.get(c) for c in t._children], t.data, t.internal_data)
                  for t in workflow.tasks.values()],
        "data": workflow.data, "completed": workflow.completed, "success": workflow.success,
        "last_task": at.get(workflow.last_task.id) if workflow.last_task else None,
    }
    if isinstance(workflow, BpmnWorkflow):
        shape["subprocesses"] = [(sub.spec.name, _shape(sub)) for sub in workflow.subprocesses.values()]
        shape["waiting"] = sorted(t.task_spec.name for t in workflow.event_manager.tasks.values())
    return shape


def _check_round_trip(workflow: BpmnWorkflow, *, format1: bool = True) -> bytes:
    blob = dump_state(workflow)
    assert json.loads(zlib.decompress(blob))["format"] == FORMAT == 2
    loaded = load_state(blob, workflow.spec, workflow.subprocess_specs)
    _assert_same(loaded, workflow)
    assert _decoded(dump_state(loaded)) == _decoded(blob)  # (key order in data may differ)
    if format1:  # the same workflow written as format 1 loads as the same too
        old = load_state(dump_format1(workflow), workflow.spec, workflow.subprocess_specs)
        _assert_same(old, workflow)
    return blob


def _subprocess_workflow() -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(DATA / "state_subprocess.bpmn"))
    return BpmnWorkflow(parser.get_spec("state_subprocess"),
                        parser.get_subprocess_specs("state_subprocess"))


def _ready(workflow: BpmnWorkflow, element: str) -> Any:
    return next(t for t in workflow.get_tasks(state=TaskState.READY)
                if t.task_spec.bpmn_id == element)


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("path", EXAMPLES, ids=[Path(p).stem for p in EXAMPLES])
def test_every_saved_state_of_a_scenario_loads_as_the_same_workflow(tmp_path, monkeypatch, path):
    saved: list[bytes] = []

    def checked_dump(workflow: BpmnWorkflow) -> bytes:
        blob = _check_round_trip(workflow)
        saved.append(blob)
        return blob

    monkeypatch.setattr(engine_module, "dump_state", checked_dump)
    with Engine(f"sqlite:///{tmp_path / 'state.db'}", clock=VirtualClock("2026-03-02T09:00:00+08:00"),
                load_entry_points=False) as engine:
        result = run_scenario(engine, load_scenario(path))
    assert result.case.status in ("closed", "cancelled")
    assert len(saved) >= 3
    assert len(saved[-1]) <= 4096


def _run(tmp_path: Path, name: str, path: str) -> tuple[list[tuple], Any]:
    with Engine(f"sqlite:///{tmp_path / name}", clock=VirtualClock("2026-03-02T09:00:00+08:00"),
                load_entry_points=False) as engine:
        result = run_scenario(engine, load_scenario(path))
    timeline = [(e.action, e.element, e.actor, e.department) for e in result.timeline]
    return timeline, result.case


@pytest.mark.parametrize("path", EXAMPLES, ids=[Path(p).stem for p in EXAMPLES])
def test_a_case_continues_identically_from_its_stored_state(tmp_path, monkeypatch, path):
    cached_timeline, cached = _run(tmp_path, "cached.db", path)
    monkeypatch.setattr(engine_module, "WORKFLOW_CACHE_SIZE", 0)  # every command loads the blob
    timeline, case = _run(tmp_path, "uncached.db", path)
    assert timeline == cached_timeline
    assert (case.status, case.data, case.due_at) == (cached.status, cached.data, cached.due_at)


def test_subprocess_timer_and_completion_round_trip():
    workflow = _subprocess_workflow()
    workflow.get_tasks(state=TaskState.READY)[0].data["reporter"] = "张秀英"
    workflow.do_engine_steps()
    assert len(workflow.subprocesses) == 1 and workflow.event_manager.tasks
    _check_round_trip(workflow)

    b = _ready(workflow, "b")
    b.data.update(opinion="已办理", x=2)
    del b.data["tags"]
    _check_round_trip(workflow)

    blob = dump_state(workflow)
    for element in ("b", "a", "c"):
        # the reloaded workflow runs on exactly as the one in memory
        loaded = load_state(blob, workflow.spec, workflow.subprocess_specs)
        for wf in (workflow, loaded):
            _ready(wf, element).run()
            wf.do_engine_steps()
        assert _shape(loaded) == _shape(workflow)
        blob = _check_round_trip(workflow)
    assert workflow.completed and load_state(blob, workflow.spec, workflow.subprocess_specs).completed


def test_trees_spiffworkflow_does_not_build_still_round_trip():
    workflow = _subprocess_workflow()
    workflow.get_tasks(state=TaskState.READY)[0].data["reporter"] = "张秀英"
    workflow.do_engine_steps()
    _ready(workflow, "b").data["opinion"] = "已办理"
    split = next(t for t in workflow.get_tasks() if len(t._children) > 1)
    split._children.reverse()  # children not in the order of the task list
    blob = _check_round_trip(workflow)
    assert any(len(row) == 10 for row in _decoded(blob)["tasks"])
    # every task before its parent: no delta possible, each row holds the whole data
    # (format 1 loses the data of such tasks: SpiffWorkflow reads a delta before its base)
    workflow.tasks = dict(reversed(workflow.tasks.items()))
    blob = _check_round_trip(workflow, format1=False)
    assert all(not isinstance(row[1], int) for row in _decoded(blob)["tasks"])


def test_values_json_cannot_write_come_back_as_they_were():
    workflow = _subprocess_workflow()
    workflow.do_engine_steps()
    b = _ready(workflow, "b")
    when = _dt.datetime(2026, 3, 2, 9, 30, tzinfo=_dt.timezone(_dt.timedelta(hours=8)))
    values = {
        "when": when, "day": _dt.date(2026, 3, 9), "at": _dt.time(17, 30),
        "limit": _dt.timedelta(days=5, seconds=60), "depts": {"县住建局", "县水务局"},
        "frozen": frozenset({1, 2}), "nested": {"list": [when, {"set": {3}}], "plain": "中文"},
        "pair": (1, "a"), "typename_key": {"typename": "not registered", "v": 1},
    }
    b.data.update(values)
    workflow.data["closed_on"] = _dt.date(2026, 3, 10)
    b.internal_data["seen"] = when

    loaded = load_state(dump_state(workflow), workflow.spec, workflow.subprocess_specs)
    got = loaded.get_task_from_id(b.id)
    for key, value in values.items():
        assert got.data[key] == (list(value) if isinstance(value, tuple) else value), key
    assert type(got.data["depts"]) is set and type(got.data["frozen"]) is frozenset
    assert got.data["nested"]["list"][0].utcoffset() == _dt.timedelta(hours=8)
    assert loaded.data["closed_on"] == _dt.date(2026, 3, 10)
    assert got.internal_data["seen"] == when
    assert _decoded(dump_state(loaded)) == _decoded(dump_state(workflow))
    assert got.data["x"] == 1 and got.data["tags"] == ["a", "b"]  # plain data as it was


def test_a_value_nothing_can_store_is_refused():
    workflow = _subprocess_workflow()
    workflow.do_engine_steps()
    _ready(workflow, "b").data["odd"] = object()
    with pytest.raises(TypeError, match="object"):
        dump_state(workflow)


def test_a_format_1_state_written_by_the_old_code_still_loads():
    # tests/data/state_format1_subprocess.bin: written by onething's dump_state of format 1
    # (commit eb2ae30) for state_subprocess.bpmn, with `a` and the subprocess's `b` ready,
    # a_timer waiting, and `b`'s data changed (one key added, one deleted).
    blob = (DATA / "state_format1_subprocess.bin").read_bytes()
    stored = json.loads(zlib.decompress(blob))
    assert stored["format"] == 1
    fresh = _subprocess_workflow()
    loaded = load_state(blob, fresh.spec, fresh.subprocess_specs)
    view = _spiff_view(loaded)
    del stored["format"]
    assert view == stored
    assert len(loaded.subprocesses) == 1 and len(loaded.event_manager.tasks) == 1
    b = _ready(loaded, "b")
    assert b.data["opinion"] == "已办理" and "tags" not in b.data
    assert b.data["nested"] == {"k": {"v": "值"}}
    # it goes on, and is written as format 2 from then on
    b.run()
    loaded.do_engine_steps()
    _check_round_trip(loaded)


def test_an_unknown_format_is_refused():
    blob = zlib.compress(json.dumps({"format": 99}).encode())
    with pytest.raises(ValueError, match="format 99"):
        load_state(blob, None, {})
