"""The designer's lint: every problem of a BPMN file, with its line and element id.

`load_bpmn` refuses a file at its first problem; `lint` reports that refusal as an error and
then everything else a designer should hear about, errors and warnings told apart.
"""

from __future__ import annotations

import tomllib
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import BpmnError, ScriptError, UnknownHandler
from ..scripting import check_source
from .lanes import parse_lane
from .load import BPMN_NS, NSMAP, check_timer_expression, load_bpmn, parse_xml

__all__ = ["Finding", "lint", "known_departments", "looks_like_department",
           "DEPARTMENT_SUFFIXES", "DIRECTORY_FILES"]

SPIFF_NS = NSMAP["spiffworkflow"]
BPMNDI_NS = NSMAP["bpmndi"]

# What the names of Chinese government bodies, enterprises and institutions end with.
DEPARTMENT_SUFFIXES = (
    "局", "办", "委", "中心", "政府", "大队", "公司", "单位", "街道", "乡", "镇", "院", "所", "站",
    "办事处", "办公室", "委员会", "部", "队", "行", "集团", "厅", "处", "会", "社区", "村",
)

# A departments directory, if one is shipped: the first of these that exists is used.
DIRECTORY_FILES = ("directory.toml", "departments.toml")
_DATA = Path(__file__).resolve().parent.parent / "data"

_FLOW_NODES = {
    "task", "userTask", "serviceTask", "scriptTask", "sendTask", "receiveTask", "manualTask",
    "businessRuleTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "exclusiveGateway", "parallelGateway", "inclusiveGateway",
    "eventBasedGateway", "complexGateway",
}
_SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}


@dataclass(frozen=True)
class Finding:
    """One problem in one file: `severity` is "error" or "warning"."""

    severity: str
    file: str
    line: int | None
    element: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        element = f" {self.element}:" if self.element else ""
        return f"{where}: {self.severity}:{element} {self.message}"


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _bpmn(el: etree._Element, tag: str) -> list[etree._Element]:
    return el.findall(f"{{{BPMN_NS}}}{tag}")


def _names_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        if isinstance(value.get("name"), str):
            yield value["name"]
        else:
            for key, inner in value.items():
                if isinstance(inner, (dict, list)):
                    yield from _names_in(inner)
                elif isinstance(key, str) and key not in ("name", "code", "region", "kind"):
                    yield key
    elif isinstance(value, list):
        for item in value:
            yield from _names_in(item)


def known_departments(folder: Path | None = None) -> set[str] | None:
    """Department names from the shipped directory file, or None when there is none.

    The file is TOML with `[[department]]` tables with a `name` (the directory of regions and
    departments, onething/data/directory.toml), or a `departments` entry: a list of names, a
    list of tables with a `name`, or tables keyed by name.
    """
    folder = folder or _DATA
    for name in DIRECTORY_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        names = set(_names_in(doc.get("department", []))) | set(
            _names_in(doc.get("departments", [])))
        return names or None
    return None


def looks_like_department(name: str) -> bool:
    """A name ending like a government body, enterprise or institution does."""
    return name.strip().endswith(DEPARTMENT_SUFFIXES)


def _load_finding(exc: BpmnError, file: str) -> Finding:
    if isinstance(exc, UnknownHandler):
        code = "unknown-handler"
    elif isinstance(exc, ScriptError):
        code = "timer" if "ISO 8601" in exc.reason else "refused-expression"
    else:
        code = "load"
    return Finding("error", exc.file or file, exc.line, exc.element, code, exc.reason)


