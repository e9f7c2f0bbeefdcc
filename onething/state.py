"""A case's workflow state without its spec: compact JSON, zlib-compressed.

Format 2 (FORMAT below; what dump_state writes) stores what SpiffWorkflow's serializer stores — every task's id,
state, task spec, parent and children, last_state_change, triggered, internal_data and
data (as SpiffWorkflow's delta against the parent's data), the workflow's data,
correlations, last task, bpmn_events and subprocesses — in a flatter layout that costs
far less to write and read:

- the task tree of each (sub)workflow is a list of rows in `workflow.tasks` order,
  ``[id, parent, task_spec, state, last_state_change, triggered, internal_data, data,
  (deletions, (children))]``; ids are 32-digit hex; ``parent`` is the index of an earlier
  row, whose data ``data`` updates (and ``deletions`` removes keys from) — or ``None`` /
  a hex id when the task has no parent or it is not an earlier row, and then ``data`` is
  the task's whole data; ``children`` is written only when it is not the rows whose
  parent is this one, in row order (it always is, for trees SpiffWorkflow builds);
- task data is written by the JSON encoder directly, without walking it in Python; a
  value JSON does not know (datetime, set, a SpiffWorkflow object …) is converted by
  SpiffWorkflow's registry as a ``{"typename": …}`` object, restored on load.

Format 1 (SpiffWorkflow's own task and workflow dicts, without the spec) still loads.
"""

from __future__ import annotations

import datetime as _dt
import json
import zlib
from copy import copy
from types import ModuleType
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

__all__ = ["dump_state", "load_state", "FORMAT"]

FORMAT = 2  # bump, keeping a reader for the old one, if the layout below changes
ZLIB_LEVEL = 6  # 1 and 3 are ≈ 0.015 ms faster a save and 5 % larger


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Format 1, read by load_state (its to_dict is what format 1 wrote).

    SpiffWorkflow embeds the whole spec in every serialized workflow (≈ half its size);
    onething stores each process version once and hands the spec back on load."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None,
                  subprocess_specs: dict[str, Any] | None = None) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_CONFIG = dict(SPIFF_CONFIG)
_CONFIG[BpmnWorkflow] = _SpeclessWorkflowConverter
_REGISTRY = BpmnWorkflowSerializer.configure(_CONFIG)
_SERIALIZER = BpmnWorkflowSerializer(_REGISTRY)


def _sorted_if_possible(values: Any) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return list(values)


# Data values SpiffWorkflow's registry does not know but a script may well leave in task data
# (datetime and timedelta it knows). Format 1 could not store them at all.
_REGISTRY.register(set, lambda v: {"value": _sorted_if_possible(v)},
                   lambda v: set(_REGISTRY.restore(v["value"])), "set")
_REGISTRY.register(frozenset, lambda v: {"value": _sorted_if_possible(v)},
                   lambda v: frozenset(_REGISTRY.restore(v["value"])), "frozenset")
_REGISTRY.register(_dt.date, lambda v: {"value": v.isoformat()},
                   lambda v: _dt.date.fromisoformat(v["value"]), "date")
_REGISTRY.register(_dt.time, lambda v: {"value": v.isoformat()},
                   lambda v: _dt.time.fromisoformat(v["value"]), "time")

_CONTAINERS = (dict, list, set)
_TYPENAMES = _REGISTRY.typenames
_RESTORERS = _REGISTRY.convert_from_dict


def _default(value: Any) -> Any:
    """The JSON encoder's fallback: only called for values JSON cannot write."""
    if type(value) in _TYPENAMES:
        return _REGISTRY.convert(value)
    if callable(value) or isinstance(value, ModuleType):
        return None  # as SpiffWorkflow's own encoder does
    raise TypeError(f"task data holds a value that cannot be stored: {type(value).__name__}")


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"),
                            default=_default)
_DECODER = json.JSONDecoder()


