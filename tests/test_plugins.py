"""Handlers are plugins: built-ins and third-party packages found through entry points."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from onething import Engine, OnethingError, hookimpl
from onething.plugins import collect_handlers, make_plugin_manager

EXAMPLE = Path(__file__).parent.parent / "examples" / "plugin_sms"


@pytest.fixture
def installed_sms(tmp_path, monkeypatch):
    """The example package as pip would leave it: the module and its dist-info on sys.path."""
    shutil.copy(EXAMPLE / "onething_sms.py", tmp_path / "onething_sms.py")
    info = tmp_path / "onething_sms-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onething-sms\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[onething]\nsms = onething_sms\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("onething_sms", None)


def test_the_built_in_handlers_are_registered_as_plugins():
    handlers = collect_handlers(make_plugin_manager(load_entry_points=False))
    assert {"notify_reporter", "record_agreement"} <= set(handlers)


def test_a_package_with_an_entry_point_adds_its_handler(installed_sms):
    handlers = collect_handlers(make_plugin_manager(load_entry_points=True))
    assert "send_sms" in handlers


def test_tests_can_leave_entry_points_out(installed_sms):
    handlers = collect_handlers(make_plugin_manager(load_entry_points=False))
    assert "send_sms" not in handlers


def test_an_installed_handler_runs_in_a_case(installed_sms, db_url, clock, data_file, tmp_path):
    bpmn = data_file("minimal.bpmn").read_bytes().replace(
        b'id="notify_reporter"', b'id="send_sms"')
    path = tmp_path / "sms.bpmn"
    path.write_bytes(bpmn)
    engine = Engine(db_url, clock=clock, load_entry_points=True)
    try:
        case = engine.start(str(path), {"phone": "13800000000", "collaborators": []})
        case = engine.complete(case.open_tasks[0].id, actor="赵敏", department="县住建局",
                               data={"resolved": True, "result": "已修复"})
        assert case.status == "closed"
        [sms] = engine.outbox(case=case.number)
        assert sms["kind"] == "sms" and sms["payload"]["to"] == "13800000000"
    finally:
        engine.close()


def test_two_plugins_claiming_one_operator_is_an_error():
    class Twin:
        @hookimpl
        def onething_handlers(self):
            return {"notify_reporter": lambda ctx, **kw: {}}

    with pytest.raises(OnethingError, match="notify_reporter"):
        collect_handlers(make_plugin_manager([Twin()], load_entry_points=False))
