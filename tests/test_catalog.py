"""A designer adds or edits a matter by dropping a BPMN file into a folder: no Python.

The folder is named by ONETHING_PROCESSES or --processes (Engine(processes=...)); a new file
is a new matter, an edited file a new version, and running cases stay on their version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from onething import BpmnError, Engine
from onething.cli import cli

DATA = Path(__file__).parent / "data"
SHIPPED = Path(__file__).parent.parent / "onething" / "processes"
CODE = "pothole_repair"


def drop(folder: Path, task_name: str = "办理") -> Path:
    """A designer's plain BPMN file (lanes, DI, one user task, a handler) as a new matter."""
    text = (DATA / "lint_clean.bpmn").read_text(encoding="utf-8")
    text = text.replace("lint_sample", CODE).replace("检查样例", "道路坑洼修复")
    text = text.replace('name="办理"', f'name="{task_name}"')
    path = folder / f"{CODE}.bpmn"
    path.write_text(text, encoding="utf-8")
    return path


def catalog(db_url: str, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    result = CliRunner().invoke(cli, ["--db", db_url, *args, "--json", "catalog"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row(rows: list[dict], code: str) -> dict:
    return next(r for r in rows if r["code"] == code)


def test_a_dropped_file_appears_in_the_catalog_with_processes(db_url, tmp_path):
    drop(tmp_path)
    rows = catalog(db_url, "--processes", str(tmp_path))
    new = row(rows, CODE)
    assert new["name"] == "道路坑洼修复" and new["version"] == 1
    assert new["departments"] == ["县住建局"]
    assert {"appeal_12345", "luoping_road_damage"} <= {r["code"] for r in rows}


def test_a_dropped_file_appears_through_the_environment(db_url, tmp_path):
    drop(tmp_path)
    rows = catalog(db_url, env={"ONETHING_PROCESSES": str(tmp_path)})
    assert row(rows, CODE)["version"] == 1


def test_catalog_show_of_a_dropped_matter(db_url, tmp_path):
    drop(tmp_path)
    result = CliRunner().invoke(cli, ["--db", db_url, "--processes", str(tmp_path), "catalog",
                                      "show", CODE])
    assert result.exit_code == 0, result.output
    assert "道路坑洼修复" in result.output and "version 1" in result.output
    assert "handle" in result.output and "县住建局" in result.output
    shown = json.loads(CliRunner().invoke(cli, [
        "--db", db_url, "--processes", str(tmp_path), "catalog", "show", CODE, "--json"]).stdout)
    assert [s["id"] for s in shown["steps"]] == ["handle"]
    assert shown["file"].endswith(f"{CODE}.bpmn")


def test_catalog_show_marks_multi_instance_steps(db_url):
    result = CliRunner().invoke(cli, ["--db", db_url, "catalog", "show", "appeal_12345"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("collaborate"))
    assert "parallel" in line
    limits = next(x for x in result.output.splitlines() if x.startswith("time limits:"))
    assert "签收预警" in limits and "超时预警" in limits and "重办超期督办" in limits


def test_catalog_show_of_an_unknown_matter_is_one_line(db_url):
    result = CliRunner().invoke(cli, ["--db", db_url, "catalog", "show", "nope"])
    assert result.exit_code == 1 and "no process 'nope'" in result.output


def test_editing_the_file_makes_a_new_version_in_the_cli(db_url, tmp_path):
    drop(tmp_path)
    assert row(catalog(db_url, "--processes", str(tmp_path)), CODE)["version"] == 1
    drop(tmp_path, task_name="现场办理")
    assert row(catalog(db_url, "--processes", str(tmp_path)), CODE)["version"] == 2
    assert row(catalog(db_url, "--processes", str(tmp_path)), CODE)["version"] == 2


def test_running_cases_stay_on_their_version(db_url, clock, tmp_path):
    drop(tmp_path)
    with Engine(db_url, processes=str(tmp_path), clock=clock, load_entry_points=False) as engine:
        old = engine.start(CODE, {"reporter": "王女士"})
        assert [t.name for t in old.open_tasks] == ["办理"]
        drop(tmp_path, task_name="现场办理")
        assert engine.matter(CODE).version == 2
        new = engine.start(CODE)
        assert [t.name for t in new.open_tasks] == ["现场办理"]
        assert new.process_version != old.process_version
    # a fresh engine (another worker, a restart) sees the same versions
    with Engine(db_url, processes=str(tmp_path), clock=clock, load_entry_points=False) as engine:
        assert engine.matter(CODE).version == 2
        still = engine.case(old.number)
        assert still.process_version == old.process_version
        [task] = still.open_tasks
        assert task.name == "办理"
        done = engine.complete(task.id, actor="赵敏", department="县住建局",
                               data={"accepted": True})
        assert done.status == "closed"


def test_a_designer_file_with_a_shipped_code_is_its_new_version(db_url, tmp_path):
    text = (SHIPPED / "noise_nuisance.bpmn").read_text(encoding="utf-8")
    (tmp_path / "noise.bpmn").write_text(text.replace("</bpmn:definitions>",
                                                      "<!-- 县里修订 -->\n</bpmn:definitions>"),
                                         encoding="utf-8")
    assert row(catalog(db_url), "noise_nuisance")["version"] == 1
    edited = row(catalog(db_url, "--processes", str(tmp_path)), "noise_nuisance")
    assert edited["version"] == 2 and edited["file"].startswith(str(tmp_path))


def test_a_broken_file_does_not_hide_the_rest_of_the_catalog(db_url, tmp_path):
    drop(tmp_path)
    (tmp_path / "broken.bpmn").write_bytes((DATA / "unknown_handler.bpmn").read_bytes())
    (tmp_path / "garbage.bpmn").write_text("not xml", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--db", db_url, "--processes", str(tmp_path), "catalog"])
    assert result.exit_code == 0, result.output
    assert CODE in result.stdout and "appeal_12345" in result.stdout
    assert "garbage.bpmn" in result.stderr and "unknown_handler" not in result.stdout
    assert "fax_the_mayor" in result.stderr


def test_the_python_api_reports_broken_files_or_raises(db_url, clock, tmp_path):
    drop(tmp_path)
    (tmp_path / "broken.bpmn").write_bytes((DATA / "unknown_handler.bpmn").read_bytes())
    with Engine(db_url, processes=str(tmp_path), clock=clock, load_entry_points=False) as engine:
        problems: list = []
        codes = {m.code for m in engine.catalog(problems=problems)}
        assert CODE in codes and "minimal" not in codes
        assert [p.file for p in problems] == [str(tmp_path / "broken.bpmn")]
        with pytest.raises(BpmnError, match="fax_the_mayor"):
            engine.catalog()
