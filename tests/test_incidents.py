"""A handler or script that fails leaves the case intact with an incident to list and retry."""

from __future__ import annotations

import pytest

from onething import Engine, IncidentNotFound, hookimpl


class Flaky:
    """A third-party handler plugin that fails until told to work."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    @hookimpl
    def onething_handlers(self):
        def flaky(ctx, message=""):
            self.calls += 1
            if self.broken:
                raise ConnectionError("SMS gateway unreachable")
            ctx.emit("reply", {"to": ctx.data.get("reporter"), "message": message})
            return {"ok": True}
        return {"flaky": flaky}


@pytest.fixture
def flaky(engine: Engine) -> Flaky:
    plugin = Flaky()
    engine.register(plugin)
    return plugin


def run_to_reply(engine, data_file):
    case = engine.start(str(data_file("failing_handler.bpmn")),
                        {"reporter": "王女士", "collaborators": []})
    task = case.open_tasks[0]
    return engine.complete(task.id, actor="赵敏", department="县住建局",
                           data={"resolved": True, "result": "已修复"})


def test_a_failing_handler_keeps_the_users_work_and_opens_an_incident(engine, data_file, flaky):
    case = run_to_reply(engine, data_file)
    assert case.status == "open"
    [incident] = case.incidents
    assert incident.element == "reply" and incident.operator == "flaky"
    assert "SMS gateway unreachable" in incident.error
    assert [i.id for i in engine.incidents()] == [incident.id]
    history = [e.action for e in engine.history(case.number)]
    assert "complete" in history and "incident" in history


def test_retry_after_the_cause_is_fixed_resolves_the_incident(engine, data_file, flaky):
    case = run_to_reply(engine, data_file)
    incident = case.incidents[0]
    again = engine.retry(incident.id, actor="运维")
    assert again.incidents[0].attempts == 2
    flaky.broken = False
    done = engine.retry(incident.id, actor="运维")
    assert done.status == "closed"
    assert engine.incidents() == []
    assert len(engine.outbox(case=case.number)) == 1
    with pytest.raises(IncidentNotFound):
        engine.retry(incident.id)


def test_a_runtime_expression_error_is_an_incident_naming_the_element(engine, data_file):
    case = engine.start(str(data_file("runtime_name_error.bpmn")),
                        {"reporter": "王女士", "collaborators": []})
    task = case.open_tasks[0]
    case = engine.complete(task.id, actor="赵敏", department="县住建局", data={"resolved": True})
    [incident] = case.incidents
    assert incident.element == "ok"
    assert "no_such_field" in incident.error


def test_an_unknown_handler_at_run_time_is_an_incident(engine, data_file):
    # Loaded while the plugin existed, run after it is gone.
    plugin = Flaky()
    engine.register(plugin, name="flaky-plugin")
    case = engine.start(str(data_file("failing_handler.bpmn")),
                        {"reporter": "王女士", "collaborators": []})
    engine.plugins.unregister(name="flaky-plugin")
    engine.handlers.pop("flaky")
    task = case.open_tasks[0]
    case = engine.complete(task.id, actor="赵敏", department="县住建局",
                           data={"resolved": True, "result": "x"})
    assert "no handler registered for operator 'flaky'" in case.incidents[0].error
