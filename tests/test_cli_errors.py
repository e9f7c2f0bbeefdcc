"""Bad input on every command: exit 1 (or 2 for a usage error) with one clear line that
names what is wrong, never a traceback, and nothing half-written in the database."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from onething.cli import cli

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "appeal_12345.toml"
DATA = Path(__file__).parent / "data"
LONG = "名" * 300


def invoke(db: str, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["--db", db, *args], env=env)


def refused(result, *needles: str, code: int = 1) -> None:
    """The command failed as a user error should: the right exit code, one `Error:` line
    carrying every needle, and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], result.output


def counts(db: str) -> dict[str, int]:
    """Rows per table: what a refused command must leave untouched."""
    engine = sa.create_engine(db if "://" in db else f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            return {t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
                    if t in present else 0
                    for t in ("cases", "work_items", "events", "incidents", "extensions")}
    finally:
        engine.dispose()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "onething.db")


@pytest.fixture
def opened(db_url: str) -> tuple[str, str, str]:
    """A database with one open appeal_12345 case: (db, case number, its dispatch task id)."""
    result = invoke(db_url, "--json", "start", "appeal_12345", "--data", "reporter=王女士")
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)
    return db_url, case["number"], case["open_tasks"][0]["id"]


# ------------------------------------------------------------------ unknown things by name/id
@pytest.mark.parametrize("args, needle", [
    (["catalog", "show", "no_such"], "no process 'no_such'"),
    (["catalog", "show", ""], "no process ''"),
    (["start", "no_such"], "no process 'no_such'"),
    (["start", "办理不存在的事项"], "no process '办理不存在的事项'"),
    (["render", "no_such"], "no process 'no_such'"),
    (["render", "appeal_12345", "--case", "YJS0"], "no case 'YJS0'"),
    (["case", "YJS0"], "no case 'YJS0'"),
    (["case", ""], "no case ''"),
    (["case", LONG], "no case"),
    (["tasks", "--case", "YJS0"], "no case 'YJS0'"),
    (["incidents", "--case", "YJS0"], "no case 'YJS0'"),
    (["supervisions", "--case", "YJS0"], "no case 'YJS0'"),
    (["extend", "list", "--case", "YJS0"], "no case 'YJS0'"),
    (["claim", "nope", "--as", "县住建局", "--actor", "李娜"], "no task 'nope'"),
    (["complete", "nope", "--as", "县住建局"], "no task 'nope'"),
    (["cancel", "YJS0", "--reason", "重复", "--actor", "李娜"], "no case 'YJS0'"),
    (["retry", "999"], "no open incident 999"),
    (["extend", "approve", "999"], "no extension request 999"),
    (["extend", "reject", "999"], "no extension request 999"),
    (["extend", "request", "YJS0", "--by", "P3D", "--reason", "r", "--as", "县住建局"],
     "no case 'YJS0'"),
    (["lookup", "YJS0"], "no report or case 'YJS0'"),
    (["merge", "R0", "YJS0"], "no report or case 'R0'"),
    (["unmerge", "R0"], "no report or case 'R0'"),
    (["return", "YJS0", "--as", "县住建局", "--actor", "a", "--reason", "r"], "no case 'YJS0'"),
    (["declare", "YJS0", "--matter", "x", "--actor", "a"], "no case 'YJS0'"),
    (["queue", "dispatch", "YJS0", "--lead", "县住建局"], "no case 'YJS0'"),
    (["route", "路灯不亮", "--region", "火星"], "unknown region '火星'"),
    (["intake", "路灯不亮", "--region", "火星"], "unknown region '火星'"),
])
def test_an_unknown_name_or_id_is_one_line(db, args, needle):
    refused(invoke(db, *args), needle)
    assert counts(db)["cases"] == 0


