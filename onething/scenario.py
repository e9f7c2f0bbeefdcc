"""Scenario files: drive one example case of a matter to its end on a virtual clock."""

from __future__ import annotations

import datetime as _dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import VirtualClock, parse_duration
from .engine import Engine
from .errors import OnethingError, ScenarioError
from .views import CaseView, Event

__all__ = ["Scenario", "load_scenario", "run_scenario", "ScenarioResult"]

_TICK = _dt.timedelta(milliseconds=1)


@dataclass
class Scenario:
    file: str
    matter: str
    title: str
    case: dict[str, Any]
    steps: list[dict[str, Any]]
    expect: dict[str, Any] = field(default_factory=dict)
    actor: str = "话务员"


@dataclass
class ScenarioResult:
    scenario: Scenario
    case: CaseView
    timeline: list[Event]


def load_scenario(path: str | Path) -> Scenario:
    file = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read the scenario: {exc.strerror}", file=file) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"not valid TOML: {exc}", file=file) from None
    matter = raw.get("matter") or raw.get("file")
    if not isinstance(matter, str) or not matter:
        raise ScenarioError("names no matter (matter = \"code\" or file = \"path.bpmn\")", file=file)
    if "file" in raw and "matter" not in raw:
        matter = str((Path(path).parent / matter).resolve())
    steps = raw.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ScenarioError("[[steps]] must be a list of tables", file=file)
    for i, step in enumerate(steps, 1):
        if "task" not in step and "tick" not in step:
            raise ScenarioError("a step needs task = \"element id\" or tick = \"duration\"",
                                file=file, step=i)
        if "task" in step and "as" not in step:
            raise ScenarioError("a task step needs as = \"department\"", file=file, step=i)
        for key in ("after", "tick"):
            if key in step:
                try:
                    parse_duration(str(step[key]))
                except ValueError as exc:
                    raise ScenarioError(str(exc), file=file, step=i) from None
        if "data" in step and not isinstance(step["data"], dict):
            raise ScenarioError("data must be a table (data = { field = value })",
                                file=file, step=i)
        for key in ("task", "as", "actor"):
            if key in step and (not isinstance(step[key], str) or not step[key].strip()):
                raise ScenarioError(f"{key} must be a non-empty string", file=file, step=i)
    case = raw.get("case", {})
    if not isinstance(case, dict):
        raise ScenarioError("[case] must be a table", file=file)
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        raise ScenarioError("[expect] must be a table (status = \"closed\")", file=file)
    if "status" in expect and not isinstance(expect["status"], str):
        raise ScenarioError("expect.status must be a string", file=file)
    return Scenario(file=file, matter=matter, title=str(raw.get("title", matter)), case=case,
                    steps=steps, expect=expect, actor=str(raw.get("actor", "话务员")))


def _advance(engine: Engine, duration: str) -> None:
    clock = engine.clock
    if not isinstance(clock, VirtualClock):
        raise OnethingError("scenarios run on a virtual clock")
    target = clock.now() + parse_duration(duration)
    # Step through due timers in order so each fires at its own time, not all at the end.
    # SpiffWorkflow fires a timer only once the clock is strictly past its deadline.
    last: _dt.datetime | None = None
    while True:
        due = engine.next_due()
        if due is None or due >= target or due == last:
            break
        last = due
        clock.set(max(due + _TICK, clock.now()))
        engine.tick()
    clock.set(target)
    engine.tick()


def check_scenario(engine: Engine, scenario: Scenario) -> None:
    """What can be checked before a case is opened: the matter exists, every step names one
    of its user tasks, and a task in a fixed-department lane is done by that department."""
    from .bpmn.lanes import parse_lane

    try:
        definition = engine.process(scenario.matter)
    except OnethingError as exc:
        raise ScenarioError(str(exc), file=scenario.file) from None
    tasks = definition.user_tasks
    for i, step in enumerate(scenario.steps, 1):
        if "task" not in step:
            continue
        element, department = str(step["task"]), str(step["as"])
        info = tasks.get(element)
        if info is None:
            raise ScenarioError(f"{definition.code} has no user task {element!r} (its user "
                                f"tasks: {', '.join(tasks) or 'none'})",
                                file=scenario.file, step=i)
        lane = parse_lane(info.lane)
        if lane is not None and lane.role is None and not info.multi_instance \
                and lane.name != department:
            raise ScenarioError(f"task {element!r} belongs to {lane.name}, not to {department}",
                                file=scenario.file, step=i)


def run_scenario(engine: Engine, scenario: Scenario) -> ScenarioResult:
    """Open the scenario's case and drive it; if a step fails, the half-run case is
    withdrawn (cancelled, with the failure as its audited reason) and ScenarioError raised."""
    check_scenario(engine, scenario)
    try:
        case = engine.start(scenario.matter, scenario.case, actor=scenario.actor,
                            department=scenario.case.get("dispatch_department"))
    except OnethingError as exc:
        raise ScenarioError(str(exc), file=scenario.file) from None
    try:
        return _drive(engine, scenario, case.number)
    except OnethingError as exc:
        reason = f"scenario {scenario.file} failed: {exc}"
        try:
            engine.cancel(case.number, reason=reason, actor=scenario.actor)
        except OnethingError:
            pass  # the case finished or vanished meanwhile; nothing left open to withdraw
        else:
            why = exc.reason if isinstance(exc, ScenarioError) else str(exc)
            raise ScenarioError(f"{why}; case {case.number} was withdrawn (cancelled)",
                                file=scenario.file,
                                step=getattr(exc, "step", None)) from None
        raise


def _drive(engine: Engine, scenario: Scenario, number: str) -> ScenarioResult:
    for i, step in enumerate(scenario.steps, 1):
        if "after" in step:
            _advance(engine, str(step["after"]))
        if "tick" in step:
            _advance(engine, str(step["tick"]))
            continue
        element, department = str(step["task"]), str(step["as"])
        actor = str(step.get("actor", department))
        candidates = [t for t in engine.tasks(case=number) if t.element == element]
        mine = [t for t in candidates if t.department == department]
        if not mine:
            open_now = ", ".join(f"{t.element}@{t.department}" for t in engine.tasks(case=number))
            raise ScenarioError(f"no open task {element!r} for {department} in case {number} "
                                f"(open: {open_now or 'none'}; status {engine.case(number).status})",
                                file=scenario.file, step=i)
        try:
            engine.claim(mine[0].id, actor=actor, department=department)
            engine.complete(mine[0].id, actor=actor, department=department,
                            data=step.get("data") or {})
        except OnethingError as exc:
            raise ScenarioError(str(exc), file=scenario.file, step=i) from None
    final = engine.case(number)
    expected = scenario.expect.get("status")
    if expected and final.status != expected:
        raise ScenarioError(f"case {number} ended {final.status!r}, the scenario expects "
                            f"{expected!r}", file=scenario.file)
    return ScenarioResult(scenario=scenario, case=final, timeline=engine.history(number))