class _Linter:
    def __init__(self, root: etree._Element, file: str, operators: set[str] | None,
                 departments: set[str] | None) -> None:
        self.root = root
        self.file = file
        self.operators = operators
        self.departments = departments
        self.directory = (known_departments() or set()) if departments is None else set()
        self.findings: list[Finding] = []

    def add(self, severity: str, el: etree._Element | None, code: str, message: str,
            element: str | None = None) -> None:
        self.findings.append(Finding(
            severity, self.file, el.sourceline if el is not None else None,
            element if element is not None else (el.get("id") if el is not None else None),
            code, message))

    # -- the checks ------------------------------------------------------------------
    def run(self) -> list[Finding]:
        processes = [p for p in _bpmn(self.root, "process")
                     if p.get("isExecutable", "true").lower() != "false"]
        self.check_di()
        for process in processes:
            self.check_lanes(process)
            self.check_expressions(process)
            self.check_operators(process)
            self.check_gateways(process)
            self.check_loop_inputs(process)
            self.check_graph(process)
        return self.findings

    def check_di(self) -> None:
        if self.root.find(f"{{{BPMNDI_NS}}}BPMNDiagram") is None:
            self.findings.append(Finding(
                "warning", self.file, self.root.sourceline, None, "missing-di",
                "the file has no BPMN DI (bpmndi:BPMNDiagram): modelers cannot draw it; "
                "open and save it in a modeler to lay it out"))
            return
        drawn = {el.get("bpmnElement") for el in self.root.iter(
            f"{{{BPMNDI_NS}}}BPMNShape", f"{{{BPMNDI_NS}}}BPMNEdge")}
        for collaboration in _bpmn(self.root, "collaboration"):
            for el in _bpmn(collaboration, "participant"):
                if el.get("id") and el.get("id") not in drawn:
                    self.add("warning", el, "missing-di",
                             "participant (pool) has no BPMN DI shape: modelers will not draw it")
        for process in _bpmn(self.root, "process"):
            for el in process.iter():
                kind = _local(el)
                if kind in _FLOW_NODES or kind == "lane":
                    what = "shape"
                elif kind == "sequenceFlow":
                    what = "edge"
                else:
                    continue
                if el.get("id") and el.get("id") not in drawn:
                    label = f" ({el.get('name')})" if el.get("name") else ""
                    self.add("warning", el, "missing-di",
                             f"{kind}{label} has no BPMN DI {what}: modelers will not draw it")

    def check_lanes(self, process: etree._Element) -> None:
        for lane_el in process.iter(f"{{{BPMN_NS}}}lane"):
            lane = parse_lane(lane_el.get("name"))
            if lane is None:
                if lane_el.find(f"{{{BPMN_NS}}}flowNodeRef") is not None:
                    self.add("warning", lane_el, "lane-department",
                             "the lane has no name, so its tasks belong to no department")
                continue
            if lane.role in ("leader", "reporter"):
                continue  # a leader's defaults name a post, not a department
            names = [lane.department] if lane.department else list(lane.defaults)
            for name in names:
                if name and not self._known(name):
                    what = ("a known department" if self.departments is not None
                            else "a department (…局/办/委/中心/政府/大队/…) or role "
                            "(领办部门/协同部门/牵头领导/调度/反映人)")
                    self.add("warning", lane_el, "lane-department",
                             f"lane {lane.name!r}: {name!r} is not {what}")

    def _known(self, name: str) -> bool:
        if self.departments is not None:
            return name in self.departments
        return name in self.directory or looks_like_department(name)

    def check_expressions(self, process: etree._Element) -> None:
        for el in process.iter(f"{{{BPMN_NS}}}timeDuration", f"{{{BPMN_NS}}}timeDate",
                               f"{{{BPMN_NS}}}timeCycle"):
            event = self._owner(el)
            text = (el.text or "").strip()
            errors = check_timer_expression(text) if text else ["the timer has no expression"]
            if errors:
                self.add("error", el, "timer", "timer " + "; ".join(errors), element=event)
        sources: list[tuple[etree._Element, str, str]] = []
        for el in process.iter(f"{{{BPMN_NS}}}conditionExpression",
                               f"{{{BPMN_NS}}}completionCondition",
                               f"{{{BPMN_NS}}}loopCardinality"):
            sources.append((el, el.text or "", "eval"))
        for el in process.iter(f"{{{BPMN_NS}}}script", f"{{{SPIFF_NS}}}preScript",
                               f"{{{SPIFF_NS}}}postScript"):
            sources.append((el, el.text or "", "exec"))
        for el in process.iter(f"{{{SPIFF_NS}}}parameter"):
            sources.append((el, el.get("value") or "", "eval"))
        for el, source, mode in sources:
            if not source.strip():
                continue
            errors = check_source(source, mode)
            if errors:
                self.add("error", el, "refused-expression",
                         f"refused by the restricted evaluator: {'; '.join(errors)} "
                         f"in {source.strip()!r}", element=self._owner(el))

    def _owner(self, el: etree._Element) -> str | None:
        """The id of the BPMN element (flow node or flow) an inner element belongs to."""
        node = el.getparent()
        while node is not None:
            if _local(node) in _FLOW_NODES or _local(node) == "sequenceFlow":
                return node.get("id")
            node = node.getparent()
        return None

    def check_operators(self, process: etree._Element) -> None:
        if self.operators is None:
            return
        for el in process.iter(f"{{{SPIFF_NS}}}serviceTaskOperator"):
            operator = el.get("id") or ""
            if operator not in self.operators:
                known = ", ".join(sorted(self.operators)) or "none"
                self.add("error", el, "unknown-handler",
                         f"no handler registered for operator {operator!r} (registered: {known})",
                         element=self._owner(el))

    def check_gateways(self, process: etree._Element) -> None:
        flows = list(process.iter(f"{{{BPMN_NS}}}sequenceFlow"))
        for gw in process.iter(f"{{{BPMN_NS}}}exclusiveGateway", f"{{{BPMN_NS}}}inclusiveGateway"):
            out = [f for f in flows if f.get("sourceRef") == gw.get("id")]
            conditional = [f for f in out if f.find(f"{{{BPMN_NS}}}conditionExpression") is not None]
            if conditional and not gw.get("default"):
                self.add("warning", gw, "no-default-flow",
                         f"{_local(gw)} has {len(conditional)} conditional outgoing flow(s) and "
                         "no default flow: a case matching no condition stops here with an error")

    def check_loop_inputs(self, process: etree._Element) -> None:
        """A multi-instance `loopDataInputRef` must name an item-aware element of the process.

        SpiffWorkflow reads the name as case data either way, but bpmn-js (bpmn.io, Camunda
        Modeler) resolves it as a reference: an undeclared one is an import warning, and the
        modeler drops `loopDataInputRef` when it saves, so the instances stop being made.
        """
        declared = {el.get("id") for el in process.iter(
            f"{{{BPMN_NS}}}property", f"{{{BPMN_NS}}}dataObject",
            f"{{{BPMN_NS}}}dataObjectReference", f"{{{BPMN_NS}}}dataInput") if el.get("id")}
        for ref_el in process.iter(f"{{{BPMN_NS}}}loopDataInputRef"):
            ref = (ref_el.text or "").strip()
            if not ref or ref in declared:
                continue
            task = ref_el.getparent().getparent()  # the task holding the loop characteristics
            self.add("warning", ref_el, "undeclared-loop-input",
                     f"multi-instance {_local(task)}{self._label(task)}: loopDataInputRef {ref!r} is not declared "
                     "in the process (as a bpmn:property, bpmn:dataObject or dataInput): "
                     "bpmn.io and Camunda Modeler report an unresolved reference and drop "
                     "loopDataInputRef when they save, which stops the parallel instances; "
                     f'declare <bpmn:property id="{ref}"/> in the process, before its laneSet',
                     element=self._owner(ref_el))

    def check_graph(self, process: etree._Element) -> None:
        nodes = {el.get("id"): el for el in process.iter() if _local(el) in _FLOW_NODES
                 and el.get("id")}
        edges: dict[str, list[str]] = {}
        outgoing: set[str] = set()
        for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source and target:
                edges.setdefault(source, []).append(target)
                outgoing.add(source)
        links: dict[str, list[str]] = {}
        for node_id, el in nodes.items():
            kind = _local(el)
            if kind == "boundaryEvent" and el.get("attachedToRef"):
                edges.setdefault(el.get("attachedToRef"), []).append(node_id)
            if kind in _SUBPROCESSES:
                for child in el:
                    if _local(child) == "startEvent" or (
                            _local(child) == "subProcess"
                            and child.get("triggeredByEvent", "false").lower() == "true"):
                        edges.setdefault(node_id, []).append(child.get("id"))
            if kind == "intermediateCatchEvent" and _bpmn(el, "linkEventDefinition"):
                name = _bpmn(el, "linkEventDefinition")[0].get("name") or ""
                links.setdefault(name, []).append(node_id)
        for node_id, el in nodes.items():
            if _local(el) == "intermediateThrowEvent" and _bpmn(el, "linkEventDefinition"):
                name = _bpmn(el, "linkEventDefinition")[0].get("name") or ""
                edges.setdefault(node_id, []).extend(links.get(name, []))
        # event subprocesses of the process start with it
        roots = [c.get("id") for c in process if _local(c) == "startEvent"]
        roots += [c.get("id") for c in process if _local(c) == "subProcess"
                  and c.get("triggeredByEvent", "false").lower() == "true"]
        reached = set(roots)
        queue = deque(roots)
        while queue:
            for target in edges.get(queue.popleft(), []):
                if target not in reached:
                    reached.add(target)
                    queue.append(target)
        if roots:
            for node_id, el in nodes.items():
                if node_id not in reached:
                    self.add("warning", el, "unreachable",
                             f"{_local(el)}{self._label(el)} cannot be reached from a start event")
        for node_id, el in nodes.items():
            if node_id in outgoing or not self._needs_outgoing(el):
                continue
            self.add("warning", el, "dead-end",
                     f"{_local(el)}{self._label(el)} has no outgoing sequence flow: a case stops "
                     "there without ending (add a flow or an end event)")

    @staticmethod
    def _label(el: etree._Element) -> str:
        return f" {el.get('name')!r}" if el.get("name") else ""

    @staticmethod
    def _needs_outgoing(el: etree._Element) -> bool:
        kind = _local(el)
        if kind == "endEvent":
            return False
        if kind == "subProcess" and el.get("triggeredByEvent", "false").lower() == "true":
            return False
        if kind == "intermediateThrowEvent" and _bpmn(el, "linkEventDefinition"):
            return False
        if el.get("isForCompensation", "false").lower() == "true":
            return False
        if kind == "boundaryEvent" and _bpmn(el, "compensateEventDefinition"):
            return False
        return True


def lint(data: bytes, file: str, *, operators: set[str] | None,
         departments: set[str] | None = None) -> list[Finding]:
    """Every problem of one BPMN document, ordered by line.

    `operators`: the registered handler ids (None: do not check operators). `departments`:
    the only department names a lane may give; None accepts the departments of the shipped
    directory (onething/data/directory.toml) and any name that ends like a department's
    (…局, …办, …中心, …政府, …) — the directory does not list every body a matter involves
    (a bank branch, a contractor).
    """
    try:
        root = parse_xml(data, file)
    except BpmnError as exc:
        return [_load_finding(exc, file)]
    linter = _Linter(root, file, set(operators) if operators is not None else None, departments)
    findings = linter.run()
    try:
        load_bpmn(data, file, operators=operators)
    except BpmnError as exc:
        refused = _load_finding(exc, file)
        # load_bpmn stops at the first expression or operator; the checks above report
        # each of them with its own line, so its refusal is only kept when they saw none
        own = {"timer", "refused-expression", "unknown-handler"}
        if refused.code not in own or not any(f.code in own for f in findings):
            findings.append(refused)
    order = {"error": 0, "warning": 1}
    return sorted(findings, key=lambda f: (f.line or 0, order.get(f.severity, 2), f.element or ""))