@pytest.mark.parametrize("args, needle", [
    (["retry", "abc"], "'abc' is not a valid integer"),
    (["retry", "99999999999999999999999"], "INCIDENT_ID"),
    (["retry", "9999999999"], "INCIDENT_ID"),
    (["extend", "approve", "9999999999"], "EXT_ID"),
    (["extend", "reject", "x"], "EXT_ID"),
    (["start", "appeal_12345", "--data", "k"], "'k' is not k=v"),
    (["report", "--by", "bogus"], "--by"),
    (["extend", "list", "--status", "bogus"], "--status"),
    (["simulate", "--cases", "0"], "--cases"),
    (["simulate", "--cases", "-5"], "--cases"),
    (["simulate", "--days", "0"], "--days"),
    (["simulate", "--sample", "-1"], "--sample"),
    (["worker", "--interval", "0"], "--interval"),
    (["worker", "--interval", "abc"], "--interval"),
    (["report", "--response-hours", "-5"], "--response-hours"),
    (["route", "路灯不亮"], "--region"),
    (["claim", "x", "--as", "县住建局"], "--actor"),
    (["no-such-command"], "No such command"),
])
def test_a_bad_argument_is_a_usage_error(db, args, needle):
    refused(invoke(db, *args), needle, code=2)


# ------------------------------------------------------------------ times and durations
@pytest.mark.parametrize("args, needle", [
    (["worker", "--at", "notatime"], "--at"),
    (["worker", "--at", "2026-02-30T09:00"], "--at"),
    (["worker", "--at", ""], "--at"),
    (["worker", "--advance", "P-1D"], "--advance"),
    (["worker", "--advance", "8 days"], "--advance"),
    (["worker", "--at", "2026-03-02T09:00", "--advance", ""], "--advance"),
    (["extend", "approve", "1", "--at", "yesterday"], "--at"),
    (["run", str(EXAMPLE), "--start", "notatime"], "--start"),
    (["report", "--since", "notadate"], "--since"),
    (["report", "--until", "2026-13-01"], "--until"),
    (["report", "--since", "2026-02-01", "--until", "2026-01-01"], "--since"),
])
def test_a_bad_time_or_duration_is_a_usage_error(db, args, needle):
    refused(invoke(db, *args), needle, code=2)
    assert counts(db)["cases"] == 0


@pytest.mark.parametrize("by, needle", [
    ("bogus", "not an ISO 8601 duration: 'bogus'"),
    ("P-3D", "not an ISO 8601 duration"),
    ("PT0S", "must add time"),
])
def test_extend_request_with_a_bad_duration_names_the_case(opened, by, needle):
    db, number, _ = opened
    before = counts(db)
    result = invoke(db, "extend", "request", number, "--by", by, "--reason", "r",
                    "--as", "县住建局")
    refused(result, f"case {number}", needle)
    assert counts(db) == before


def test_extend_request_for_a_stage_without_a_time_limit_is_refused(opened):
    db, number, _ = opened
    before = counts(db)
    result = invoke(db, "extend", "request", number, "--stage", "nope", "--by", "P3D",
                    "--reason", "r", "--as", "县住建局")
    refused(result, f"case {number}", "stage 'nope'", "handle")
    assert counts(db) == before


# ------------------------------------------------------------------ names: empty, long, Chinese
@pytest.mark.parametrize("args, needle", [
    (["claim", "t", "--as", "", "--actor", "李娜"], "--as"),
    (["claim", "t", "--as", "县住建局", "--actor", "  "], "--actor"),
    (["claim", "t", "--as", "县住建局", "--actor", LONG], "at most 200"),
    (["complete", "t", "--as", LONG], "at most 200"),
    (["start", "appeal_12345", "--actor", LONG], "at most 200"),
    (["start", "appeal_12345", "--as", ""], "--as"),
    (["cancel", "YJS0", "--reason", "r", "--actor", ""], "--actor"),
    (["retry", "1", "--actor", LONG], "at most 200"),
    (["extend", "request", "YJS0", "--by", "P3D", "--reason", "r", "--as", ""], "--as"),
    (["extend", "approve", "1", "--actor", LONG], "at most 200"),
])
def test_an_empty_or_overlong_name_is_a_usage_error(db_url, args, needle):
    refused(invoke(db_url, *args), needle, code=2)
    assert counts(db_url)["cases"] == 0


def test_a_wrong_department_changes_nothing(opened):
    db, number, task = opened
    before = counts(db)
    for verb in (["claim", task, "--as", "县公安局", "--actor", "张三"],
                 ["complete", task, "--as", "县公安局"]):
        refused(invoke(db, *verb), f"task {task} of case {number} belongs to 县调度指挥中心")
    assert counts(db) == before


