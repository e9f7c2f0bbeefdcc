"""Where a case stands, as marks on its diagram: done, active, overdue, cancelled, and who."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from lxml import etree

from .bpmn.load import BPMN_NS, parse_xml
from .bpmn.render import ElementMark
from .engine import Engine
from .views import Event, WorkItem

__all__ = ["case_marks", "marks_from"]

# How the engine audits a fired timer: by its purpose (预警, 督办) or plainly.
FIRED_ACTIONS = ("timer", "warning", "supervision")

_RANK = {"cancelled": 0, "done": 1, "active": 2, "overdue": 3}
_PASS_THROUGH = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
                 "complexGateway", "intermediateThrowEvent", "intermediateCatchEvent"}


def _when(value: _dt.datetime | None) -> str:
    return value.strftime("%m-%d %H:%M") if value else ""


def _note(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


def case_marks(engine: Engine, number: str, *, now: _dt.datetime | None = None) -> dict[str, ElementMark]:
    """The marks of case `number` for `render_svg`, from its work items and audit log."""
    case = engine.case(number)
    items = engine.tasks(case=number, status=("open", "claimed", "done", "cancelled"))
    definition = engine.definition(case.process_version)
    overdue = case.status == "open" and case.due_at is not None and \
        case.due_at <= (now or engine.clock.now())
    return marks_from(definition.bpmn, items, engine.history(number), overdue=overdue)


def marks_from(bpmn: bytes, items: Iterable[WorkItem], history: Iterable[Event], *,
               overdue: bool = False) -> dict[str, ElementMark]:
    """Marks from a case's work items and events (`overdue`: its next deadline has passed)."""
    root = parse_xml(bpmn, "<case>")
    ids = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    states: dict[str, str] = {}
    notes: dict[str, list[str]] = {}

    def mark(element: str | None, state: str, note: str = "") -> None:
        if not element or element not in ids:
            return
        if element not in states or _RANK[state] >= _RANK[states[element]]:
            states[element] = state
        if note and note not in notes.setdefault(element, []):
            notes[element].append(note)

    history = list(history)
    fired = {e.element for e in history if e.action in FIRED_ACTIONS and e.element}
    for item in items:
        if item.status == "done":
            mark(item.element, "done", _note(item.department, item.completed_by,
                                             _when(item.completed_at)))
        elif item.status == "cancelled":
            mark(item.element, "cancelled", _note(item.department, "已取消"))
        else:
            late = overdue or any(
                ids[t].get("attachedToRef") == item.element for t in fired if t in ids)
            who = item.claimed_by or "待签收"
            mark(item.element, "overdue" if late else "active",
                 _note(item.department, who, f"自 {_when(item.created_at)}"))
    started = any(e.action == "start" for e in history)
    for event in history:
        if event.action == "handler":
            mark(event.element, "done", _note(event.detail.get("operator"), _when(event.at)))
        elif event.action == "end":
            mark(event.element, "done", _when(event.at))
        elif event.action in FIRED_ACTIONS:
            mark(event.element, "overdue", _note(event.detail.get("name"), "已触发",
                                                 _when(event.at)))
        elif event.action == "incident":
            mark(event.element, "overdue", _note("故障", event.detail.get("error")))
    if started:
        start = next((e for e in history if e.action == "start"), None)
        for el in root.iter(f"{{{BPMN_NS}}}startEvent"):
            parent = el.getparent()
            if parent is not None and etree.QName(parent).localname == "process":
                mark(el.get("id"), "done", _note(start.department, start.actor, _when(start.at))
                     if start else "")
    _pass_through(ids, states)
    return {element: ElementMark(state, "\n".join(notes.get(element, [])))
            for element, state in states.items()}


def _pass_through(ids: dict[str, etree._Element], states: dict[str, str]) -> None:
    """Gateways and intermediate events leave no work item or event: one is done when the
    case came into it from a done element and went on to a reached one."""
    incoming: dict[str, list[str]] = {}
    outgoing: dict[str, list[str]] = {}
    for el in ids.values():
        if etree.QName(el).localname == "sequenceFlow":
            outgoing.setdefault(el.get("sourceRef", ""), []).append(el.get("targetRef", ""))
            incoming.setdefault(el.get("targetRef", ""), []).append(el.get("sourceRef", ""))
    passing = {e for e, el in ids.items()
               if e not in states and etree.QName(el).localname in _PASS_THROUGH}
    # pass-through elements from which the case reached a marked element
    leads: set[str] = set()
    changed = True
    while changed:
        changed = False
        for element in passing - leads:
            if any(states.get(t) in ("done", "active", "overdue") or t in leads
                   for t in outgoing.get(element, [])):
                leads.add(element)
                changed = True
    # ... and that the case came into from a done element
    queue = [t for s, el in states.items() if el == "done" for t in outgoing.get(s, [])
             if t in leads]
    while queue:
        element = queue.pop()
        if states.get(element) == "done":
            continue
        states[element] = "done"
        queue.extend(t for t in outgoing.get(element, []) if t in leads)
