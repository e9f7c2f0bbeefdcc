"""Read a BPMN file into a checked, executable process definition."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from ..errors import BpmnError, ScriptError, UnknownHandler
from ..scripting import ISO_LITERAL, check_source
from .lanes import ROLE_DATA_KEYS, Lane, parse_lane

__all__ = ["ProcessDefinition", "UserTaskInfo", "TimerInfo", "load_bpmn", "parse_xml",
           "BPMN_NS", "NSMAP"]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NSMAP = {
    "bpmn": BPMN_NS,
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}

MAX_BPMN_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class UserTaskInfo:
    """A user task as a designer drew it."""

    id: str
    name: str
    lane: str | None
    multi_instance: bool
    item_variable: str | None = None
    collection: str | None = None


@dataclass(frozen=True)
class TimerInfo:
    """A timer event: its expression, the task it watches and whether it interrupts."""

    id: str
    name: str
    expression: str
    attached_to: str | None
    interrupting: bool


@dataclass
class ProcessDefinition:
    """One version of one matter: the BPMN bytes, the parsed spec and what the engine needs."""

    code: str
    name: str
    sha256: str
    bpmn: bytes
    file: str
    spec: Any
    subprocess_specs: dict[str, Any]
    lanes: dict[str, Lane] = field(default_factory=dict)
    user_tasks: dict[str, UserTaskInfo] = field(default_factory=dict)
    timers: list[TimerInfo] = field(default_factory=list)
    operators: dict[str, str] = field(default_factory=dict)  # element id -> operator id
    documentation: str = ""

    def role_defaults(self) -> dict[str, Any]:
        """Case-data defaults from role lanes (`领办部门：县住建局` gives lead_department)."""
        out: dict[str, Any] = {}
        for lane in self.lanes.values():
            if lane.role in ROLE_DATA_KEYS and lane.defaults:
                key = ROLE_DATA_KEYS[lane.role]
                out[key] = list(lane.defaults) if lane.role == "collaborators" else lane.defaults[0]
        out.setdefault("collaborators", [])
        return out

    @property
    def departments(self) -> list[str]:
        """Every department the file names: plain lanes and role defaults."""
        seen: dict[str, None] = {}
        for lane in self.lanes.values():
            for name in ([lane.department] if lane.department else list(lane.defaults)):
                seen[name] = None
        return list(seen)


def _line_of(tree: etree._Element, element_id: str | None) -> int | None:
    if not element_id:
        return None
    found = tree.xpath("//*[@id=$id]", id=element_id)
    return found[0].sourceline if found else None


def parse_xml(data: bytes, file: str) -> etree._Element:
    """Parse untrusted XML bytes safely; every failure is a BpmnError naming the file."""
    if not data or not data.strip():
        raise BpmnError("the file is empty", file=file)
    if len(data) > MAX_BPMN_BYTES:
        raise BpmnError(f"the file is larger than {MAX_BPMN_BYTES // (1024 * 1024)} MiB", file=file)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # Designers' tools never write DTDs; one here is an entity attack or a mistake, and
        # refusing it before parsing keeps external entities and entity bombs out entirely.
        raise BpmnError("a DOCTYPE (entity declarations) is not allowed in a BPMN file", file=file)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_comments=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnError(f"not well-formed XML: {exc.msg}", file=file,
                        line=exc.lineno or None) from None
    except ValueError as exc:
        raise BpmnError(f"cannot be read as XML: {exc}", file=file) from None
    if root is None:
        raise BpmnError("no XML document found", file=file)
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise BpmnError(f"not a BPMN 2.0 document: the root element is {root.tag!r}, "
                        "expected bpmn:definitions", file=file, line=root.sourceline)
    return root


def _processes(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{{{BPMN_NS}}}process")


def _check_structure(root: etree._Element, process: etree._Element, file: str) -> None:
    """What SpiffWorkflow would report late or unclearly, reported up front with lines."""
    pid = process.get("id")
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        for end in ("sourceRef", "targetRef"):
            ref = flow.get(end)
            if not ref or ref not in ids:
                raise BpmnError(f"sequence flow {end} points to a missing element {ref!r}",
                                file=file, element=flow.get("id"), line=flow.sourceline)
    starts = process.findall(f"{{{BPMN_NS}}}startEvent")
    if not starts:
        raise BpmnError("the process has no start event", file=file, element=pid,
                        line=process.sourceline)


def _lanes(process: etree._Element) -> tuple[dict[str, Lane], dict[str, str]]:
    lanes: dict[str, Lane] = {}
    node_lane: dict[str, str] = {}
    for lane_el in process.iter(f"{{{BPMN_NS}}}lane"):
        lane = parse_lane(lane_el.get("name"))
        if lane is None:
            continue
        lanes[lane.name] = lane
        for ref in lane_el.findall(f"{{{BPMN_NS}}}flowNodeRef"):
            if ref.text:
                node_lane[ref.text.strip()] = lane.name
    return lanes, node_lane


def _expressions(spec: Any) -> Iterable[tuple[str, str, str]]:
    """Every (element id, source, mode) the restricted evaluator will run for this spec."""
    for ts in spec.task_specs.values():
        element = getattr(ts, "bpmn_id", None) or ts.name
        for cond, _target in getattr(ts, "cond_task_specs", []) or []:
            source = cond.args[0] if hasattr(cond, "args") and cond.args else cond
            if isinstance(source, str):
                yield element, source, "eval"
        script = getattr(ts, "script", None)
        if isinstance(script, str):
            yield element, script, "exec"
        for attr in ("prescript", "postscript"):
            extra = getattr(ts, attr, None)
            if isinstance(extra, str) and extra.strip():
                yield element, extra, "exec"
        for param in (getattr(ts, "operation_params", None) or {}).values():
            if isinstance(param, dict) and param.get("value"):
                yield element, str(param["value"]), "eval"
        for attr in ("condition", "cardinality"):
            value = getattr(ts, attr, None)
            if isinstance(value, str) and value.strip() and hasattr(ts, "data_input"):
                yield element, value, "eval"
        event = getattr(ts, "event_definition", None)
        for definition in getattr(event, "event_definitions", None) or ([event] if event else []):
            expr = getattr(definition, "expression", None)
            if isinstance(expr, str) and expr.strip():
                yield element, expr, "timer" if isinstance(definition, TimerEventDefinition) else "eval"


_LOOKS_ISO = re.compile(r"[PR][0-9A-Z.,:/+-]*", re.IGNORECASE)


def check_timer_expression(expr: str) -> list[str]:
    """Why a timer expression is unusable (empty when it is fine)."""
    text = expr.strip()
    if ISO_LITERAL.match(text):
        try:
            if text.upper().startswith("R"):
                TimerEventDefinition.parse_iso_recurring_interval(text)
            else:
                TimerEventDefinition.parse_time_or_duration(text)
        except Exception:
            return [f"{text!r} is not a valid ISO 8601 duration, date or cycle"]
        return []
    errors = check_source(text, "eval")
    # A bare token such as P7X or PT2HH is a mistyped ISO literal; an expression that only
    # starts with the letter (rework_deadline["due"], period) is an expression.
    if not errors and _LOOKS_ISO.fullmatch(text) and any(c.isdigit() for c in text):
        return [f"{text!r} is not a valid ISO 8601 duration, date or cycle"]
    return errors


def load_bpmn(
    data: bytes,
    file: str,
    *,
    process_id: str | None = None,
    operators: Iterable[str] | None = None,
) -> ProcessDefinition:
    """Parse and check one BPMN document; raise BpmnError (or a subclass) naming what is wrong.

    `operators`, when given, is the set of registered handler ids every service task must use.
    """
    root = parse_xml(data, file)
    processes = _processes(root)
    executable = [p for p in processes if p.get("isExecutable", "true").lower() != "false"]
    if not processes:
        raise BpmnError("the document defines no bpmn:process", file=file, line=root.sourceline)
    if process_id is None:
        if len(executable) != 1:
            names = ", ".join(p.get("id", "?") for p in executable) or "none"
            raise BpmnError(f"expected exactly one executable process, found: {names}", file=file)
        process = executable[0]
    else:
        matches = [p for p in processes if p.get("id") == process_id]
        if not matches:
            raise BpmnError(f"no process with id {process_id!r}", file=file)
        process = matches[0]
    code = process.get("id") or ""
    _check_structure(root, process, file)

    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(root, filename=file)
        spec = parser.get_spec(code)
        subprocess_specs = parser.get_subprocess_specs(code)
    except ValidationException as exc:
        element = getattr(exc, "id", None) or None
        raise BpmnError(str(exc).split("\n")[0], file=file, element=element,
                        line=_line_of(root, element)) from None
    except (SpiffWorkflowException, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BpmnError(f"cannot be parsed as an executable process: {exc}", file=file,
                        element=code) from None

    for each in [spec, *subprocess_specs.values()]:
        _connect_loop_merges(each)
    for element, source, mode in _expressions(spec):
        errors = check_timer_expression(source) if mode == "timer" else check_source(source, mode)
        if errors:
            raise ScriptError("refused: " + "; ".join(errors), source=source, file=file,
                              element=element, line=_line_of(root, element))

    lanes, node_lane = _lanes(process)
    definition = ProcessDefinition(
        code=code,
        name=process.get("name") or code,
        sha256=hashlib.sha256(data).hexdigest(),
        bpmn=data,
        file=file,
        spec=spec,
        subprocess_specs=subprocess_specs,
        lanes=lanes,
    )
    doc = process.find(f"{{{BPMN_NS}}}documentation")
    definition.documentation = (doc.text or "").strip() if doc is not None else ""
    for ts in spec.task_specs.values():
        element = getattr(ts, "bpmn_id", None)
        if not element:
            continue
        kind = type(ts).__name__
        if kind == "UserTask" or (kind.endswith("MultiInstanceTask") and _is_user(ts, spec)):
            if element in definition.user_tasks and kind == "UserTask":
                continue  # a multi-instance parent already described this element
            child = spec.task_specs.get(getattr(ts, "task_spec", "")) if kind != "UserTask" else None
            item = getattr(getattr(ts, "input_item", None), "bpmn_id", None)
            collection = getattr(getattr(ts, "data_input", None), "bpmn_id", None)
            definition.user_tasks[element] = UserTaskInfo(
                id=element, name=getattr(ts, "bpmn_name", None) or getattr(child, "bpmn_name", None) or element,
                lane=node_lane.get(element), multi_instance=kind != "UserTask",
                item_variable=item, collection=collection,
            )
        if hasattr(ts, "operation_name"):
            definition.operators[element] = ts.operation_name
        event = getattr(ts, "event_definition", None)
        if isinstance(event, TimerEventDefinition):
            definition.timers.append(TimerInfo(
                id=element, name=getattr(ts, "bpmn_name", None) or element,
                expression=event.expression,
                attached_to=_attached_to(root, element),
                interrupting=getattr(ts, "cancel_activity", True),
            ))
    if operators is not None:
        known = set(operators)
        for element, operator in definition.operators.items():
            if operator not in known:
                exc = UnknownHandler(operator, file=file, element=element, known=sorted(known))
                exc.line = _line_of(root, element)
                raise exc
    return definition


def _connect_loop_merges(spec: Any) -> None:
    """SpiffWorkflow wires a multi-instance child's completion to its parent only when it
    creates a child or deserializes a spec; a case restored onto a freshly parsed spec would
    otherwise finish every instance and never move on."""
    for ts in spec.task_specs.values():
        if isinstance(ts, LoopTask):
            child = spec.task_specs.get(ts.task_spec)
            if child is not None and not child.completed_event.is_connected(ts.merge_child):
                child.completed_event.connect(ts.merge_child)


def _is_user(ts: Any, spec: Any) -> bool:
    child = spec.task_specs.get(getattr(ts, "task_spec", ""))
    return type(child).__name__ == "UserTask"


def _attached_to(root: etree._Element, element: str) -> str | None:
    found = root.xpath("//*[@id=$id]", id=element)
    return found[0].get("attachedToRef") if found else None