def test_completing_a_done_task_is_refused_and_changes_nothing(opened):
    db, number, task = opened
    done = invoke(db, "complete", task, "--as", "县调度指挥中心", "--data",
                  "lead_department=县住建局", "--data", "collaborators=[]")
    assert done.exit_code == 0, done.output
    before = counts(db)
    refused(invoke(db, "complete", task, "--as", "县调度指挥中心"), f"case {number} is done")
    assert counts(db) == before


def test_cancel_without_a_reason_changes_nothing(opened):
    db, number, _ = opened
    before = counts(db)
    refused(invoke(db, "cancel", number, "--reason", " ", "--actor", "李娜"),
            f"case {number}", "needs a reason")
    assert counts(db) == before


@pytest.mark.parametrize("pair, key, value", [
    ("reporter={not json", "reporter", "{not json"),
    ("description=路灯不亮=三天", "description", "路灯不亮=三天"),
    ("count=5", "count", 5),
    ("urgent=true", "urgent", True),
    ("description=" + "长" * 5000, "description", "长" * 5000),
])
def test_data_that_is_not_json_stays_a_string(db, pair, key, value):
    result = invoke(db, "--json", "start", "appeal_12345", "--data", pair)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"][key] == value


def test_data_with_an_empty_key_is_refused(db):
    refused(invoke(db, "start", "appeal_12345", "--data", "=x"), "'' is not a usable field name")
    assert counts(db)["cases"] == 0


# ------------------------------------------------------------------ files and folders
@pytest.mark.parametrize("args", [
    ["start", "/nonexistent/x.bpmn"],
    ["render", "/nonexistent/x.bpmn"],
    ["run", "/nonexistent/x.toml"],
])
def test_a_missing_file_is_named(db, args):
    refused(invoke(db, *args), "/nonexistent/x.")


@pytest.mark.parametrize("command", ["start", "render", "run"])
def test_a_folder_where_a_file_is_expected_is_named(db, tmp_path, command):
    folder = tmp_path / "folder.bpmn"
    folder.mkdir()
    refused(invoke(db, command, str(folder)), str(folder))
    assert counts(db)["cases"] == 0


@pytest.mark.parametrize("command", ["start", "render", "run"])
def test_a_broken_symlink_is_named(db, tmp_path, command):
    link = tmp_path / "gone.bpmn"
    link.symlink_to(tmp_path / "nowhere.bpmn")
    refused(invoke(db, command, str(link)), str(link))


@pytest.mark.parametrize("name", ["empty.bpmn", "malformed.bpmn", "not_bpmn.bpmn", "xxe.bpmn",
                                  "entity_bomb.bpmn", "random.bpmn"])
@pytest.mark.parametrize("command", ["start", "render"])
def test_a_bad_bpmn_file_is_named(db, command, name):
    refused(invoke(db, command, str(DATA / name)), name)
    assert counts(db)["cases"] == 0


def test_render_refuses_a_doctype_by_name(db, tmp_path):
    bpmn = tmp_path / "doctype.bpmn"
    bpmn.write_text('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">'
                    '<process id="p"><startEvent id="s" name="&x;"/></process></definitions>')
    refused(invoke(db, "render", str(bpmn)), str(bpmn), "DOCTYPE")


@pytest.mark.parametrize("output", ["/nonexistent/dir/x.svg"])
def test_render_to_an_unwritable_path_is_one_line(db, output):
    refused(invoke(db, "render", "appeal_12345", "-o", output), "cannot write", output)


def test_render_to_a_folder_is_a_usage_error(db, tmp_path):
    refused(invoke(db, "render", "appeal_12345", "-o", str(tmp_path)), "is a directory", code=2)


@pytest.mark.parametrize("flag", ["--csv", "--png"])
def test_report_to_a_folder_writes_nothing(db, tmp_path, flag):
    refused(invoke(db, "report", flag, str(tmp_path)), flag, "folder", code=2)
    assert not Path(str(tmp_path) + ".png").exists()


@pytest.mark.parametrize("flag", ["--csv", "--png"])
def test_report_into_a_missing_folder_is_a_usage_error(db, tmp_path, flag):
    target = tmp_path / "missing" / "out"
    refused(invoke(db, "report", flag, str(target)), flag, "does not exist", code=2)