def _restore(value: Any) -> Any:
    """Undo `_default`: objects of a registered typename back to values, the rest as is."""
    if isinstance(value, dict):
        typename = value.get("typename")
        if typename.__class__ is str and typename in _RESTORERS:
            return _REGISTRY.restore(value)
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """SpiffWorkflow drops callables and modules from workflow data before serializing."""
    for value in data.values():
        if callable(value) or isinstance(value, ModuleType):
            return _REGISTRY.clean(data)
    return data


# ---------------------------------------------------------------------------- format 2
def _rows(workflow: Any) -> tuple[list[list[Any]], dict[UUID, int]]:
    """The rows of a (sub)workflow's tasks, and each task's row index."""
    tasks = workflow.tasks
    index: dict[UUID, int] = {}
    order: list[Any] = []
    kids: list[list[UUID]] = []
    rows: list[list[Any]] = []
    for task in tasks.values():
        parent_id = task._parent
        data = task.data
        at = index.get(parent_id) if parent_id is not None else None
        deletions = None
        if at is not None:
            # SpiffWorkflow's delta: the keys whose values differ from the parent's, and
            # the parent's keys this task no longer has.
            pdata = order[at].data
            if data == pdata:  # most tasks: one comparison in C instead of one per key
                data = {}
            else:
                data = {k: v for k, v in data.items() if k not in pdata or v != pdata[k]}
                deletions = [k for k in pdata if k not in task.data]
            kids[at].append(task.id)
            parent_ref: Any = at
        else:  # the root, or a parent not (yet) written: the task's whole data
            parent_ref = parent_id.hex if parent_id is not None else None
        index[task.id] = len(rows)
        order.append(task)
        kids.append([])
        row = [task.id.hex, parent_ref, task.task_spec.name, task._state,
               task.last_state_change, 1 if task.triggered else 0, task.internal_data, data]
        if deletions:
            row.append(deletions)
        rows.append(row)
    for row, task, derived in zip(rows, order, kids):
        if task._children != derived:  # never for trees SpiffWorkflow builds; kept if so
            if len(row) == 8:
                row.append([])
            row.append([child.hex for child in task._children])
    return rows, index


def _ref(task: Any, index: dict[UUID, int]) -> Any:
    if task is None:
        return None
    at = index.get(task.id)
    return at if at is not None else task.id.hex


def _workflow_to_dict(workflow: Any) -> dict[str, Any]:
    rows, index = _rows(workflow)
    return {
        "tasks": rows,
        "root": _ref(workflow.task_tree, index),
        "last_task": _ref(workflow.last_task, index),
        "data": _clean(workflow.data),
        "correlations": workflow.correlations,
        "success": workflow.success,
        "completed": workflow.completed,
    }


def dump_state(workflow: BpmnWorkflow) -> bytes:
    """The workflow's task tree and data, without the spec, as compressed JSON bytes."""
    dct = _workflow_to_dict(workflow)
    if workflow.subprocesses:
        subprocesses = {}
        for task_id, sub in workflow.subprocesses.items():
            sdct = _workflow_to_dict(sub)
            sdct["spec"] = sub.spec.name
            subprocesses[task_id.hex] = sdct
        dct["subprocesses"] = subprocesses
    if workflow.bpmn_events:
        dct["bpmn_events"] = _REGISTRY.convert(workflow.bpmn_events)
    dct["format"] = FORMAT
    return zlib.compress(_ENCODER.encode(dct).encode("utf-8"), ZLIB_LEVEL)


def _task_ref(ref: Any, made: list[Any], workflow: Any) -> Any:
    if ref is None:
        return None
    if ref.__class__ is int:
        return made[ref]
    return workflow.tasks.get(UUID(ref))


