"""The designer's lint: each problem once, with its line, element id and severity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from onething.bpmn.lint import Finding, known_departments, lint, looks_like_department
from onething.cli import cli
from onething.plugins import collect_handlers, make_plugin_manager

ROOT = Path(__file__).parent.parent
DATA = ROOT / "tests" / "data"
OPERATORS = set(collect_handlers(make_plugin_manager(load_entry_points=False)))
CATALOG = sorted((ROOT / "onething" / "processes").glob("*.bpmn"))


def findings(name: str, **kwargs) -> list[Finding]:
    path = DATA / name
    kwargs.setdefault("operators", OPERATORS)
    return lint(path.read_bytes(), str(path), **kwargs)


def only(name: str, **kwargs) -> Finding:
    [finding] = findings(name, **kwargs)
    return finding


def test_a_clean_file_has_no_findings():
    assert findings("lint_clean.bpmn") == []


@pytest.mark.parametrize("path", CATALOG, ids=lambda p: p.stem)
def test_every_catalog_file_lints_clean(path):
    assert lint(path.read_bytes(), str(path), operators=OPERATORS) == []


def test_missing_di_is_a_warning_per_element_with_its_line():
    found = findings("lint_missing_di.bpmn")
    assert {(f.severity, f.code, f.element) for f in found} == {
        ("warning", "missing-di", "pool"), ("warning", "missing-di", "lane_lead"),
        ("warning", "missing-di", "reply"),
        ("warning", "missing-di", "f_reply")}
    reply = next(f for f in found if f.element == "reply")
    text = (DATA / "lint_missing_di.bpmn").read_text(encoding="utf-8").splitlines()
    assert 'id="reply"' in text[reply.line - 1]


def test_a_file_without_any_diagram_is_one_warning():
    finding = only("minimal.bpmn")
    assert (finding.severity, finding.code) == ("warning", "missing-di")
    assert "BPMNDiagram" in finding.message


def test_a_lane_that_names_no_department_or_role_is_a_warning():
    finding = only("lint_unknown_lane.bpmn")
    assert (finding.severity, finding.code, finding.element) == (
        "warning", "lane-department", "lane_lead")
    assert "张三" in finding.message


def test_a_role_lane_is_accepted():
    assert findings("lint_role_lane.bpmn") == []


def test_a_departments_directory_decides_which_lane_names_are_known():
    assert findings("lint_clean.bpmn", departments={"县住建局"}) == []
    finding = only("lint_clean.bpmn", departments={"县水务局"})
    assert finding.code == "lane-department" and "known department" in finding.message


def test_department_suffixes_and_the_directory_file(tmp_path):
    assert looks_like_department("中国农业银行陆良县支行")
    assert looks_like_department("陆良县中枢街道办事处")
    assert not looks_like_department("张三")
    assert known_departments(tmp_path) is None
    (tmp_path / "directory.toml").write_text(
        '[[department]]\nname = "县住建局"\n[[department]]\nname = "县水务局"\n', encoding="utf-8")
    assert known_departments(tmp_path) == {"县住建局", "县水务局"}


def test_an_operator_without_a_handler_is_an_error():
    finding = only("lint_unknown_handler.bpmn")
    assert (finding.severity, finding.code, finding.element) == ("error", "unknown-handler", "reply")
    assert "fax_the_mayor" in finding.message and finding.line


def test_operators_are_not_checked_without_a_registry():
    assert findings("lint_unknown_handler.bpmn", operators=None) == []


def test_a_timer_that_does_not_parse_is_an_error():
    finding = only("lint_bad_timer.bpmn")
    assert (finding.severity, finding.code, finding.element) == ("error", "timer", "timer")
    assert "P2X" in finding.message


def test_a_gateway_with_conditions_and_no_default_is_a_warning():
    finding = only("lint_no_default.bpmn")
    assert (finding.severity, finding.code, finding.element) == ("warning", "no-default-flow", "ok")


def test_an_unreachable_element_is_a_warning():
    finding = only("lint_unreachable.bpmn")
    assert (finding.severity, finding.code, finding.element) == ("warning", "unreachable", "orphan")


def test_boundary_events_are_reached_through_their_host():
    assert not [f for f in findings("lint_clean.bpmn") if f.element in ("timer", "warned")]


def test_a_dead_end_is_a_warning():
    finding = only("lint_dead_end.bpmn")
    assert (finding.severity, finding.code, finding.element) == ("warning", "dead-end", "stuck")


def test_every_refused_expression_is_reported_not_only_the_first():
    found = findings("lint_refused.bpmn")
    assert [(f.severity, f.code, f.element) for f in found] == [
        ("error", "refused-expression", "reply"), ("error", "refused-expression", "f_yes")]
    assert "open" in found[0].message and "__import__" in found[1].message


@pytest.mark.parametrize("name, reason", [
    ("empty.bpmn", "empty"), ("malformed.bpmn", "not well-formed"), ("xxe.bpmn", "DOCTYPE"),
    ("missing_target.bpmn", "missing element 'nowhere'"), ("no_start.bpmn", "no start event"),
])
def test_what_load_bpmn_refuses_is_an_error(name, reason):
    errors = [f for f in findings(name) if f.severity == "error"]
    assert len(errors) == 1 and reason in errors[0].message


def test_validate_prints_file_line_severity_element_message():
    path = str(DATA / "lint_unknown_handler.bpmn")
    result = CliRunner().invoke(cli, ["validate", path])
    assert result.exit_code == 1
    finding = only("lint_unknown_handler.bpmn")
    assert f"{path}:{finding.line}: error: reply: no handler registered" in result.output


def test_validate_warnings_pass_unless_strict():
    path = str(DATA / "lint_no_default.bpmn")
    assert CliRunner().invoke(cli, ["validate", path]).exit_code == 0
    strict = CliRunner().invoke(cli, ["validate", "--strict", path])
    assert strict.exit_code == 1 and ": warning: ok: " in strict.output


def test_validate_json_lists_findings_per_file():
    paths = [str(DATA / "lint_clean.bpmn"), str(DATA / "lint_bad_timer.bpmn")]
    result = CliRunner().invoke(cli, ["validate", "--json", *paths])
    assert result.exit_code == 1
    clean, bad = json.loads(result.stdout)
    assert clean == {"file": paths[0], "ok": True, "errors": 0, "warnings": 0, "findings": []}
    assert bad["ok"] is False and bad["findings"][0]["code"] == "timer"
    assert set(bad["findings"][0]) == {"severity", "file", "line", "element", "code", "message"}


def test_validate_names_a_missing_file():
    result = CliRunner().invoke(cli, ["validate", "no/such.bpmn"])
    assert result.exit_code == 1 and "no/such.bpmn" in result.output


def test_an_undeclared_loop_data_input_is_a_warning_with_the_fix():
    finding = only("lint_undeclared_loop_input.bpmn")
    assert (finding.severity, finding.code, finding.element) == (
        "warning", "undeclared-loop-input", "handle")
    assert "'collaborators'" in finding.message and "Camunda Modeler" in finding.message
    assert '<bpmn:property id="collaborators"/>' in finding.message
    text = (DATA / "lint_undeclared_loop_input.bpmn").read_text(encoding="utf-8").splitlines()
    assert "<bpmn:loopDataInputRef>collaborators<" in text[finding.line - 1]


@pytest.mark.parametrize("declaration", [
    '<bpmn:property id="collaborators" name="协同部门列表" />',
    '<bpmn:dataObject id="collaborators" name="协同部门列表" />',
    '<bpmn:dataObject id="collaborators_list" /><bpmn:dataObjectReference id="collaborators" '
    'dataObjectRef="collaborators_list" />',
], ids=["property", "dataObject", "dataObjectReference"])
def test_a_declared_loop_data_input_is_accepted(tmp_path, declaration):
    source = (DATA / "lint_undeclared_loop_input.bpmn").read_text(encoding="utf-8")
    if "property" in declaration:
        source = source.replace("<bpmn:laneSet", declaration + "<bpmn:laneSet", 1)
    else:
        source = source.replace("<bpmn:startEvent", declaration + "<bpmn:startEvent", 1)
    found = lint(source.encode("utf-8"), str(tmp_path / "declared.bpmn"), operators=OPERATORS)
    assert found == []


def test_an_io_specification_data_input_counts_as_declared(tmp_path):
    source = (DATA / "lint_undeclared_loop_input.bpmn").read_text(encoding="utf-8")
    io = ('<bpmn:ioSpecification><bpmn:dataInput id="collaborators" /><bpmn:inputSet>'
          '<bpmn:dataInputRefs>collaborators</bpmn:dataInputRefs></bpmn:inputSet>'
          '<bpmn:outputSet /></bpmn:ioSpecification>')
    source = source.replace('<bpmn:userTask id="handle" name="办理">',
                            '<bpmn:userTask id="handle" name="办理">' + io, 1)
    found = lint(source.encode("utf-8"), str(tmp_path / "io.bpmn"), operators=OPERATORS)
    assert "undeclared-loop-input" not in {f.code for f in found}