def test_report_does_not_write_the_csv_when_the_png_path_is_bad(db, tmp_path):
    csv_file = tmp_path / "r.csv"
    refused(invoke(db, "report", "--csv", str(csv_file), "--png", str(tmp_path / "no" / "c.png")),
            "--png", code=2)
    assert not csv_file.exists()


def test_report_png_writes_exactly_the_path_given(db, tmp_path):
    pytest.importorskip("matplotlib")
    chart = tmp_path / "chart"
    result = invoke(db, "report", "--png", str(chart))
    assert result.exit_code == 0, result.output
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert not Path(str(chart) + ".png").exists()


def test_processes_that_is_a_file_is_a_usage_error(db):
    refused(invoke(db, "--processes", str(EXAMPLE), "catalog"), "--processes", code=2)


def test_a_missing_processes_folder_is_reported_not_fatal(db):
    result = invoke(db, "--processes", "/nonexistent/processes", "catalog")
    assert result.exit_code == 0
    assert "/nonexistent/processes" in result.output


# ------------------------------------------------------------------ scenario files
BAD_SCENARIOS = {
    "bad_toml": ('matter = "appeal_12345"\n[[steps]\n', "not valid TOML"),
    "no_matter": ('title = "x"\n', "names no matter"),
    "matter_not_text": ("matter = 5\n", "names no matter"),
    "unknown_matter": ('matter = "no_such"\n', "no process 'no_such'"),
    "missing_file": ('file = "nowhere.bpmn"\n', "nowhere.bpmn"),
    "steps_not_list": ('matter = "appeal_12345"\nsteps = "x"\n', "must be a list of tables"),
    "case_not_table": ('matter = "appeal_12345"\ncase = 5\n', "[case] must be a table"),
    "expect_not_table": ('matter = "appeal_12345"\nexpect = 5\n', "[expect] must be a table"),
    "expect_status_not_text": ('matter = "appeal_12345"\n[expect]\nstatus = 1\n',
                               "expect.status must be a string"),
    "step_without_task": ('matter = "appeal_12345"\n[[steps]]\nas = "县调度指挥中心"\n',
                          "step 1: a step needs task"),
    "step_without_department": ('matter = "appeal_12345"\n[[steps]]\ntask = "dispatch"\n',
                                "step 1: a task step needs as"),
    "unknown_task": ('matter = "appeal_12345"\n[[steps]]\ntask = "sgn"\nas = "县水务局"\n',
                     "step 1: appeal_12345 has no user task 'sgn'"),
    "bad_after": ('matter = "appeal_12345"\n[[steps]]\ntask = "dispatch"\nas = "县调度指挥中心"\n'
                  'after = "2 hours"\n', "step 1: not an ISO 8601 duration: '2 hours'"),
    "negative_tick": ('matter = "appeal_12345"\n[[steps]]\ntick = -5\n',
                      "step 1: not an ISO 8601 duration"),
    "data_not_table": ('matter = "appeal_12345"\n[[steps]]\ntask = "dispatch"\n'
                       'as = "县调度指挥中心"\ndata = "oops"\n', "step 1: data must be a table"),
    "not_utf8": (b"\xff\xfe", "not valid TOML"),
}


@pytest.mark.parametrize("name", sorted(BAD_SCENARIOS))
def test_a_malformed_scenario_is_refused_before_any_case_opens(db_url, tmp_path, name):
    text, needle = BAD_SCENARIOS[name]
    path = tmp_path / f"{name}.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(invoke(db_url, "run", str(path)), str(path), needle)
    assert counts(db_url)["cases"] == 0


def test_a_scenario_step_for_the_wrong_department_withdraws_its_case(db_url, tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace('as = "县住建局"', 'as = "县公安局"', 1)
    path = tmp_path / "wrong_department.toml"
    path.write_text(text, encoding="utf-8")
    result = invoke(db_url, "run", str(path))
    refused(result, str(path), "step 4", "no open task 'sign' for 县公安局", "withdrawn")
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("select status from cases")).scalars().all()
    engine.dispose()
    assert statuses == ["cancelled"]
    assert invoke(db_url, "tasks").output.strip() == "(no open tasks)"


