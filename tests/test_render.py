"""Tests for onething.bpmn.render: an SVG drawn from BPMN DI, coloured by case marks."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from lxml import etree

from onething.bpmn.render import STATES, ElementMark, render_svg
from onething.errors import BpmnError

DATA = Path(__file__).parent / "data"
CATALOG = Path(__file__).parent.parent / "onething" / "processes"
SIMPLE = (DATA / "render_simple.bpmn").read_bytes()
KINDS = (DATA / "render_kinds.bpmn").read_bytes()
SVG = "http://www.w3.org/2000/svg"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"


def parse(svg: str) -> etree._Element:
    return etree.fromstring(svg.encode())


def groups(root: etree._Element) -> dict[str, list[etree._Element]]:
    out: dict[str, list[etree._Element]] = {}
    for g in root.iter(f"{{{SVG}}}g"):
        if g.get("data-element-id") is not None:
            out.setdefault(g.get("data-element-id"), []).append(g)
    return out


def group(root: etree._Element, element_id: str) -> etree._Element:
    (g,) = groups(root)[element_id]
    return g


def visible_text(g: etree._Element) -> str:
    """The text drawn in a group (not its tooltip), lines joined, compared loosely."""
    text = "".join("".join(t.itertext()) for t in g.iter(f"{{{SVG}}}text"))
    return squash(text)


def squash(text: str) -> str:
    # NFKC maps the vertical punctuation of upright lane names back to plain forms
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def di_elements(bpmn: bytes) -> dict[str, etree._Element]:
    """Every semantic element that has a DI shape or edge in the file, by id."""
    root = etree.fromstring(bpmn)
    by_id = {el.get("id"): el for el in root.iter(f"{{{BPMN}}}*") if el.get("id")}
    refs = [di.get("bpmnElement") for di in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge")]
    return {ref: by_id[ref] for ref in refs}


def view_box(root: etree._Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in root.get("viewBox").split())
    return x, y, x + w, y + h


def test_output_is_a_standalone_svg_document():
    svg = render_svg(SIMPLE)
    root = parse(svg)
    assert root.tag == f"{{{SVG}}}svg"
    assert "Noto Sans CJK SC" in root.get("font-family")
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0
    x0, y0, x1, y1 = view_box(root)
    for bounds in etree.fromstring(SIMPLE).iter(f"{{{DC}}}Bounds"):
        bx, by = float(bounds.get("x")), float(bounds.get("y"))
        assert x0 < bx and y0 < by
        assert bx + float(bounds.get("width")) < x1 and by + float(bounds.get("height")) < y1


def test_every_element_with_di_is_one_group():
    root = parse(render_svg(SIMPLE))
    drawn = groups(root)
    expected = di_elements(SIMPLE)
    assert set(drawn) == set(expected)
    assert all(len(gs) == 1 for gs in drawn.values())
    for element_id, el in expected.items():
        assert drawn[element_id][0].get("data-element-type") == etree.QName(el).localname


def test_every_name_is_drawn_in_its_group():
    root = parse(render_svg(SIMPLE))
    for element_id, el in di_elements(SIMPLE).items():
        name = el.get("name")
        if name:
            assert visible_text(group(root, element_id)) == squash(name), element_id
            assert group(root, element_id).findtext(f"{{{SVG}}}title").startswith(name)


def test_long_cjk_task_name_wraps_inside_its_box():
    g = group(parse(render_svg(SIMPLE)), "sign")
    lines = [t.text for t in g.iter(f"{{{SVG}}}tspan")]
    assert len(lines) > 1 and "".join(lines) == "领办部门签收并制定联合处置方案"
    assert max(len(line) for line in lines) * 12 <= 100 - 10   # one CJK char ≈ one font size


def test_markers_icons_and_flow_decorations():
    root = parse(render_svg(SIMPLE))
    assert group(root, "collaborate").find(f".//{{{SVG}}}g[@data-marker='parallel']") is not None
    assert group(root, "register").find(f".//{{{SVG}}}g[@data-marker='parallel']") is None
    assert group(root, "register").find(f".//{{{SVG}}}g[@data-icon='userTask']") is not None
    assert group(root, "remind").find(f".//{{{SVG}}}g[@data-icon='serviceTask']") is not None
    assert group(root, "summarize").find(f".//{{{SVG}}}g[@data-icon='scriptTask']") is not None
    assert group(root, "is_matter").find(f".//{{{SVG}}}g[@data-icon='exclusive']") is not None
    assert group(root, "start").find(f".//{{{SVG}}}g[@data-icon='message']") is not None
    timer = group(root, "sign_warning")
    assert timer.find(f".//{{{SVG}}}g[@data-icon='timer']") is not None
    circles = timer.findall(f"{{{SVG}}}circle")
    assert len(circles) == 2 and all(c.get("stroke-dasharray") for c in circles)   # non-interrupting
    end = group(root, "end").find(f"{{{SVG}}}circle")
    assert float(end.get("stroke-width")) > float(group(root, "start").find(f"{{{SVG}}}circle").get("stroke-width"))
    assert group(root, "f_no").find(".//*[@data-marker='default']") is not None
    assert group(root, "f_yes").find(".//*[@data-marker='default']") is None
    assert "arrow" in group(root, "f_yes").find(f"{{{SVG}}}path").get("marker-end")


def test_marks_colour_their_elements_and_flows():
    marks = {
        "start": ElementMark("done"),
        "register": ElementMark("done", "调度中心 · 李四 · 12-04 09:12"),
        "collaborate": ElementMark("active", "县自然资源局 · 王五"),
        "summarize": ElementMark("overdue", "超期 2 天"),
        "remind": ElementMark("cancelled"),
    }
    root = parse(render_svg(SIMPLE, marks=marks))
    for element_id, mark in marks.items():
        g = group(root, element_id)
        assert g.get("data-state") == mark.state
        shape = g.find(f"{{{SVG}}}rect[@rx='10']") if element_id != "start" else g.find(f"{{{SVG}}}circle")
        assert shape.get("stroke") == STATES[mark.state].stroke
        assert shape.get("fill") == STATES[mark.state].fill
    assert group(root, "remind").find(f"{{{SVG}}}rect[@rx='10']").get("stroke-dasharray")
    plain = group(root, "reply")
    assert plain.get("data-state") is None
    assert plain.find(f"{{{SVG}}}rect").get("stroke") not in {s.stroke for s in STATES.values()}
    # a flow whose source is done and whose target was reached is drawn as taken
    taken = group(root, "f_start_register")
    assert taken.get("data-state") == "taken"
    assert taken.find(f"{{{SVG}}}path").get("stroke") == STATES["done"].stroke
    assert group(root, "f_reply_end").get("data-state") is None
    # notes are drawn, and a legend names every state
    note = root.find(f".//{{{SVG}}}g[@data-note-for='register']")
    assert squash("".join(note.itertext())) == squash("调度中心 · 李四 · 12-04 09:12")
    assert root.find(f".//{{{SVG}}}g[@data-note-for='start']") is None   # no note given
    legend = root.findall(f".//{{{SVG}}}g[@data-legend]")
    assert [g.get("data-legend") for g in legend] == list(STATES)


LOOP = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
  xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="d" targetNamespace="t">
  <bpmn:process id="loop" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:userTask id="a" name="dispatch" />
    <bpmn:exclusiveGateway id="g" default="f_back" />
    <bpmn:userTask id="b" name="handle" />
    <bpmn:sequenceFlow id="f_s_a" sourceRef="s" targetRef="a" />
    <bpmn:sequenceFlow id="f_a_g" sourceRef="a" targetRef="g" />
    <bpmn:sequenceFlow id="f_back" sourceRef="g" targetRef="a" />
    <bpmn:sequenceFlow id="f_on" sourceRef="g" targetRef="b" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="dd"><bpmndi:BPMNPlane id="p" bpmnElement="loop">
    <bpmndi:BPMNShape id="s_di" bpmnElement="s"><dc:Bounds x="0" y="22" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="a_di" bpmnElement="a"><dc:Bounds x="80" y="0" width="100" height="80" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="g_di" bpmnElement="g"><dc:Bounds x="220" y="15" width="50" height="50" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="b_di" bpmnElement="b"><dc:Bounds x="320" y="0" width="100" height="80" /></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="e1" bpmnElement="f_s_a"><di:waypoint x="36" y="40" /><di:waypoint x="80" y="40" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e2" bpmnElement="f_a_g"><di:waypoint x="180" y="40" /><di:waypoint x="220" y="40" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e3" bpmnElement="f_back"><di:waypoint x="245" y="15" /><di:waypoint x="245" y="-20" /><di:waypoint x="130" y="-20" /><di:waypoint x="130" y="0" /></bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="e4" bpmnElement="f_on"><di:waypoint x="270" y="40" /><di:waypoint x="320" y="40" /></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_a_loop_back_is_not_taken_just_because_both_ends_are_done():
    done = {i: ElementMark("done") for i in ("s", "a", "g")}
    root = parse(render_svg(LOOP, marks=done | {"b": ElementMark("active")}))
    assert {i for i in ("f_s_a", "f_a_g", "f_on", "f_back")
            if group(root, i).get("data-state") == "taken"} == {"f_s_a", "f_a_g", "f_on"}
    # the only way out that was reached is taken, even when it loops back
    root = parse(render_svg(LOOP, marks=done))
    assert group(root, "f_back").get("data-state") == "taken"
    # a flow's own mark wins over the inference
    root = parse(render_svg(LOOP, marks=done | {"f_back": ElementMark("done")}))
    assert group(root, "f_back").get("data-state") == "done"


def test_no_legend_without_marks_and_title_on_request():
    plain = parse(render_svg(SIMPLE))
    assert plain.find(f".//{{{SVG}}}g[@data-legend]") is None
    titled = parse(render_svg(SIMPLE, title="案件 2024-0001 <违建>"))
    header = titled.find(f".//{{{SVG}}}g[@data-role='header']")
    assert "案件 2024-0001 <违建>" in "".join(header.itertext())


def test_names_from_the_file_are_escaped():
    hostile = SIMPLE.replace('name="受理登记"'.encode(),
                             'name="&lt;script&gt;alert(1)&lt;/script&gt;受理"'.encode())
    svg = render_svg(hostile, marks={"register": ElementMark("done", '<img src=x onerror="y">')})
    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = parse(svg)
    assert not list(root.iter(f"{{{SVG}}}script"))
    assert "<script>alert(1)</script>受理" in "".join(group(root, "register").itertext())


@pytest.mark.parametrize("entity", [b'SYSTEM "file:///etc/passwd"', b'"lol lol lol"'])
def test_entity_declarations_are_refused(entity: bytes):
    doctype = b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x ' + entity + b'>]>\n'
    hostile = doctype + SIMPLE.split(b"?>", 1)[1].replace('name="受理登记"'.encode(), b'name="&x;"')
    with pytest.raises(BpmnError, match="DOCTYPE|entity"):
        render_svg(hostile)


def test_a_file_without_di_is_a_clear_error():
    no_di = re.sub(rb"<bpmndi:BPMNDiagram.*</bpmndi:BPMNDiagram>", b"", SIMPLE, flags=re.S)
    with pytest.raises(BpmnError, match=r"no BPMN DI for process 'render_simple'") as info:
        render_svg(no_di)
    assert info.value.element == "render_simple"


def test_unknown_process_and_bad_xml_are_clear_errors():
    with pytest.raises(BpmnError, match="no process 'nope'"):
        render_svg(SIMPLE, process_id="nope")
    with pytest.raises(BpmnError, match="not well-formed XML"):
        render_svg(b"<bpmn:definitions")
    with pytest.raises(BpmnError, match="empty"):
        render_svg(b"  ")
    with pytest.raises(BpmnError, match="not a BPMN 2.0 document"):
        render_svg(b"<svg/>")


def test_process_id_selects_the_collaboration_plane():
    assert render_svg(SIMPLE, process_id="render_simple") == render_svg(SIMPLE)


def test_an_element_drawn_twice_in_the_di_is_drawn_once():
    shape = b'<bpmndi:BPMNShape id="dup" bpmnElement="register"><dc:Bounds x="700" y="100" width="100" height="80" /></bpmndi:BPMNShape>'
    twice = SIMPLE.replace(b"</bpmndi:BPMNPlane>", shape + b"</bpmndi:BPMNPlane>")
    assert len(groups(parse(render_svg(twice)))["register"]) == 1


def test_unknown_mark_state_is_refused():
    with pytest.raises(ValueError, match="unknown mark state 'finished'"):
        ElementMark("finished")


def test_every_kind_of_element_draws():
    marks = {element_id: ElementMark(state, element_id)
             for element_id, state in zip(di_elements(KINDS), list(STATES) * 100)}
    for given in (None, marks):
        root = parse(render_svg(KINDS, marks=given))
        drawn = groups(root)
        assert set(drawn) == set(di_elements(KINDS))
        assert all(len(gs) == 1 for gs in drawn.values())
    kinds = {g.get("data-element-type") for gs in drawn.values() for g in gs}
    assert {"messageFlow", "association", "dataStoreReference", "dataObjectReference", "group",
            "textAnnotation", "callActivity", "eventBasedGateway", "complexGateway"} <= kinds
    icons = {g.get("data-icon") for g in root.iter(f"{{{SVG}}}g") if g.get("data-icon")}
    assert {"timer", "message", "signal", "error", "escalation", "conditional", "terminate", "link",
            "compensate", "sendTask", "receiveTask", "manualTask", "businessRuleTask"} <= icons
    markers = {g.get("data-marker") for g in root.iter(f"{{{SVG}}}g") if g.get("data-marker")}
    assert {"sequential", "loop", "collapsed"} <= markers


@pytest.mark.parametrize("path", sorted(CATALOG.glob("*.bpmn")), ids=lambda p: p.stem)
def test_catalog_processes_render(path: Path):
    data = path.read_bytes()
    root = parse(render_svg(data, process_id=path.stem))
    drawn = groups(root)
    assert set(drawn) == set(di_elements(data))
    assert all(len(gs) == 1 for gs in drawn.values())