def _load_workflow(workflow: Any, dct: dict[str, Any], typed: bool) -> None:
    """Fill a workflow made with deserializing=True from its format-2 dict."""
    specs = workflow.spec.task_specs
    event_manager = workflow.top_workflow.event_manager
    restore = _restore if typed else (lambda v: v)
    made: list[Any] = []
    kids: list[list[UUID]] = []
    # per task, the keys of its data whose values are containers: SpiffWorkflow gives each
    # task its own copy of those (one level deep), as DeepMerge.merge({}, parent.data) does
    containers: list[list[str]] = []
    rows = dct["tasks"]
    for row in rows:
        parent_ref, data = row[1], row[7]
        spec = specs.get(row[2])
        task = Task(workflow, spec, state=row[3], id=UUID(row[0]))
        if parent_ref.__class__ is int:
            parent = made[parent_ref]
            task._parent = parent.id
            kids[parent_ref].append(task.id)
            merged = parent.data.copy()
            held = containers[parent_ref]
            for key in held:
                merged[key] = copy(merged[key])
            if data or len(row) > 8:
                if data:
                    data = restore(data)
                    merged.update(data)
                deleted = row[8] if len(row) > 8 else ()
                for key in deleted:
                    merged.pop(key, None)
                held = [k for k in held if k not in data and k in merged]
                held += [k for k, v in data.items() if isinstance(v, _CONTAINERS)]
            data = merged
        else:
            task._parent = UUID(parent_ref) if parent_ref is not None else None
            data = restore(data)
            held = [k for k, v in data.items() if isinstance(v, _CONTAINERS)]
        containers.append(held)
        task.last_state_change = row[4]
        task.triggered = bool(row[5])
        task.internal_data = restore(row[6])
        task.data = data
        if isinstance(spec, CatchingEvent) and task._state & TaskState.WAITING:
            event_manager.add_task(task)
        made.append(task)
        kids.append([])
    for task, row, derived in zip(made, rows, kids):
        task._children = [UUID(c) for c in row[9]] if len(row) > 9 else derived
    workflow.task_tree = _task_ref(dct["root"], made, workflow)
    workflow.success = dct["success"]
    workflow.completed = dct.get("completed", False)
    workflow.correlations = restore(dct.get("correlations", {}))
    workflow.last_task = _task_ref(dct["last_task"], made, workflow)
    workflow.data = restore(dct.get("data", {}))


def _load_subprocesses(subprocesses: dict[str, Any], workflow: Any, top: BpmnWorkflow,
                       typed: bool) -> None:
    # as SpiffWorkflow: a subprocess after the workflow holding its task
    for task in list(workflow.tasks.values()):
        if isinstance(task.task_spec, SubWorkflowTask) and task.id.hex in subprocesses:
            sdct = subprocesses.pop(task.id.hex)
            spec = top.subprocess_specs.get(task.task_spec.spec)
            sub = BpmnSubWorkflow(spec, task.id, top, deserializing=True)
            _load_workflow(sub, sdct, typed)
            top.subprocesses[task.id] = sub
            sub.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
            _load_subprocesses(subprocesses, sub, top, typed)


def _load_format2(dct: dict[str, Any], typed: bool, spec: Any,
                  subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    workflow = BpmnWorkflow(spec, subprocess_specs or {}, deserializing=True)
    _load_workflow(workflow, dct, typed)
    stored = dct.get("subprocesses")
    if stored:
        order = [UUID(k) for k in stored]
        _load_subprocesses(dict(stored), workflow, workflow, typed)
        loaded = workflow.subprocesses
        workflow.subprocesses = {k: loaded[k] for k in order if k in loaded}
    events = dct.get("bpmn_events")
    if events:
        workflow.bpmn_events = _REGISTRY.restore(events)
    return workflow


def load_state(blob: bytes, spec: Any, subprocess_specs: dict[str, Any],
               script_engine: Any = None) -> BpmnWorkflow:
    """The workflow `dump_state` wrote (any format so far), on the given spec."""
    raw = zlib.decompress(blob).decode("utf-8")
    dct = _DECODER.decode(raw)
    fmt = dct.pop("format", 1)
    if fmt == 2:
        workflow = _load_format2(dct, '"typename"' in raw, spec, subprocess_specs)
    elif fmt == 1:
        workflow = _SERIALIZER.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
    else:
        raise ValueError(f"case state of unknown format {fmt!r} (this onething reads 1 and 2)")
    if script_engine is not None:
        workflow.script_engine = script_engine
    return workflow
