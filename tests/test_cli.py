"""The command line: readable output, --json, exit 1 with one line and no traceback on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from onething.cli import cli

ROOT = Path(__file__).parent.parent


def run(db_url, *args):
    result = CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False)
    return result


def test_catalog_lists_the_shipped_matters(db_url):
    result = run(db_url, "catalog")
    assert result.exit_code == 0
    assert "appeal_12345" in result.output and "luoping_road_damage" in result.output
    rows = json.loads(run(db_url, "--json", "catalog").output)
    appeal = next(r for r in rows if r["code"] == "appeal_12345")
    assert appeal["name"] == "12345热线诉求办理" and appeal["version"] == 1


@pytest.mark.parametrize("scenario", ["appeal_12345", "luoping_road_damage"])
def test_run_drives_a_scenario_to_closure_and_prints_its_timeline(db_url, scenario):
    result = run(db_url, "run", str(ROOT / "examples" / f"{scenario}.toml"))
    assert result.exit_code == 0, result.output
    assert "closed" in result.output
    assert "complete" in result.output


def test_start_tasks_complete_and_case(db_url):
    result = run(db_url, "--json", "start", "appeal_12345", "--data", "reporter=王女士",
                 "--data", "description=路灯不亮")
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)
    [task] = case["open_tasks"]
    listed = json.loads(run(db_url, "--json", "tasks", "--department", task["department"]).output)
    assert [t["id"] for t in listed] == [task["id"]]
    done = run(db_url, "complete", task["id"], "--as", task["department"], "--actor", "李娜",
               "--data", "lead_department=县住建局", "--data", "collaborators=[]")
    assert done.exit_code == 0, done.output
    shown = run(db_url, "case", case["number"])
    assert shown.exit_code == 0
    assert "李娜" in shown.output and case["number"] in shown.output


@pytest.mark.parametrize("args, message", [
    (["case", "YJS000"], "no case 'YJS000'"),
    (["complete", "nope", "--as", "县住建局"], "no task 'nope'"),
    (["start", "no_such_matter"], "no process 'no_such_matter'"),
    (["retry", "999"], "no open incident 999"),
])
def test_user_errors_exit_1_with_one_line(db_url, args, message):
    result = run(db_url, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_completing_as_the_wrong_department_is_refused(db_url):
    case = json.loads(run(db_url, "--json", "start", "appeal_12345").output)
    task = case["open_tasks"][0]
    result = run(db_url, "complete", task["id"], "--as", "县公安局")
    assert result.exit_code == 1
    assert "belongs to" in result.output


@pytest.mark.parametrize("name", ["empty.bpmn", "malformed.bpmn", "random.bpmn", "not_bpmn.bpmn",
                                  "xxe.bpmn", "entity_bomb.bpmn", "missing_target.bpmn",
                                  "no_start.bpmn", "unknown_handler.bpmn", "import_condition.bpmn"])
def test_validate_refuses_bad_files_with_exit_1(name):
    path = ROOT / "tests" / "data" / name
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert name in result.output
    assert "Traceback" not in result.output


def test_validate_accepts_the_catalog():
    files = sorted(str(p) for p in (ROOT / "onething" / "processes").glob("*.bpmn"))
    result = CliRunner().invoke(cli, ["validate", *files])
    assert result.exit_code == 0, result.output


def test_a_bad_database_url_is_one_line():
    result = CliRunner().invoke(cli, ["--db", "postgresql://nobody@127.0.0.1:1/x", "catalog"])
    assert result.exit_code == 1
    assert "database error" in result.output


def test_cancel_withdraws_a_case_with_a_reason(db_url):
    case = json.loads(run(db_url, "--json", "start", "appeal_12345").output)
    result = run(db_url, "cancel", case["number"], "--reason", "重复工单", "--actor", "李娜")
    assert result.exit_code == 0 and "cancelled" in result.output
    again = run(db_url, "cancel", case["number"], "--reason", "x", "--actor", "李娜")
    assert again.exit_code == 1 and "already finished" in again.output