# ------------------------------------------------------------------ databases
@pytest.mark.parametrize("command", [["case", "X"], ["catalog"], ["tasks"], ["start", "appeal_12345"]])
def test_a_sqlite_path_in_a_missing_folder_is_refused_and_not_created(tmp_path, command):
    db = tmp_path / "no" / "such" / "onething.db"
    refused(invoke(str(db), *command), f"database error: {db}", "does not exist")
    assert not (tmp_path / "no").exists()


def test_a_sqlite_path_under_a_file_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    refused(invoke(str(file / "onething.db"), "case", "X"), "is a file, not a folder")


def test_a_folder_as_the_database_is_refused(tmp_path):
    refused(invoke(str(tmp_path), "case", "X"), f"database error: {tmp_path}", "is a folder")


def test_the_env_database_is_checked_too(tmp_path):
    db = tmp_path / "missing" / "o.db"
    result = CliRunner().invoke(cli, ["case", "X"], env={"ONETHING_DB": str(db)})
    refused(result, f"database error: {db}")


def test_an_in_memory_database_is_refused(tmp_path):
    refused(invoke(":memory:", "case", "X"), "in-memory")


@pytest.mark.parametrize("content", [os.urandom(5000), b"hello\n"])
def test_a_file_that_is_not_a_database_is_named_and_left_alone(tmp_path, content):
    db = tmp_path / "random.db"
    db.write_bytes(content)
    refused(invoke(str(db), "case", "X"), f"database error: {db}", "not a database")
    assert db.read_bytes() == content


def test_a_corrupted_database_is_named(tmp_path):
    db = tmp_path / "onething.db"
    assert invoke(str(db), "start", "appeal_12345").exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("pragma wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(b"\xde\xad" * 4096)
    refused(invoke(str(db), "start", "appeal_12345"), f"database error: {db}", "malformed")


def test_a_database_from_a_newer_onething_is_refused(tmp_path):
    db = tmp_path / "onething.db"
    assert invoke(str(db), "tasks").exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("update alembic_version set version_num = '9999_future'")
    conn.commit()
    conn.close()
    refused(invoke(str(db), "case", "X"), f"database error: {db}", "9999_future", "newer")


@pytest.mark.parametrize("url, needle", [
    ("postgresql://nobody:secret@127.0.0.1:1/x", "postgresql://nobody:***@127.0.0.1:1/x"),
    ("mysql://u:secret@127.0.0.1/y", "driver is not installed"),
    ("bogus://x", "bogus"),
])
def test_an_unusable_database_url_is_one_line_without_its_password(url, needle):
    result = invoke(url, "case", "X")
    refused(result, "database error: ", needle)
    assert "secret" not in result.output


# ------------------------------------------------------------------ intake


@pytest.mark.parametrize("name, text", [
    ("bad.json", "{bad"),
    ("object.json", '{"a": 1}'),
    ("numbers.json", "[1, 2]"),
    ("numbers.jsonl", "1\n2\n"),
    ("bad.jsonl", "{bad\n"),
])
def test_intake_file_that_is_not_reports_is_named(db, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    refused(invoke(db, "intake", "--file", str(path)), str(path))
    assert counts(db)["cases"] == 0


@pytest.mark.parametrize("args, needle", [
    (["intake", "--file", "/nonexistent/day.jsonl"], "/nonexistent/day.jsonl"),
    (["intake", "路灯不亮", "--photo", "/nonexistent/p.jpg"], "/nonexistent/p.jpg"),
    (["intake", "x", "--directory", "/nonexistent/d.toml"], "/nonexistent/d.toml"),
    (["intake", "x", "--rules", "/nonexistent/r.toml"], "/nonexistent/r.toml"),
    (["intake"], "no text"),
])
def test_intake_bad_input_is_one_line(db, args, needle):
    refused(invoke(db, *args), needle)
    assert counts(db)["cases"] == 0


@pytest.mark.parametrize("flag", ["--directory", "--rules"])
def test_intake_malformed_data_files_are_named(db, tmp_path, flag):
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    refused(invoke(db, "intake", "路灯不亮", flag, str(bad)), str(bad), "not valid TOML")
