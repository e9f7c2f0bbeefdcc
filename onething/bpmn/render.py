"""Draw a BPMN diagram as a standalone SVG from its DI, optionally coloured by case state."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from ..errors import BpmnError

__all__ = ["ElementMark", "STATES", "StateStyle", "render_svg"]

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
SVG = "http://www.w3.org/2000/svg"

FONT_FAMILY = ("'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', "
               "'PingFang SC', sans-serif")
MAX_BPMN_BYTES = 5 * 1024 * 1024
MARGIN = 20.0
LINE = 1.25            # line height, in font sizes
TASK_FONT = 12.0
LABEL_FONT = 11.0
NOTE_FONT = 10.0
BAND = 30.0            # width of the name band of pools and lanes
INK = "#1f2328"


@dataclass(frozen=True)
class ElementMark:
    """What happened to one element in a case: its state and who did it."""

    state: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown mark state {self.state!r}; expected one of {', '.join(STATES)}")


@dataclass(frozen=True)
class StateStyle:
    """How elements in one state are drawn: colours, stroke, and the legend's words."""

    fill: str
    stroke: str
    text: str
    width: float = 2.0
    dash: str | None = None
    halo: str | None = None
    label: str = ""


_PLAIN = StateStyle("#ffffff", INK, INK)
STATES: dict[str, StateStyle] = {
    "done": StateStyle("#e6f4ea", "#2e7d32", "#1b5e20", 2.0, label="已完成 done"),
    "active": StateStyle("#e3f0fd", "#1565c0", "#0d47a1", 3.0, halo="#ffc107", label="办理中 active"),
    "overdue": StateStyle("#fdeaea", "#c62828", "#b71c1c", 3.0, halo="#ef9a9a", label="已超期 overdue"),
    "cancelled": StateStyle("#f2f2f2", "#9e9e9e", "#8a8a8a", 2.0, dash="5 3", label="已取消 cancelled"),
}

_ACTIVITIES = {"task", "userTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
               "manualTask", "businessRuleTask", "callActivity", "subProcess", "transaction",
               "adHocSubProcess"}
_EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
           "boundaryEvent"}
_GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
             "complexGateway"}
