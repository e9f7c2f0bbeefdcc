"""The `onething` command line: catalog, validate, render, run, start, tasks, complete, case,
incidents."""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from .bpmn.lanes import parse_lane
from .clock import VirtualClock
from .engine import Engine
from .errors import BpmnError, DatabaseError, OnethingError
from .textable import render_table

__all__ = ["main", "cli"]


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=_json_default))


def _time(value: _dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else ""


class _State:
    def __init__(self, db: str | None, processes: tuple[str, ...], as_json: bool) -> None:
        self.db = db
        self.processes = list(processes) or None
        self.as_json = as_json
        self._engine: Engine | None = None

    def engine(self, clock: Any = None) -> Engine:
        if self._engine is None:
            self._engine = open_engine(self.db, processes=self.processes, clock=clock)
        return self._engine


def database_label(db: str | None) -> str:
    """The database as a user named it: a SQLite path, or a URL without its password."""
    from sqlalchemy.engine import make_url

    from .store import database_url

    url = database_url(db)
    if url.startswith("sqlite"):
        return url.split("///", 1)[-1] or ":memory:"
    typed = db or os.environ.get("ONETHING_DB") or url
    try:
        return make_url(typed).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as typed
        return typed


def open_engine(db: str | None, **kwargs: Any) -> Engine:
    """An Engine on `db`, or a DatabaseError naming the database: nothing is created in a
    folder that does not exist, and no traceback for a missing driver or an unknown schema."""
    from alembic.util.exc import CommandError

    from .store import database_url

    label = database_label(db)
    url = database_url(db)
    if url.startswith("sqlite"):
        if label == ":memory:" or "mode=memory" in url:
            raise DatabaseError("an in-memory database is gone when the command ends; "
                                "name a file", database=label)
        path = Path(label.split("?", 1)[0])
        if path.is_dir():
            raise DatabaseError("is a folder, not a database file", database=label)
        if path.parent.exists() and not path.parent.is_dir():
            raise DatabaseError(f"{str(path.parent)!r} is a file, not a folder", database=label)
        if not path.parent.is_dir():
            raise DatabaseError(f"the folder {str(path.parent)!r} does not exist",
                                database=label)
    try:
        return Engine(db, **kwargs)
    except OnethingError:
        raise
    except SQLAlchemyError as exc:
        raise DatabaseError(_db_reason(exc), database=label) from None
    except ImportError as exc:
        raise DatabaseError(f"its driver is not installed ({exc.name or exc})",
                            database=label) from None
    except CommandError as exc:
        raise DatabaseError(f"its schema is not one this onething knows ({exc}); is it from "
                            "a newer version?", database=label) from None
    except OSError as exc:
        raise DatabaseError(f"cannot be opened: {exc.strerror or exc}", database=label) from None


def _db_reason(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into one line on stderr and exit 1: no traceback for users."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OnethingError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            ctx = click.get_current_context(silent=True)
            db = getattr(ctx.find_object(_State), "db", None) if ctx else None
            raise click.ClickException(
                str(DatabaseError(_db_reason(exc), database=database_label(db)))) from None
        except OSError as exc:
            name = exc.filename or ""
            raise click.ClickException(
                f"{name}: {exc.strerror or exc}".lstrip(": ")) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if os.environ.get("ONETHING_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {exc} (set ONETHING_DEBUG=1 for details)"
            ) from None

    return wrapper


def _parse_data(pairs: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} is not k=v", param_hint="--data")
        key, raw = pair.split("=", 1)
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        data[key.strip()] = value
    return data


#: Database ids are 32-bit integers on PostgreSQL; a larger one is a typo, not a lookup.
ID = click.IntRange(1, 2**31 - 1)
#: Names (departments, actors) are stored in columns of 200 characters.
NAME_MAX = 200


def name_option(*decls: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """A department or actor option: a usage error (exit 2) when empty or too long."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return value
        if not value.strip():
            raise click.BadParameter("must not be empty", ctx=ctx, param=param)
        if len(value) > NAME_MAX:
            raise click.BadParameter(f"is {len(value)} characters long; at most {NAME_MAX}",
                                     ctx=ctx, param=param)
        return value.strip()

    return click.option(*decls, callback=check, **kwargs)


def check_case(state: "_State", number: str | None) -> None:
    """--case N on a listing: an unknown N is an error, not an empty list."""
    if number is not None:
        state.engine().case(number)


@click.group()
@click.option("--db", envvar="ONETHING_DB", default=None,
              help="SQLite file or database URL (default ./onething.db; env ONETHING_DB).")
@click.option("--processes", multiple=True, envvar="ONETHING_PROCESSES",
              type=click.Path(file_okay=False), help="Extra folder of matter BPMN files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.version_option(package_name="onething")
@click.pass_context
def cli(ctx: click.Context, db: str | None, processes: tuple[str, ...], as_json: bool) -> None:
    """Run county 一件事 (one-matter) cases as BPMN diagrams."""
    if len(processes) == 1 and os.pathsep in processes[0]:
        processes = tuple(p for p in processes[0].split(os.pathsep) if p)
    ctx.obj = _State(db, processes, as_json)


def _json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` after the command too (`onething validate --json F`), as editors call it."""
    return click.option("--json", "local_json", is_flag=True,
                        help="Machine-readable JSON output.")(fn)


@cli.group(invoke_without_command=True)
@_json_option
@click.pass_context
@_guard
def catalog(ctx: click.Context, local_json: bool) -> None:
    """List the matters: code, name, lead, collaborators, leader, time limits, version."""
    state: _State = ctx.obj
    state.as_json = state.as_json or local_json
    if ctx.invoked_subcommand is not None:
        return
    problems: list[OnethingError] = []
    matters = state.engine().catalog(problems=problems)  # type: ignore[arg-type]
    for problem in problems:
        click.echo(f"skipped: {problem}", err=True)
    if state.as_json:
        _emit([m.to_dict() for m in matters])
        return
    click.echo(render_table(
        ["code", "name", "lead", "collaborators", "leader", "time limits", "version"],
        [[m.code, m.name, m.lead, m.collaborators, m.leader, m.time_limits, m.version]
         for m in matters]))


@catalog.command("show")
@click.argument("code")
@_json_option
@click.pass_obj
@_guard
def catalog_show(state: _State, code: str, local_json: bool) -> None:
    """One matter: its steps (user tasks by lane), departments, leader, time limits, version."""
    matter = state.engine().matter(code)
    if state.as_json or local_json:
        _emit(matter.to_dict())
        return
    click.echo(f"{matter.code} · {matter.name} · version {matter.version}")
    click.echo(f"file: {matter.file}")
    click.echo(f"lead: {matter.lead or '(bound per case)'}")
    if matter.collaborators:
        click.echo(f"collaborators: {'、'.join(matter.collaborators)}")
    if matter.leader:
        click.echo(f"leader: {matter.leader}")
    if matter.dispatch:
        click.echo(f"dispatch: {matter.dispatch}")
    departments = [d for d in matter.departments if d != matter.leader]
    click.echo(f"departments: {'、'.join(departments) or '-'}")
    if matter.time_limits:
        click.echo("time limits: " + "; ".join(matter.time_limits))
    click.echo("\nsteps")
    rows = []
    for step in matter.steps:
        lane = parse_lane(step.get("lane"))
        if step.get("multi_instance"):
            owner = "each department of its list"
        else:
            owner = (lane.resolve({}) if lane else None) or "(bound per case)"
        rows.append([step["id"], step["name"], step.get("lane") or "", owner,
                     "parallel" if step.get("multi_instance") else ""])
    click.echo(render_table(["step", "name", "lane", "department", "multi-instance"], rows))


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@_json_option
@click.pass_obj
@_guard
def validate(state: _State, files: tuple[str, ...], strict: bool, local_json: bool) -> None:
    """Lint BPMN files: `file:line: severity: element: message` for each problem.

    Exit 1 on any error (or any warning with --strict)."""
    from .bpmn.lint import Finding, lint
    from .plugins import collect_handlers, make_plugin_manager

    operators = set(collect_handlers(make_plugin_manager()))
    results = []
    failed = False
    for name in files:
        try:
            findings = lint(Path(name).read_bytes(), name, operators=operators)
        except OSError as exc:
            findings = [Finding("error", name, None, None, "read",
                                f"cannot read the file: {exc.strerror}")]
        errors = sum(f.severity == "error" for f in findings)
        warnings = len(findings) - errors
        ok = errors == 0 and not (strict and warnings)
        failed = failed or not ok
        results.append({"file": name, "ok": ok, "errors": errors, "warnings": warnings,
                        "findings": [f.to_dict() for f in findings]})
        if not (state.as_json or local_json):
            for finding in findings:
                click.echo(str(finding))
            if not findings:
                click.echo(f"{name}: ok")
    if state.as_json or local_json:
        _emit(results)
    else:
        errors = sum(r["errors"] for r in results)
        warnings = sum(r["warnings"] for r in results)
        click.echo(f"{len(results)} file(s): {errors} error(s), {warnings} warning(s)", err=True)
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("source", metavar="FILE|MATTER")
@click.option("--case", "case_number", default=None,
              help="Colour the diagram by this case: done, active, overdue, cancelled.")
@click.option("-o", "--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              show_default=True, help="Where to write the SVG (- for stdout).")
@click.pass_obj
@_guard
def render(state: _State, source: str, case_number: str | None, output: str) -> None:
    """Draw a matter (catalog code or .bpmn file) as SVG from its BPMN DI."""
    from .bpmn.render import render_svg
    from .case_marks import case_marks

    path = Path(source)
    marks = None
    label = source  # the file a BPMN error names
    if case_number:
        engine = state.engine()
        case = engine.case(case_number)
        if not path.is_file() and source != case.matter:
            raise click.ClickException(
                f"case {case_number} is a case of {case.matter!r}, not of {source!r}")
        definition = engine.definition(case.process_version)
        data, title = definition.bpmn, f"{definition.name} · {case.number} · {case.status}"
        label = definition.file
        if path.is_file():
            data, label = path.read_bytes(), source
        marks = case_marks(engine, case_number)
        process_id = definition.code
    elif path.is_file() or source.endswith(".bpmn"):
        data, title, process_id = path.read_bytes(), None, None
    else:
        definition = state.engine().process(source)
        data, title, process_id = definition.bpmn, definition.name, definition.code
        label = definition.file
    try:
        svg = render_svg(data, process_id=process_id, marks=marks, title=title)
    except BpmnError as exc:
        if exc.file or type(exc) is not BpmnError:
            raise
        raise BpmnError(exc.reason, file=str(label), element=exc.element,
                        line=exc.line) from None
    if output == "-":
        click.echo(svg)
    else:
        try:
            Path(output).write_text(svg, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(
                f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output}", err=True)


@cli.command()
@click.argument("scenario", type=click.Path())
@click.option("--start", "start_at", default=None,
              help="When the virtual clock starts (ISO 8601; default: now).")
@click.pass_obj
@_guard
def run(state: _State, scenario: str, start_at: str | None) -> None:
    """Drive an example case to its end on a virtual clock and print its timeline."""
    from .scenario import load_scenario, run_scenario

    spec = load_scenario(scenario)
    try:
        clock = VirtualClock(start_at or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0))
    except ValueError:
        raise click.BadParameter(f"{start_at!r} is not an ISO 8601 time", param_hint="--start")
    result = run_scenario(state.engine(clock), spec)
    if state.as_json:
        _emit({"case": result.case.to_dict(), "timeline": [e.to_dict() for e in result.timeline]})
        return
    names = {t.id: t.name for t in state.engine().process(spec.matter).user_tasks.values()}
    click.echo(f"{spec.title}\ncase {result.case.number} · {result.case.matter_name} · "
               f"{result.case.status}\n")
    rows = []
    for e in result.timeline:
        if e.action == "claim":
            continue  # the audit log keeps claims; the timeline shows what was done
        stage = e.detail.get("name") or names.get(e.element or "", e.element or "")
        rows.append([_time(e.at), e.action, stage, e.department, e.actor])
    click.echo(render_table(["time", "what", "stage", "department", "actor"], rows))


@cli.command()
@click.argument("matter")
@click.option("--data", "pairs", multiple=True, help="Case data as k=v (v may be JSON).")
@name_option("--as", "department", default=None, help="Department opening the case.")
@name_option("--actor", default="话务员", show_default=True)
@click.pass_obj
@_guard
def start(state: _State, matter: str, pairs: tuple[str, ...], department: str | None,
          actor: str) -> None:
    """Open a case of MATTER (catalog code or .bpmn path); prints its number."""
    case = state.engine().start(matter, _parse_data(pairs), actor=actor, department=department)
    if state.as_json:
        _emit(case.to_dict())
        return
    click.echo(case.number)
    _print_tasks(case.open_tasks)


def _print_tasks(items: list[Any]) -> None:
    if not items:
        click.echo("(no open tasks)")
        return
    click.echo(render_table(["task", "case", "stage", "department", "status", "since"],
                            [[t.id, t.case, t.name, t.department,
                              t.status + (f" ({t.claimed_by})" if t.claimed_by else ""),
                              _time(t.created_at)] for t in items]))


@cli.command()
@click.option("--department", "-d", default=None, help="Only this department's work list.")
@click.option("--case", "case_number", default=None, help="Only this case.")
@click.pass_obj
@_guard
def tasks(state: _State, department: str | None, case_number: str | None) -> None:
    """Open work items, by department and/or case."""
    items = state.engine().tasks(department, case=case_number)
    if state.as_json:
        _emit([t.to_dict() for t in items])
    else:
        _print_tasks(items)


@cli.command()
@click.argument("task_id")
@name_option("--as", "department", required=True, help="Your department.")
@name_option("--actor", required=True, help="Your name.")
@click.pass_obj
@_guard
def claim(state: _State, task_id: str, department: str, actor: str) -> None:
    """Take a work item so colleagues do not complete it at the same time."""
    item = state.engine().claim(task_id, actor=actor, department=department)
    if state.as_json:
        _emit(item.to_dict())
    else:
        click.echo(f"claimed {item.id} ({item.name}, case {item.case}) for {actor}")


@cli.command()
@click.argument("task_id")
@name_option("--as", "department", required=True, help="Your department.")
@name_option("--actor", default=None, help="Your name (default: the department).")
@click.option("--data", "pairs", multiple=True, help="Form data as k=v (v may be JSON).")
@click.pass_obj
@_guard
def complete(state: _State, task_id: str, department: str, actor: str | None,
             pairs: tuple[str, ...]) -> None:
    """Finish a work item with form data; the case runs on until it waits again."""
    case = state.engine().complete(task_id, actor=actor or department, department=department,
                                   data=_parse_data(pairs))
    if state.as_json:
        _emit(case.to_dict())
        return
    click.echo(f"case {case.number}: {case.status}")
    for incident in case.incidents:
        click.echo(f"incident {incident.id} at {incident.element}: {incident.error}", err=True)
    _print_tasks(case.open_tasks)


@cli.command("case")
@click.argument("number")
@click.pass_obj
@_guard
def case_cmd(state: _State, number: str) -> None:
    """A case: state, data, history and open tasks."""
    engine = state.engine()
    case = engine.case(number)
    history = engine.history(number)
    if state.as_json:
        _emit({**case.to_dict(), "history": [e.to_dict() for e in history]})
        return
    click.echo(f"case {case.number} · {case.matter_name} ({case.matter}) · {case.status}")
    click.echo(f"opened {_time(case.created_at)}" + (f" · closed {_time(case.closed_at)}"
                                                     if case.closed_at else "")
               + (f" · next deadline {_time(case.due_at)}" if case.due_at else ""))
    for key in ("reporter", "channel", "region", "description", "lead_department",
                "collaborators"):
        if case.data.get(key):
            value = case.data[key]
            click.echo(f"  {key}: {'、'.join(value) if isinstance(value, list) else value}")
    click.echo("\nhistory")
    click.echo(render_table(["time", "what", "element", "department", "actor"],
                            [[_time(e.at), e.action, e.detail.get("name") or e.element,
                              e.department, e.actor] for e in history]))
    click.echo("\nopen tasks")
    _print_tasks(case.open_tasks)
    if case.incidents:
        click.echo("\nincidents")
        _print_incidents(case.incidents)


def _print_incidents(items: list[Any]) -> None:
    click.echo(render_table(["id", "case", "element", "operator", "attempts", "error"],
                            [[i.id, i.case, i.element, i.operator, i.attempts, i.error]
                             for i in items], max_width=70))


@cli.command()
@click.option("--case", "case_number", default=None)
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@click.pass_obj
@_guard
def incidents(state: _State, case_number: str | None, show_all: bool) -> None:
    """Failed handlers and scripts waiting for a retry."""
    check_case(state, case_number)
    items = state.engine().incidents(case=case_number, status="all" if show_all else "open")
    if state.as_json:
        _emit([i.to_dict() for i in items])
    elif items:
        _print_incidents(items)
    else:
        click.echo("no open incidents")


@cli.command()
@click.argument("incident_id", type=ID)
@name_option("--actor", default="operator", show_default=True)
@click.pass_obj
@_guard
def retry(state: _State, incident_id: int, actor: str) -> None:
    """Run a failed handler again."""
    case = state.engine().retry(incident_id, actor=actor)
    still = [i for i in case.incidents if i.id == incident_id]
    if state.as_json:
        _emit(case.to_dict())
    elif still:
        click.echo(f"incident {incident_id} failed again: {still[0].error}")
    else:
        click.echo(f"incident {incident_id} resolved; case {case.number}: {case.status}")
    if still:
        sys.exit(1)


@cli.command()
@click.argument("number")
@click.option("--reason", required=True, help="Why the case is withdrawn (audited).")
@name_option("--as", "department", default=None, help="Your department.")
@name_option("--actor", required=True, help="Your name.")
@click.pass_obj
@_guard
def cancel(state: _State, number: str, reason: str, department: str | None, actor: str) -> None:
    """Withdraw an open case: its tasks are cancelled and its timers stop."""
    case = state.engine().cancel(number, reason=reason, actor=actor, department=department)
    if state.as_json:
        _emit(case.to_dict())
    else:
        click.echo(f"case {case.number}: {case.status}")


@cli.command()
@click.pass_obj
@_guard
def tick(state: _State) -> None:
    """Fire every timer that is due now."""
    touched = state.engine().tick()
    if state.as_json:
        _emit(touched)
    else:
        click.echo(f"{len(touched)} case(s) had due timers" + (": " + ", ".join(touched)
                                                                if touched else ""))


from .cli_intake import add_commands as _add_intake  # noqa: E402

_add_intake(cli)
from .cli_time import add_commands as _add_time  # noqa: E402

_add_time(cli)


def main() -> None:
    cli(prog_name="onething")
