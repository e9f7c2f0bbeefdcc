"""Loading BPMN: bad files are refused with one clear message naming file, element and reason."""

from __future__ import annotations

import pytest

from onething import BpmnError, ScriptError, UnknownHandler
from onething.bpmn.load import load_bpmn
from onething.plugins import collect_handlers, make_plugin_manager

OPERATORS = collect_handlers(make_plugin_manager(load_entry_points=False))


def load(data_file, name):
    path = data_file(name)
    return load_bpmn(path.read_bytes(), str(path), operators=OPERATORS)


def test_a_plain_file_loads_with_its_lanes_and_tasks(data_file):
    definition = load(data_file, "minimal.bpmn")
    assert definition.code == "minimal"
    assert definition.name == "最小事项"
    assert definition.role_defaults()["lead_department"] == "县住建局"
    assert definition.user_tasks["collaborate"].multi_instance
    assert not definition.user_tasks["handle"].multi_instance
    assert definition.operators == {"reply": "notify_reporter"}
    assert [t.expression for t in definition.timers] == ["P5D"]


@pytest.mark.parametrize("name, reason", [
    ("empty.bpmn", "the file is empty"),
    ("malformed.bpmn", "not well-formed XML"),
    ("random.bpmn", "XML"),
    ("not_bpmn.bpmn", "not a BPMN 2.0 document"),
    ("xxe.bpmn", "DOCTYPE"),
    ("entity_bomb.bpmn", "DOCTYPE"),
    ("missing_target.bpmn", "missing element 'nowhere'"),
    ("no_start.bpmn", "no start event"),
    ("bad_timer.bpmn", "not a valid ISO 8601 duration"),
])
def test_bad_files_are_refused_with_the_file_and_reason(data_file, name, reason):
    with pytest.raises(BpmnError) as err:
        load(data_file, name)
    assert reason in str(err.value)
    assert name in str(err.value)


def test_a_flow_to_a_missing_element_names_the_flow_and_line(data_file):
    with pytest.raises(BpmnError) as err:
        load(data_file, "missing_target.bpmn")
    assert err.value.element == "f5"
    assert err.value.line and err.value.line > 1


def test_an_unknown_handler_names_the_operator_and_element(data_file):
    with pytest.raises(UnknownHandler) as err:
        load(data_file, "unknown_handler.bpmn")
    assert err.value.operator == "fax_the_mayor"
    assert err.value.element == "reply"
    assert "notify_reporter" in str(err.value)


@pytest.mark.parametrize("name, element, word", [
    ("import_condition.bpmn", "ok", "__import__"),
    ("dunder_condition.bpmn", "ok", "__class__"),
    ("open_script.bpmn", "reply", "open"),
    ("eval_condition.bpmn", "ok", "eval"),
])
def test_unsafe_expressions_are_refused_at_load(data_file, name, element, word):
    with pytest.raises(ScriptError) as err:
        load(data_file, name)
    assert err.value.element == element
    assert word in str(err.value)