_DECIDING = {"exclusiveGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
_DATA = {"dataObjectReference", "dataStoreReference", "dataObject", "dataInput", "dataOutput"}
_WORD = re.compile(r"[A-Za-z0-9_]+")
# punctuation as it is written in vertical text (Unicode vertical presentation forms)
_VERTICAL = dict(zip("（）《》「」『』【】〔〕：、，。；！？—…“”‘’",
                     "︵︶︽︾﹁﹂﹃﹄︻︼︹︺︓︑︐︒︔︕︖︱︙﹁﹂﹃﹄"))
_PHRASE_END = set("、，：；。！？,;:")
_NO_LINE_START = set("，。、；：！？）》」』】〉,.;:!?)]}…·")


# ---------------------------------------------------------------- geometry and model


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class _Shape:
    el: etree._Element
    kind: str
    box: _Box
    label: _Box | None
    di: etree._Element


@dataclass(frozen=True)
class _Edge:
    el: etree._Element
    kind: str
    points: tuple[tuple[float, float], ...]
    label: _Box | None


@dataclass
class _Canvas:
    prefix: str
    marks: Mapping[str, ElementMark]
    ids: dict[str, etree._Element]
    attached: dict[str, list[_Box]] = field(default_factory=dict)   # task id -> boundary events
    taken: set[str] = field(default_factory=set)                      # flows the case took
    layers: dict[str, etree._Element] = field(default_factory=dict)
    extent: list[float] = field(default_factory=lambda: [math.inf, math.inf, -math.inf, -math.inf])

    def include(self, x0: float, y0: float, x1: float, y1: float) -> None:
        e = self.extent
        e[0], e[1], e[2], e[3] = min(e[0], x0), min(e[1], y0), max(e[2], x1), max(e[3], y1)

    def style(self, element_id: str) -> StateStyle:
        mark = self.marks.get(element_id)
        return STATES[mark.state] if mark else _PLAIN


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _bounds(el: etree._Element | None) -> _Box | None:
    b = el.find(f"{{{DC}}}Bounds") if el is not None else None
    if b is None:
        return None
    try:
        values = [float(b.get(k, "0")) for k in ("x", "y", "width", "height")]
    except ValueError:
        return None
    return _Box(*values) if all(math.isfinite(v) for v in values) else None


def _waypoints(edge: etree._Element) -> tuple[tuple[float, float], ...]:
    points = []
    for wp in edge.findall(f"{{{DI}}}waypoint"):
        try:
            x, y = float(wp.get("x", "0")), float(wp.get("y", "0"))
        except ValueError:
            continue
        if math.isfinite(x) and math.isfinite(y):
            points.append((x, y))
    return tuple(points)


# ---------------------------------------------------------------- parsing


def _parse(data: bytes) -> etree._Element:
    """Parse untrusted BPMN bytes: no entities, no network, no DOCTYPE."""
    if not data or not data.strip():
        raise BpmnError("the BPMN document is empty")
    if len(data) > MAX_BPMN_BYTES:
        raise BpmnError(f"the BPMN document is larger than {MAX_BPMN_BYTES // 2**20} MiB")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BpmnError("a DOCTYPE (entity declarations) is not allowed in a BPMN file")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise BpmnError(f"not well-formed XML: {exc.msg}", line=exc.lineno or None) from None
    except ValueError as exc:
        raise BpmnError(f"cannot be read as XML: {exc}") from None
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.doctype:
        raise BpmnError("a DOCTYPE (entity declarations) is not allowed in a BPMN file")
    if root.tag != f"{{{BPMN}}}definitions":
        raise BpmnError(f"not a BPMN 2.0 document: the root element is {root.tag!r}")
    return root


def _index(root: etree._Element) -> dict[str, etree._Element]:
    return {el.get("id"): el for el in root.iter(f"{{{BPMN}}}*") if el.get("id")}


def _default_process(root: etree._Element) -> str | None:
    processes = root.findall(f"{{{BPMN}}}process")
    executable = [p for p in processes if p.get("isExecutable", "").lower() == "true"]
    chosen = (executable or processes or [None])[0]
    return chosen.get("id") if chosen is not None else None


def _find_plane(root: etree._Element, process_id: str | None) -> etree._Element:
    planes = [p for p in root.iter(f"{{{BPMNDI}}}BPMNPlane") if len(p)]
    if process_id is None:
        process_id = _default_process(root)
        if process_id is None:
            if planes:
                return planes[0]
            raise BpmnError("no BPMN DI in the document (no process, no diagram)")
    elif all(p.get("id") != process_id for p in root.findall(f"{{{BPMN}}}process")):
        raise BpmnError(f"no process {process_id!r} in the BPMN document")
    targets = {process_id} | {
        collab.get("id")
        for collab in root.findall(f"{{{BPMN}}}collaboration")
        for part in collab.findall(f"{{{BPMN}}}participant")
        if part.get("processRef") == process_id
    }
    for plane in planes:
        if plane.get("bpmnElement") in targets:
            return plane
    raise BpmnError(f"no BPMN DI for process {process_id!r}: draw it in a modeler "
                    "(bpmn.io, Camunda Modeler) so the file carries bpmndi:BPMNDiagram",
                    element=process_id)


def _collect(plane: etree._Element, ids: dict[str, etree._Element]) -> tuple[list[_Shape], list[_Edge]]:
    shapes, edges, seen = [], [], set()
    for di in plane:
        el = ids.get(di.get("bpmnElement", ""))
        if el is None or di.get("bpmnElement") in seen:   # unknown or drawn twice: first wins
            continue
        seen.add(di.get("bpmnElement"))
        label = _bounds(di.find(f"{{{BPMNDI}}}BPMNLabel"))
        if di.tag == f"{{{BPMNDI}}}BPMNShape":
            box = _bounds(di)
            if box is not None:
                shapes.append(_Shape(el, _local(el), box, label, di))
        elif di.tag == f"{{{BPMNDI}}}BPMNEdge":
            points = _waypoints(di)
            if len(points) >= 2:
                edges.append(_Edge(el, _local(el), points, label))
    return shapes, edges


# ---------------------------------------------------------------- text


def _char_width(ch: str, size: float) -> float:
    return size if unicodedata.east_asian_width(ch) in "WF" else 0.55 * size


def _text_width(text: str, size: float) -> float:
    return sum(_char_width(ch, size) for ch in text)


def _tokens(text: str, phrases: bool = False) -> list[str]:
    """Break opportunities: each space, each ASCII word, and each CJK character (or, with
    `phrases`, each run of CJK characters up to a 、，： kind of separator)."""
    out: list[str] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or _breaks(text[i - 1], text[i], phrases):
            out.append(" " if text[start:i].isspace() else text[start:i])
            start = i
    return out


def _breaks(prev: str, ch: str, phrases: bool) -> bool:
    if prev.isspace() or ch.isspace():
        return True
    if not _is_wide(prev) and not _is_wide(ch):
        return False                                 # inside an ASCII word
    return not (phrases and _is_wide(prev) and _is_wide(ch) and prev not in _PHRASE_END)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _wrap(text: str, width: float, size: float, phrases: bool = False) -> list[str]:
    lines: list[str] = []
    for paragraph in text.replace("\r", "").split("\n"):
        lines.extend(_wrap_paragraph(paragraph.strip(), width, size, phrases) or [""])
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _wrap_paragraph(text: str, width: float, size: float, phrases: bool) -> list[str]:
    lines: list[str] = []
    line = ""
    tokens = _tokens(text, phrases)
    for token in tokens if phrases else _split_long(tokens, width, size):
        if token == " " and not line:
            continue
        if line and _text_width(line + token, size) > width:
            if token[0] in _NO_LINE_START:      # keep closing punctuation on its line
                line += token
                continue
            lines.append(line.rstrip())
            line = "" if token == " " else token
        else:
            line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _split_long(tokens: Iterable[str], width: float, size: float) -> Iterable[str]:
    for token in tokens:
        if len(token) > 1 and _text_width(token, size) > width:
            yield from token          # a word longer than the line breaks anywhere
        else:
            yield token


def _balanced(text: str, width: float, size: float) -> list[str]:
    """Wrap into as few lines as `_wrap` does, with even lines (no orphan), breaking after
    a separator (、：，) when that costs no extra line."""
    lines = _wrap(text, width, size)
    if len(lines) < 2:
        return lines
    for phrases in (True, False):
        trial = _text_width(text.replace("\n", ""), size) / len(lines)
        while trial <= width:
            candidate = _wrap(text, trial, size, phrases)
            if (len(candidate) <= len(lines) and not _splits_words(text, candidate)
                    and max(_text_width(line, size) for line in candidate) <= width):
                return candidate
            trial += size / 2
    return lines


def _splits_words(text: str, lines: Sequence[str]) -> bool:
    """True if wrapping cut an ASCII word (or number) in two."""
    return _WORD.findall(text) != [w for line in lines for w in _WORD.findall(line)]


def _fit(text: str, width: float, height: float, size: float,
         smallest: float = 9.0) -> tuple[list[str], float]:
    """Wrap text into a box, shrinking the font and then cutting with an ellipsis if needed."""
    width, height = max(width, size), max(height, smallest * LINE)   # degenerate boxes
    room = (height / (smallest * LINE) + 1) * (width / (0.55 * smallest) + 1)
    text = text[: int(room) + 1]                     # more than fits is cut anyway
    current = size
    while True:
        lines = _balanced(text, width, current)
        if len(lines) * current * LINE <= height or current <= smallest:
            break
        current -= 1
    most = max(1, int(height // (current * LINE)))
    if len(lines) > most:
        lines = lines[:most]
        last = lines[-1]
        while last and _text_width(last + "…", current) > width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines, current


# ---------------------------------------------------------------- svg helpers


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: object) -> etree._Element:
    node = etree.SubElement(parent, f"{{{SVG}}}{tag}")
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        number = isinstance(value, float | int) and not isinstance(value, bool)
        node.set(name, _num(value) if number else str(value))
    if text is not None:
        node.text = text
    return node


def _path(points: Sequence[tuple[float, float]], close: bool = False) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{_num(x)},{_num(y)}" for i, (x, y) in enumerate(points))
    return d + (" Z" if close else "")


def _text(parent: etree._Element, lines: Sequence[str], x: float, top: float, size: float,
          fill: str = INK, anchor: str = "middle", **attrs: object) -> etree._Element:
    """Lines of text whose first line box starts at `top`; baselines are computed, not guessed."""
    node = _el(parent, "text", x=x, y=top, font_size=size, fill=fill, text_anchor=anchor, **attrs)
    step = size * LINE
    for i, line in enumerate(lines):
        baseline = top + i * step + (step - size) / 2 + size * 0.88
        _el(node, "tspan", line, x=x, y=baseline)
    return node


def _clip(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _text_block(canvas: _Canvas, parent: etree._Element, text: str, cx: float, top: float,
                width: float, size: float, fill: str) -> None:
    lines = _balanced(_clip(text), width, size)
    if not lines:
        return
    _text(parent, lines, cx, top, size, fill=fill)
    half = max(_text_width(line, size) for line in lines) / 2
    canvas.include(cx - half, top, cx + half, top + len(lines) * size * LINE)


def _group(canvas: _Canvas, layer: str, el: etree._Element, kind: str) -> etree._Element:
    element_id = el.get("id", "")
    mark = canvas.marks.get(element_id)
    g = _el(canvas.layers[layer], "g", data_element_id=element_id, data_element_type=kind,
            data_state=mark.state if mark else None)
    tooltip = " · ".join(part for part in (el.get("name", "").strip() or element_id,
                                              mark.note if mark else "") if part)
    _el(g, "title", _clip(tooltip, 500))
    return g


def _stroke(style: StateStyle, width: float | None = None) -> dict[str, object]:
    return {"fill": style.fill, "stroke": style.stroke,
            "stroke_width": width if width is not None else style.width,
            "stroke_dasharray": style.dash}


# ---------------------------------------------------------------- pools and lanes


def _draw_container(canvas: _Canvas, shape: _Shape) -> None:
    g = _group(canvas, "containers", shape.el, shape.kind)
    b, style = shape.box, canvas.style(shape.el.get("id", ""))
    fill = "#ffffff" if shape.kind == "participant" else "none"
    _el(g, "rect", x=b.x, y=b.y, width=b.w, height=b.h, fill=fill, stroke=style.stroke,
        stroke_width=1.5)
    canvas.include(b.x, b.y, b.right, b.bottom)
    name = shape.el.get("name", "").strip()
    horizontal = shape.di.get("isHorizontal", "true").lower() != "false"
    black_box = shape.kind == "participant" and not shape.el.get("processRef")
    if black_box:
        lines, size = _fit(name, b.w - 20, b.h - 4, TASK_FONT)
        _text(g, lines, b.cx, b.cy - len(lines) * size * LINE / 2, size, fill=style.text)
        return
    if shape.kind == "participant":
        if horizontal:
            _el(g, "path", d=_path([(b.x + BAND, b.y), (b.x + BAND, b.bottom)]), stroke=style.stroke,
                stroke_width=1.5, fill="none")
        else:
            _el(g, "path", d=_path([(b.x, b.y + BAND), (b.right, b.y + BAND)]), stroke=style.stroke,
                stroke_width=1.5, fill="none")
    if name:
        _band_label(g, name, b, horizontal, style.text)


def _band_label(g: etree._Element, name: str, b: _Box, horizontal: bool, fill: str) -> None:
    """A pool or lane name in its band: CJK stacked upright if it fits, else rotated like bpmn.io."""
    size = TASK_FONT
    if not horizontal:
        lines, size = _fit(name, b.w - 10, BAND - 2, size)
        _text(g, lines, b.cx, b.y + (BAND - len(lines) * size * LINE) / 2, size, fill=fill)
        return
    cx, cy = b.x + BAND / 2, b.cy
    step = size * 1.15
    if all(_is_wide(ch) or ch in _VERTICAL for ch in name) and len(name) * step <= b.h - 12:
        node = _el(g, "text", x=cx, y=cy, font_size=size, fill=fill, text_anchor="middle")
        top = cy - len(name) * step / 2
        for i, ch in enumerate(name):
            _el(node, "tspan", _VERTICAL.get(ch, ch), x=cx, y=top + i * step + size * 0.88)
        return
    lines, size = _fit(name, b.h - 12, BAND - 2, size)
    top = cy - len(lines) * size * LINE / 2   # in the rotated frame the band is vertical
    _text(g, lines, cx, top, size, fill=fill, transform=f"rotate(-90 {_num(cx)} {_num(cy)})")


# ---------------------------------------------------------------- activities


def _draw_activity(canvas: _Canvas, shape: _Shape) -> None:
    expanded = shape.kind in {"subProcess", "transaction", "adHocSubProcess"} and \
        shape.di.get("isExpanded", "false").lower() == "true"
    g = _group(canvas, "containers" if expanded else "nodes", shape.el, shape.kind)
    b, style = shape.box, canvas.style(shape.el.get("id", ""))
    canvas.include(b.x, b.y, b.right, b.bottom)
    if style.halo:
        _el(g, "rect", x=b.x - 4, y=b.y - 4, width=b.w + 8, height=b.h + 8, rx=14, fill="none",
            stroke=style.halo, stroke_width=5, stroke_opacity=0.8)
    width = 4.0 if shape.kind == "callActivity" else style.width
    dash = "2 3" if shape.el.get("triggeredByEvent", "").lower() == "true" else style.dash
    attrs = _stroke(style, width) | {"stroke_dasharray": dash}
    _el(g, "rect", x=b.x, y=b.y, width=b.w, height=b.h, rx=10, **attrs)
    if shape.kind == "transaction":
        _el(g, "rect", x=b.x + 3, y=b.y + 3, width=b.w - 6, height=b.h - 6, rx=8, fill="none",
            stroke=style.stroke, stroke_width=1.5)
    _task_icon(g, shape.kind, b.x + 6, b.y + 5, style.stroke)
    markers = _markers(shape.el, expanded)
    _draw_markers(g, markers, b, style.stroke)
    name = shape.el.get("name", "").strip()
    if not name:
        return
    if expanded:
        lines, size = _fit(name, b.w - 20, 40, TASK_FONT)
        _text(g, lines, b.x + 10, b.y + 6, size, fill=style.text, anchor="start")
        return
    last = b.bottom - 5 - (16 if markers else 0)
    for edge_box in canvas.attached.get(shape.el.get("id", ""), ()):
        if abs(edge_box.cy - b.bottom) < 4:           # a boundary event sits on the bottom edge
            last = min(last, edge_box.y - 1)
    lines, size, top = _task_label(name, b, last, shape.kind in _ICONS)
    _text(g, lines, b.cx, top, size, fill=style.text)


def _task_label(name: str, b: _Box, last: float, icon: bool) -> tuple[list[str], float, float]:
    """Lines, font size and top of a task name: centred, wrapped, clear of icon and markers."""
    first = b.y + 5
    lines, size = _fit(name, b.w - 10, last - first, TASK_FONT)
    height = len(lines) * size * LINE
    top = first + (last - first - height) / 2
    below_icon = b.y + 22
    hits_icon = max(_text_width(line, size) for line in lines) / 2 > b.w / 2 - 24
    if not icon or top + size * (LINE - 1) / 2 >= below_icon or not hits_icon:
        return lines, size, top
    narrow, narrow_size = _fit(name, b.w - 48, last - first, TASK_FONT)
    if not narrow[-1].endswith("…") and narrow_size >= size - 1 and not _splits_words(name, narrow):
        height = len(narrow) * narrow_size * LINE
        return narrow, narrow_size, first + (last - first - height) / 2
    if below_icon + height <= last:                 # room to move the text down under the icon
        return lines, size, below_icon + (last - below_icon - height) / 2
    return lines, size, top


def _markers(el: etree._Element, expanded: bool) -> list[str]:
    out = []
    mi = el.find(f"{{{BPMN}}}multiInstanceLoopCharacteristics")
    if mi is not None:
        out.append("sequential" if mi.get("isSequential", "").lower() == "true" else "parallel")
    elif el.find(f"{{{BPMN}}}standardLoopCharacteristics") is not None:
        out.append("loop")
    if el.get("isForCompensation", "").lower() == "true":
        out.append("compensation")
    kind = _local(el)
    if kind == "adHocSubProcess":
        out.append("adhoc")
    if kind in {"subProcess", "transaction", "adHocSubProcess", "callActivity"} and not expanded:
        if kind != "callActivity" or el.get("calledElement"):
            out.append("collapsed")
    return out


def _draw_markers(g: etree._Element, markers: list[str], b: _Box, ink: str) -> None:
    gap = 16.0
    x = b.cx - (len(markers) - 1) * gap / 2
    y = b.bottom - 9
    for marker in markers:
        _MARKERS[marker](_el(g, "g", data_marker=marker), x, y, ink)
        x += gap


def _marker_parallel(g: etree._Element, x: float, y: float, ink: str) -> None:
    for dx in (-4.5, 0, 4.5):
        _el(g, "rect", x=x + dx - 1, y=y - 6, width=2, height=12, fill=ink)


def _marker_sequential(g: etree._Element, x: float, y: float, ink: str) -> None:
    for dy in (-4.5, 0, 4.5):
        _el(g, "rect", x=x - 6, y=y + dy - 1, width=12, height=2, fill=ink)


def _marker_loop(g: etree._Element, x: float, y: float, ink: str) -> None:
    _el(g, "path", d=f"M{_num(x - 3)},{_num(y + 5)} A5.5,5.5 0 1 1 {_num(x + 3)},{_num(y + 5)}",
        fill="none", stroke=ink, stroke_width=1.5)
    _el(g, "path", d=_path([(x + 0.5, y + 2.5), (x + 3, y + 5), (x + 0.5, y + 7.5)]), fill="none",
        stroke=ink, stroke_width=1.5)


def _marker_compensation(g: etree._Element, x: float, y: float, ink: str) -> None:
    _el(g, "path", d=_path([(x, y - 4), (x - 6, y), (x, y + 4)], True), fill="none", stroke=ink)
    _el(g, "path", d=_path([(x + 6, y - 4), (x, y), (x + 6, y + 4)], True), fill="none", stroke=ink)


def _marker_adhoc(g: etree._Element, x: float, y: float, ink: str) -> None:
    _el(g, "path", d=f"M{_num(x - 6)},{_num(y + 1)} q3,-5 6,-1 t6,-1", fill="none", stroke=ink,
        stroke_width=1.5)


def _marker_collapsed(g: etree._Element, x: float, y: float, ink: str) -> None:
    _el(g, "rect", x=x - 7, y=y - 7, width=14, height=14, fill="none", stroke=ink, stroke_width=1.2)
    _el(g, "path", d=f"M{_num(x - 4)},{_num(y)} h8 M{_num(x)},{_num(y - 4)} v8", stroke=ink,
        stroke_width=1.5)


_MARKERS = {"parallel": _marker_parallel, "sequential": _marker_sequential, "loop": _marker_loop,
            "compensation": _marker_compensation, "adhoc": _marker_adhoc,
            "collapsed": _marker_collapsed}


def _task_icon(g: etree._Element, kind: str, x: float, y: float, ink: str) -> None:
    draw = _ICONS.get(kind)
    if draw is not None:
        draw(_el(g, "g", data_icon=kind, fill="none", stroke=ink, stroke_width=1.2,
                 stroke_linejoin="round"), x, y)


def _icon_user(g: etree._Element, x: float, y: float) -> None:
    _el(g, "path", d=f"M{_num(x + 1)},{_num(y + 17)} c0,-5 2.5,-7.5 7,-7.5 s7,2.5 7,7.5 z",
        fill="#ffffff")
    _el(g, "circle", cx=x + 8, cy=y + 5.5, r=3.6, fill="#ffffff")


def _icon_service(g: etree._Element, x: float, y: float) -> None:
    cx, cy = x + 8, y + 8.5
    points = []
    for k in range(8):
        a = math.radians(k * 45)
        for da, r in ((-11, 7.6), (11, 7.6), (17, 5.4), (28, 5.4)):
            t = a + math.radians(da)
            points.append((cx + r * math.cos(t), cy + r * math.sin(t)))
    _el(g, "path", d=_path(points, True), fill="#ffffff")
    _el(g, "circle", cx=cx, cy=cy, r=2.4)


def _icon_script(g: etree._Element, x: float, y: float) -> None:
    _el(g, "path", fill="#ffffff",
        d=f"M{_num(x + 4)},{_num(y + 1)} h10 c-3,2.5 -3,5.5 0,8 c3,2.5 3,5.5 0,8 h-10 "
          f"c3,-2.5 3,-5.5 0,-8 c-3,-2.5 -3,-5.5 0,-8 z")
    _el(g, "path", d=f"M{_num(x + 5)},{_num(y + 5)} h6 M{_num(x + 6.5)},{_num(y + 9)} h6 "
                     f"M{_num(x + 5)},{_num(y + 13)} h6")


def _envelope(g: etree._Element, x: float, y: float, w: float, h: float, ink: str,
              filled: bool) -> None:
    _el(g, "rect", x=x, y=y, width=w, height=h, fill=ink if filled else "#ffffff", stroke=ink,
        stroke_width=1.2)
    _el(g, "path", d=_path([(x, y), (x + w / 2, y + h * 0.55), (x + w, y)]), fill="none",
        stroke="#ffffff" if filled else ink, stroke_width=1.2)


def _icon_send(g: etree._Element, x: float, y: float) -> None:
    _envelope(g, x, y + 3, 17, 12, g.get("stroke", INK), True)


def _icon_receive(g: etree._Element, x: float, y: float) -> None:
    _envelope(g, x, y + 3, 17, 12, g.get("stroke", INK), False)


def _icon_manual(g: etree._Element, x: float, y: float) -> None:
    _el(g, "path", fill="#ffffff",
        d=f"M{_num(x + 1)},{_num(y + 9)} l4,-4 h11 v2.5 h-6 h7 v2.5 h-7 h6.5 v2.5 h-6.5 h5.5 "
          f"v2.5 h-11 c-2,0 -3.5,-1.5 -3.5,-3.5 z")


def _icon_rule(g: etree._Element, x: float, y: float) -> None:
    _el(g, "rect", x=x, y=y + 2, width=17, height=13, fill="#ffffff")
    _el(g, "rect", x=x, y=y + 2, width=17, height=4, fill=g.get("stroke", INK))
    _el(g, "path", d=f"M{_num(x)},{_num(y + 10.5)} h17 M{_num(x + 5)},{_num(y + 6)} v9")


_ICONS = {"userTask": _icon_user, "serviceTask": _icon_service, "scriptTask": _icon_script,
          "sendTask": _icon_send, "receiveTask": _icon_receive, "manualTask": _icon_manual,
          "businessRuleTask": _icon_rule}


# ---------------------------------------------------------------- events


def _event_definition(el: etree._Element) -> str | None:
    defs = [_local(child)[: -len("EventDefinition")] for child in el
            if _local(child).endswith("EventDefinition")]
    if len(defs) > 1:
        return "multiple"
    return defs[0] if defs else None


def _draw_event(canvas: _Canvas, shape: _Shape) -> None:
    layer = "boundary" if shape.kind == "boundaryEvent" else "nodes"
    g = _group(canvas, layer, shape.el, shape.kind)
    b, style = shape.box, canvas.style(shape.el.get("id", ""))
    cx, cy, r = b.cx, b.cy, min(b.w, b.h) / 2
    canvas.include(b.x, b.y, b.right, b.bottom)
    if style.halo:
        _el(g, "circle", cx=cx, cy=cy, r=r + 4, fill="none", stroke=style.halo, stroke_width=5,
            stroke_opacity=0.8)
    interrupting = (shape.el.get("cancelActivity", "true").lower() != "false"
                    and shape.el.get("isInterrupting", "true").lower() != "false")
    dash = style.dash or (None if interrupting else "5 3")
    if shape.kind == "endEvent":
        _el(g, "circle", cx=cx, cy=cy, r=r, **_stroke(style, 4.0) | {"stroke_dasharray": dash})
    elif shape.kind == "startEvent":
        _el(g, "circle", cx=cx, cy=cy, r=r, **_stroke(style, 2.0) | {"stroke_dasharray": dash})
    else:
        _el(g, "circle", cx=cx, cy=cy, r=r, **_stroke(style, 1.5) | {"stroke_dasharray": dash})
        _el(g, "circle", cx=cx, cy=cy, r=r - 3, fill="none", stroke=style.stroke,
            stroke_width=1.5, stroke_dasharray=dash)
    definition = _event_definition(shape.el)
    throw = shape.kind in {"endEvent", "intermediateThrowEvent"}
    if definition in _EVENT_ICONS:
        _EVENT_ICONS[definition](_el(g, "g", data_icon=definition), cx, cy, r, style.stroke, throw)
    _external_label(canvas, g, shape, style)


def _ev_timer(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    rr = r * 0.62
    _el(g, "circle", cx=cx, cy=cy, r=rr, fill="#ffffff", stroke=ink, stroke_width=1.5)
    ticks = []
    for k in range(12):
        a = math.radians(k * 30)
        ticks.append(f"M{_num(cx + rr * 0.78 * math.cos(a))},{_num(cy + rr * 0.78 * math.sin(a))} "
                     f"L{_num(cx + rr * math.cos(a))},{_num(cy + rr * math.sin(a))}")
    _el(g, "path", d=" ".join(ticks), stroke=ink, stroke_width=1)
    _el(g, "path", d=_path([(cx, cy - rr * 0.7), (cx, cy), (cx + rr * 0.5, cy + rr * 0.15)]),
        fill="none", stroke=ink, stroke_width=1.5, stroke_linecap="round")


def _ev_message(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    w, h = r * 1.05, r * 0.72
    _envelope(g, cx - w / 2, cy - h / 2, w, h, ink, throw)


def _polygon(g: etree._Element, points: list[tuple[float, float]], ink: str, filled: bool,
             width: float = 1.5) -> None:
    _el(g, "path", d=_path(points, True), fill=ink if filled else "#ffffff", stroke=ink,
        stroke_width=width, stroke_linejoin="round")


def _ev_signal(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.55
    _polygon(g, [(cx, cy - s), (cx + s * 0.95, cy + s * 0.65), (cx - s * 0.95, cy + s * 0.65)],
             ink, throw)


def _ev_error(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.5
    pts = [(cx - s, cy + s), (cx - s * 0.4, cy - s), (cx + s * 0.15, cy + s * 0.1),
           (cx + s, cy - s), (cx + s * 0.4, cy + s), (cx - s * 0.15, cy - s * 0.1)]
    _polygon(g, pts, ink, throw)


def _ev_escalation(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.55
    _polygon(g, [(cx, cy - s), (cx + s * 0.7, cy + s), (cx, cy + s * 0.2), (cx - s * 0.7, cy + s)],
             ink, throw)


def _ev_conditional(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    w, h = r * 0.8, r * 1.0
    _el(g, "rect", x=cx - w / 2, y=cy - h / 2, width=w, height=h, fill="#ffffff", stroke=ink,
        stroke_width=1.2)
    lines = " ".join(f"M{_num(cx - w * 0.3)},{_num(cy - h / 2 + h * k / 5)} h{_num(w * 0.6)}"
                     for k in range(1, 5))
    _el(g, "path", d=lines, stroke=ink, stroke_width=1)


def _ev_terminate(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    _el(g, "circle", cx=cx, cy=cy, r=r * 0.58, fill=ink)


def _ev_link(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.5
    _polygon(g, [(cx - s, cy - s * 0.35), (cx + s * 0.1, cy - s * 0.35), (cx + s * 0.1, cy - s * 0.8),
                 (cx + s, cy), (cx + s * 0.1, cy + s * 0.8), (cx + s * 0.1, cy + s * 0.35),
                 (cx - s, cy + s * 0.35)], ink, throw)


def _ev_compensate(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.45
    _polygon(g, [(cx, cy - s), (cx - s, cy), (cx, cy + s)], ink, throw)
    _polygon(g, [(cx + s, cy - s), (cx, cy), (cx + s, cy + s)], ink, throw)


def _ev_cancel(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.4
    _el(g, "path", d=f"M{_num(cx - s)},{_num(cy - s)} L{_num(cx + s)},{_num(cy + s)} "
                     f"M{_num(cx + s)},{_num(cy - s)} L{_num(cx - s)},{_num(cy + s)}",
        stroke=ink, stroke_width=3.5 if throw else 2.5)


def _ev_multiple(g: etree._Element, cx: float, cy: float, r: float, ink: str, throw: bool) -> None:
    s = r * 0.55
    pts = [(cx + s * math.sin(math.radians(a)), cy - s * math.cos(math.radians(a)))
           for a in range(0, 360, 72)]
    _polygon(g, pts, ink, throw)


_EVENT_ICONS = {"timer": _ev_timer, "message": _ev_message, "signal": _ev_signal,
                "error": _ev_error, "escalation": _ev_escalation, "conditional": _ev_conditional,
                "terminate": _ev_terminate, "link": _ev_link, "compensate": _ev_compensate,
                "cancel": _ev_cancel, "multiple": _ev_multiple}


# ---------------------------------------------------------------- gateways and data


def _draw_gateway(canvas: _Canvas, shape: _Shape) -> None:
    g = _group(canvas, "nodes", shape.el, shape.kind)
    b, style = shape.box, canvas.style(shape.el.get("id", ""))
    canvas.include(b.x, b.y, b.right, b.bottom)
    diamond = [(b.cx, b.y), (b.right, b.cy), (b.cx, b.bottom), (b.x, b.cy)]
    if style.halo:
        _el(g, "path", d=_path([(b.cx, b.y - 6), (b.right + 6, b.cy), (b.cx, b.bottom + 6),
                                (b.x - 6, b.cy)], True),
            fill="none", stroke=style.halo, stroke_width=5, stroke_opacity=0.8)
    _el(g, "path", d=_path(diamond, True), stroke_linejoin="round", **_stroke(style))
    ink = style.stroke
    marker_visible = shape.di.get("isMarkerVisible", "true").lower() != "false"
    if shape.kind != "exclusiveGateway" or marker_visible:
        _gateway_marker(_el(g, "g", data_icon=shape.kind[: -len("Gateway")]), shape.kind, b, ink)
    _external_label(canvas, g, shape, style)


def _gateway_marker(g: etree._Element, kind: str, b: _Box, ink: str) -> None:
    s, cx, cy = min(b.w, b.h), b.cx, b.cy
    if kind == "exclusiveGateway":
        d = s * 0.17
        _el(g, "path", d=f"M{_num(cx - d)},{_num(cy - d)} L{_num(cx + d)},{_num(cy + d)} "
                         f"M{_num(cx + d)},{_num(cy - d)} L{_num(cx - d)},{_num(cy + d)}",
            stroke=ink, stroke_width=s * 0.08, stroke_linecap="round")
    elif kind == "parallelGateway":
        d = s * 0.24
        _el(g, "path", d=f"M{_num(cx - d)},{_num(cy)} L{_num(cx + d)},{_num(cy)} "
                         f"M{_num(cx)},{_num(cy - d)} L{_num(cx)},{_num(cy + d)}",
            stroke=ink, stroke_width=s * 0.08, stroke_linecap="round")
    elif kind == "inclusiveGateway":
        _el(g, "circle", cx=cx, cy=cy, r=s * 0.23, fill="none", stroke=ink, stroke_width=s * 0.06)
    elif kind == "complexGateway":
        d, e = s * 0.24, s * 0.17
        _el(g, "path", d=f"M{_num(cx - d)},{_num(cy)} h{_num(2 * d)} M{_num(cx)},{_num(cy - d)} "
                         f"v{_num(2 * d)} M{_num(cx - e)},{_num(cy - e)} l{_num(2 * e)},{_num(2 * e)} "
                         f"M{_num(cx + e)},{_num(cy - e)} l{_num(-2 * e)},{_num(2 * e)}",
            stroke=ink, stroke_width=s * 0.06, stroke_linecap="round")
    elif kind == "eventBasedGateway":
        _el(g, "circle", cx=cx, cy=cy, r=s * 0.26, fill="none", stroke=ink, stroke_width=1.2)
        _el(g, "circle", cx=cx, cy=cy, r=s * 0.21, fill="none", stroke=ink, stroke_width=1.2)
        _ev_multiple(g, cx, cy, s * 0.26, ink, False)


def _draw_data(canvas: _Canvas, shape: _Shape) -> None:
    g = _group(canvas, "nodes", shape.el, shape.kind)
    b, style = shape.box, canvas.style(shape.el.get("id", ""))
    canvas.include(b.x, b.y, b.right, b.bottom)
    if shape.kind == "dataStoreReference":
        ry = min(b.h * 0.12, 8)
        _el(g, "path", **_stroke(style, 1.5),
            d=f"M{_num(b.x)},{_num(b.y + ry)} a{_num(b.w / 2)},{_num(ry)} 0 0 1 {_num(b.w)},0 "
              f"v{_num(b.h - 2 * ry)} a{_num(b.w / 2)},{_num(ry)} 0 0 1 {_num(-b.w)},0 z")
        _el(g, "path", fill="none", stroke=style.stroke, stroke_width=1.2,
            d=f"M{_num(b.x)},{_num(b.y + ry)} a{_num(b.w / 2)},{_num(ry)} 0 0 0 {_num(b.w)},0")
    else:
        fold = min(b.w, b.h) * 0.3
        _el(g, "path", **_stroke(style, 1.5), d=_path(
            [(b.x, b.y), (b.right - fold, b.y), (b.right, b.y + fold), (b.right, b.bottom),
             (b.x, b.bottom)], True))
        _el(g, "path", fill="none", stroke=style.stroke, stroke_width=1.2,
            d=_path([(b.right - fold, b.y), (b.right - fold, b.y + fold), (b.right, b.y + fold)]))
        if shape.kind == "dataInput" or shape.kind == "dataOutput":
            _ev_link(g, b.x + 9, b.y + 8, 10, style.stroke, shape.kind == "dataOutput")
    _external_label(canvas, g, shape, style)


def _draw_annotation(canvas: _Canvas, shape: _Shape) -> None:
    g = _group(canvas, "nodes", shape.el, shape.kind)
    b = shape.box
    canvas.include(b.x, b.y, b.right, b.bottom)
    _el(g, "path", d=_path([(b.x + 10, b.y), (b.x, b.y), (b.x, b.bottom), (b.x + 10, b.bottom)]),
        fill="none", stroke=INK, stroke_width=1.2)
    text = "".join(shape.el.findtext(f"{{{BPMN}}}text") or "").strip()
    if text:
        lines, size = _fit(text, b.w - 10, max(b.h - 4, LABEL_FONT * LINE), LABEL_FONT)
        _text(g, lines, b.x + 5, b.y + 3, size, anchor="start")


def _draw_group(canvas: _Canvas, shape: _Shape) -> None:
    g = _group(canvas, "containers", shape.el, shape.kind)
    b = shape.box
    canvas.include(b.x, b.y, b.right, b.bottom)
    _el(g, "rect", x=b.x, y=b.y, width=b.w, height=b.h, rx=10, fill="none", stroke=INK,
        stroke_width=1.2, stroke_dasharray="8 3 1 3")
    ref = canvas.ids.get(shape.el.get("categoryValueRef", ""))
    name = (ref.get("value", "") if ref is not None else "").strip()
    if name:
        box = shape.label or _Box(b.x + 5, b.y + 5, b.w - 10, 20)
        _text_block(canvas, g, name, box.cx, box.y, max(box.w, 60), LABEL_FONT, INK)


def _label_place(shape: _Shape) -> tuple[float, float, float]:
    """Centre x, top and wrapping width of an event's or gateway's outside label."""
    if shape.label is not None:
        return shape.label.cx, shape.label.y, max(shape.label.w + 4, 60)
    return shape.box.cx, shape.box.bottom + 5, 90


def _label_bottom(shape: _Shape) -> float:
    name = shape.el.get("name", "").strip()
    if not name:
        return shape.box.bottom
    _, top, width = _label_place(shape)
    return top + len(_balanced(_clip(name), width, LABEL_FONT)) * LABEL_FONT * LINE


def _external_label(canvas: _Canvas, g: etree._Element, shape: _Shape, style: StateStyle) -> None:
    name = shape.el.get("name", "").strip()
    if name:
        cx, top, width = _label_place(shape)
        _text_block(canvas, g, name, cx, top, width, LABEL_FONT, style.text)


# ---------------------------------------------------------------- flows


def _edge_state(canvas: _Canvas, edge: _Edge) -> StateStyle:
    """A flow's own mark, else 'done' when the case is known to have taken it."""
    own = canvas.marks.get(edge.el.get("id", ""))
    if own:
        return STATES[own.state]
    return STATES["done"] if edge.el.get("id") in canvas.taken else _PLAIN


def _taken_flows(ids: Mapping[str, etree._Element], marks: Mapping[str, ElementMark]) -> set[str]:
    """Sequence flows whose source is done and whose target was reached; where a deciding
    gateway reached several targets, a flow that loops back upstream is not counted."""
    outgoing: dict[str, list[etree._Element]] = {}
    for el in ids.values():
        if _local(el) == "sequenceFlow":
            outgoing.setdefault(el.get("sourceRef", ""), []).append(el)
    reached = {i for i, m in marks.items() if m.state in {"done", "active", "overdue"}}
    loops: set[str] | None = None
    taken: set[str] = set()
    for source, flows in outgoing.items():
        if source not in marks or marks[source].state != "done":
            continue
        hits = [f for f in flows if f.get("targetRef") in reached]
        deciding = source in ids and _local(ids[source]) in _DECIDING and len(flows) > 1
        if deciding and len(hits) > 1:
            loops = _loop_backs(ids, outgoing) if loops is None else loops
            hits = [f for f in hits if f.get("id") not in loops]
        taken.update(f.get("id", "") for f in hits)
    return taken


def _loop_backs(ids: Mapping[str, etree._Element],
                outgoing: Mapping[str, list[etree._Element]]) -> set[str]:
    """The back edges of a depth-first walk from the start events: flows that close a loop."""
    roots = [i for i, el in ids.items() if _local(el) == "startEvent"] + list(outgoing)
    state: dict[str, int] = {}                          # 1 on the path, 2 finished
    back: set[str] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(outgoing.get(root, ())))]
        while stack:
            node, flows = stack[-1]
            flow = next(flows, None)
            if flow is None:
                state[node] = 2
                stack.pop()
                continue
            target = flow.get("targetRef", "")
            if state.get(target) == 1:
                back.add(flow.get("id", ""))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(outgoing.get(target, ()))))
    return back


def _draw_edge(canvas: _Canvas, edge: _Edge) -> None:
    g = _group(canvas, "messages" if edge.kind == "messageFlow" else "edges", edge.el, edge.kind)
    style = _edge_state(canvas, edge)
    state = next((k for k, v in STATES.items() if v is style), "plain")
    if style is not _PLAIN and g.get("data-state") is None:
        g.set("data-state", "taken")
    for x, y in edge.points:
        canvas.include(x, y, x, y)
    d = _path(edge.points)
    width = 2.0 if style is not _PLAIN else 1.5
    if edge.kind == "sequenceFlow":
        source = canvas.ids.get(edge.el.get("sourceRef", ""))
        start = None
        if source is not None and edge.el.find(f"{{{BPMN}}}conditionExpression") is not None \
                and _local(source) in _ACTIVITIES:
            start = f"url(#{canvas.prefix}-cond-{state})"
        _el(g, "path", d=d, fill="none", stroke=style.stroke, stroke_width=width,
            stroke_linejoin="round", stroke_dasharray=style.dash if style.dash else None,
            marker_end=f"url(#{canvas.prefix}-arrow-{state})", marker_start=start)
        if source is not None and source.get("default") == edge.el.get("id"):
            _default_slash(g, edge.points, style.stroke)
    elif edge.kind == "messageFlow":
        _el(g, "path", d=d, fill="none", stroke=style.stroke, stroke_width=1.5,
            stroke_dasharray="10 6", marker_start=f"url(#{canvas.prefix}-mstart)",
            marker_end=f"url(#{canvas.prefix}-open)")
    else:
        arrow = edge.kind in {"dataInputAssociation", "dataOutputAssociation"} or \
            edge.el.get("associationDirection") in {"One", "Both"}
        _el(g, "path", d=d, fill="none", stroke=style.stroke, stroke_width=1.5,
            stroke_dasharray="2 4", stroke_linecap="round",
            marker_end=f"url(#{canvas.prefix}-open)" if arrow else None)
    _edge_label(canvas, g, edge, style)


def _default_slash(g: etree._Element, points: Sequence[tuple[float, float]], ink: str) -> None:
    (x0, y0), (x1, y1) = points[0], points[1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    along = min(12.0, length / 2)
    cx, cy = x0 + ux * along, y0 + uy * along
    dx, dy = (ux - uy) * 0.7071 * 7, (uy + ux) * 0.7071 * 7   # 45 degrees to the flow
    _el(g, "path", d=_path([(cx - dx, cy - dy), (cx + dx, cy + dy)]), stroke=ink, stroke_width=1.5,
        data_marker="default")


def _midpoint(points: Sequence[tuple[float, float]]) -> tuple[float, float, bool]:
    """The point halfway along a polyline, and whether its segment there is horizontal."""
    lengths = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(points, points[1:])]
    half = sum(lengths) / 2
    for (a, b), length in zip(zip(points, points[1:]), lengths):
        if half <= length and length:
            t = half / length
            horizontal = abs(b[1] - a[1]) < abs(b[0] - a[0])
            return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, horizontal
        half -= length
    return points[0][0], points[0][1], True


def _edge_label(canvas: _Canvas, g: etree._Element, edge: _Edge, style: StateStyle) -> None:
    """A flow's name; an unnamed conditional flow shows its condition, smaller and grey."""
    name, size, fill = edge.el.get("name", "").strip(), LABEL_FONT, style.text
    if not name and edge.kind == "sequenceFlow":
        condition = " ".join((edge.el.findtext(f"{{{BPMN}}}conditionExpression") or "").split())
        if condition:
            name = condition if len(condition) <= 40 else condition[:39] + "…"
            size, fill = NOTE_FONT, "#57606a"
    if not name:
        return
    if edge.label is not None:
        box = edge.label
        _text_block(canvas, g, name, box.cx, box.y, max(box.w + 4, 60), size, fill)
        return
    x, y, horizontal = _midpoint(edge.points)
    lines = _balanced(_clip(name), 120, size)
    height = len(lines) * size * LINE
    if horizontal:
        _text_block(canvas, g, name, x, y - height - 2, 120, size, fill)
    else:
        half = max(_text_width(line, size) for line in lines) / 2
        _text_block(canvas, g, name, x + half + 5, y - height / 2, 120, size, fill)


def _defs(svg: etree._Element, prefix: str) -> None:
    defs = _el(svg, "defs")
    colours = {"plain": _PLAIN.stroke} | {k: v.stroke for k, v in STATES.items()}
    for state, ink in colours.items():
        m = _el(defs, "marker", id=f"{prefix}-arrow-{state}", viewBox="0 0 20 20", refX=11, refY=10,
                markerWidth=20, markerHeight=20, markerUnits="userSpaceOnUse", orient="auto")
        _el(m, "path", d="M1,5 L11,10 L1,15 Z", fill=ink, stroke=ink, stroke_width=1,
            stroke_linejoin="round")
        m = _el(defs, "marker", id=f"{prefix}-cond-{state}", viewBox="0 0 20 20", refX=-1, refY=10,
                markerWidth=20, markerHeight=20, markerUnits="userSpaceOnUse", orient="auto")
        _el(m, "path", d="M-1,10 L6,6 L13,10 L6,14 Z", fill="#ffffff", stroke=ink, stroke_width=1.2)
    m = _el(defs, "marker", id=f"{prefix}-open", viewBox="0 0 20 20", refX=11, refY=10,
            markerWidth=20, markerHeight=20, markerUnits="userSpaceOnUse", orient="auto")
    _el(m, "path", d="M1,5 L11,10 L1,15", fill="none", stroke=INK, stroke_width=1.5)
    m = _el(defs, "marker", id=f"{prefix}-mstart", viewBox="0 0 20 20", refX=6, refY=10,
            markerWidth=20, markerHeight=20, markerUnits="userSpaceOnUse", orient="auto")
    _el(m, "circle", cx=6, cy=10, r=4, fill="#ffffff", stroke=INK, stroke_width=1.5)


# ---------------------------------------------------------------- notes, legend, title


def _draw_note(canvas: _Canvas, shape: _Shape) -> None:
    mark = canvas.marks.get(shape.el.get("id", ""))
    drawn = shape.kind in _ACTIVITIES | _EVENTS | _GATEWAYS | _DATA
    if mark is None or not mark.note.strip() or not drawn:
        return
    style, b = STATES[mark.state], shape.box
    lines = _wrap(_clip(mark.note.strip()), max(b.w + 80, 220), NOTE_FONT)
    height = len(lines) * NOTE_FONT * LINE
    width = max(_text_width(line, NOTE_FONT) for line in lines)
    if shape.kind in _ACTIVITIES:
        top = b.y - 4 - height - (6 if style.halo else 0)
    else:                                            # events and gateways: under their label
        top = max(b.bottom + (6 if style.halo else 0), _label_bottom(shape)) + 4
    g = _el(canvas.layers["notes"], "g", data_note_for=shape.el.get("id", ""))
    _el(g, "rect", x=b.cx - width / 2 - 3, y=top - 1, width=width + 6, height=height + 2, rx=3,
        fill="#ffffff", fill_opacity=0.85, stroke=style.stroke, stroke_width=0.6)
    _text(g, lines, b.cx, top, NOTE_FONT, fill=style.text)
    canvas.include(b.cx - width / 2 - 3, top - 1, b.cx + width / 2 + 3, top + height + 1)


def _header(canvas: _Canvas, svg: etree._Element, title: str | None, legend: bool) -> float:
    """Title and legend above the diagram; returns the height they take."""
    x0, y0 = canvas.extent[0], canvas.extent[1]
    height = (26.0 if title else 0.0) + (24.0 if legend else 0.0)
    if not height:
        return 0.0
    g = _el(svg, "g", data_role="header")
    top = y0 - height - 6
    if title:
        _text(g, [title], x0, top, 16, anchor="start", font_weight="bold")
        canvas.include(x0, top, x0 + _text_width(title, 16), top + 20)
        top += 26
    if legend:
        x = x0
        for state, style in STATES.items():
            item = _el(g, "g", data_legend=state)
            _el(item, "rect", x=x, y=top + 2, width=22, height=14, rx=4, fill=style.fill,
                stroke=style.stroke, stroke_width=style.width * 0.75, stroke_dasharray=style.dash)
            _text(item, [style.label], x + 28, top + 9 - LABEL_FONT * LINE / 2, LABEL_FONT,
                  fill=style.text, anchor="start")
            x += 28 + _text_width(style.label, LABEL_FONT) + 18
        canvas.include(x0, top, x, top + 18)
    return height


# ---------------------------------------------------------------- entry point


def _draw_shape(canvas: _Canvas, shape: _Shape) -> None:
    kind = shape.kind
    if kind in {"participant", "lane"}:
        _draw_container(canvas, shape)
    elif kind in _ACTIVITIES:
        _draw_activity(canvas, shape)
    elif kind in _EVENTS:
        _draw_event(canvas, shape)
    elif kind in _GATEWAYS:
        _draw_gateway(canvas, shape)
    elif kind in _DATA:
        _draw_data(canvas, shape)
    elif kind == "textAnnotation":
        _draw_annotation(canvas, shape)
    elif kind == "group":
        _draw_group(canvas, shape)


def render_svg(bpmn: bytes, *, process_id: str | None = None,
               marks: Mapping[str, ElementMark] | None = None, title: str | None = None) -> str:
    """Draw the diagram of one process (or its collaboration) as a standalone SVG document.

    `marks` colours elements by what happened to them in a case (see `STATES`) and writes
    each mark's note beside its element; a flow whose source is done and whose target was
    reached is drawn as taken. Every element is one `<g data-element-id=...>` group.
    """
    root = _parse(bpmn)
    plane = _find_plane(root, process_id)
    ids = _index(root)
    shapes, edges = _collect(plane, ids)
    if not shapes:
        raise BpmnError(f"no BPMN DI shapes for process {process_id or plane.get('bpmnElement')!r}",
                        element=process_id or plane.get("bpmnElement"))
    digest = hashlib.sha1(bpmn + plane.get("bpmnElement", "").encode()).hexdigest()[:8]
    canvas = _Canvas(prefix=f"ot{digest}", marks=dict(marks or {}), ids=ids)
    canvas.taken = _taken_flows(ids, canvas.marks)
    for shape in shapes:
        if shape.kind == "boundaryEvent":
            canvas.attached.setdefault(shape.el.get("attachedToRef", ""), []).append(shape.box)
    svg = etree.Element(f"{{{SVG}}}svg", nsmap={None: SVG})
    svg.set("font-family", FONT_FAMILY)
    background = _el(svg, "rect", fill="#ffffff")
    _defs(svg, canvas.prefix)
    if title:
        _el(svg, "title", title)
    for layer in ("containers", "edges", "nodes", "boundary", "messages", "notes"):
        canvas.layers[layer] = _el(svg, "g", data_layer=layer)
    for shape in shapes:
        _draw_shape(canvas, shape)
    for edge in edges:
        _draw_edge(canvas, edge)
    for shape in shapes:
        _draw_note(canvas, shape)
    _header(canvas, svg, title, bool(marks))
    x0, y0, x1, y1 = canvas.extent
    x0, y0, w, h = x0 - MARGIN, y0 - MARGIN, x1 - x0 + 2 * MARGIN, y1 - y0 + 2 * MARGIN
    svg.set("viewBox", " ".join(_num(v) for v in (x0, y0, w, h)))
    svg.set("width", _num(w))
    svg.set("height", _num(h))
    for key, value in (("x", x0), ("y", y0), ("width", w), ("height", h)):
        background.set(key, _num(value))
    return etree.tostring(svg, encoding="unicode", pretty_print=True)
