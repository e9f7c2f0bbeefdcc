"""`onething render`: a matter or file as SVG; with a case, coloured by where it stands."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from click.testing import CliRunner
from lxml import etree

from onething.case_marks import case_marks, marks_from
from onething.cli import cli
from onething.views import Event, WorkItem

ROOT = Path(__file__).parent.parent
SVG = "http://www.w3.org/2000/svg"
DISPATCH = "县调度指挥中心"


def states(svg: str) -> dict[str, str]:
    root = etree.fromstring(svg.encode())
    return {g.get("data-element-id"): g.get("data-state") for g in root.iter(f"{{{SVG}}}g")
            if g.get("data-element-id") and g.get("data-state")}


def dispatched(engine) -> str:
    """An appeal dispatched to 县住建局 by 李娜: it waits for 签收."""
    case = engine.start("appeal_12345", {"reporter": "王女士"}, actor="话务员")
    [task] = case.open_tasks
    engine.complete(task.id, actor="李娜", department=DISPATCH,
                    data={"lead_department": "县住建局", "collaborators": []})
    return case.number


def handling(engine) -> str:
    number = dispatched(engine)
    [sign] = engine.tasks(case=number)
    engine.complete(sign.id, actor="赵敏", department="县住建局", data={"accepted": True})
    return number


def test_render_a_matter_writes_an_svg(tmp_path):
    out = tmp_path / "appeal.svg"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "render", "appeal_12345",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "12345热线诉求办理" in svg and 'data-element-id="dispatch"' in svg
    assert states(svg) == {}


def test_render_a_file_to_stdout():
    path = ROOT / "tests" / "data" / "lint_clean.bpmn"
    result = CliRunner().invoke(cli, ["render", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("<svg") and 'data-element-id="handle"' in result.stdout


def test_an_unknown_matter_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "render", "no_such"])
    assert result.exit_code == 1 and "no process 'no_such'" in result.output


def test_marks_show_done_and_active_with_who(engine):
    number = dispatched(engine)
    marks = case_marks(engine, number)
    assert marks["dispatch"].state == "done"
    assert f"{DISPATCH} · 李娜" in marks["dispatch"].note
    assert marks["sign"].state == "active" and "县住建局" in marks["sign"].note
    assert marks["intake"].state == "done"          # the start event
    assert marks["gw_dispatch"].state == "done"     # a gateway the case passed through
    assert "handle" not in marks


def test_active_tasks_are_overdue_once_the_deadline_passed(engine, clock):
    number = handling(engine)
    assert case_marks(engine, number)["handle"].state == "active"
    clock.advance("P6D")
    assert case_marks(engine, number)["handle"].state == "overdue"


def test_a_fired_timer_and_its_task_are_overdue(engine, clock):
    number = handling(engine)
    clock.advance("P5DT1H")
    engine.tick()
    marks = case_marks(engine, number)
    assert marks["warn_handle"].state == "overdue"
    assert marks["handle"].state == "overdue"


def test_cancelled_work_is_marked_cancelled():
    bpmn = (ROOT / "tests" / "data" / "lint_clean.bpmn").read_bytes()
    at = _dt.datetime(2026, 3, 2, 9, tzinfo=_dt.timezone.utc)
    item = WorkItem(id="t1", case="C1", matter="lint_sample", element="handle", name="办理",
                    department="县住建局", role=None, status="cancelled", claimed_by=None,
                    created_at=at)
    start = Event(id=1, case="C1", at=at, actor="话务员", department=None, action="start",
                  element=None, task_id=None, detail={})
    marks = marks_from(bpmn, [item], [start])
    assert marks["handle"].state == "cancelled" and marks["start"].state == "done"


def test_render_a_case_from_the_command_line(engine, db_url, tmp_path):
    number = dispatched(engine)
    out = tmp_path / "case.svg"
    result = CliRunner().invoke(cli, ["--db", db_url, "render", "appeal_12345", "--case", number,
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    found = states(svg)
    assert found["dispatch"] == "done" and found["sign"] in ("active", "overdue")
    assert number in svg and "李娜" in svg


def test_a_case_of_another_matter_is_refused(engine, db_url):
    number = dispatched(engine)
    result = CliRunner().invoke(cli, ["--db", db_url, "render", "noise_nuisance",
                                      "--case", number])
    assert result.exit_code == 1 and "appeal_12345" in result.output
