"""The `onething` command line: catalog, validate, run, start, tasks, complete, case, incidents."""

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

from .clock import VirtualClock
from .engine import Engine
from .errors import OnethingError
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
            self._engine = Engine(self.db, processes=self.processes, clock=clock)
        return self._engine


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every failure into one line on stderr and exit 1: no traceback for users."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OnethingError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"database error: {reason}") from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")) from None
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


@cli.command()
@click.pass_obj
@_guard
def catalog(state: _State) -> None:
    """List the matters: code, name, lead, collaborators, leader, time limits, version."""
    matters = state.engine().catalog()
    if state.as_json:
        _emit([m.to_dict() for m in matters])
        return
    click.echo(render_table(
        ["code", "name", "lead", "collaborators", "leader", "time limits", "version"],
        [[m.code, m.name, m.lead, m.collaborators, m.leader, m.time_limits, m.version]
         for m in matters]))


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.pass_obj
@_guard
def validate(state: _State, files: tuple[str, ...]) -> None:
    """Check BPMN files; exit 1 naming file, line, element and reason for each problem."""
    from .bpmn.load import load_bpmn
    from .plugins import collect_handlers, make_plugin_manager

    operators = collect_handlers(make_plugin_manager())
    results = []
    for name in files:
        try:
            data = Path(name).read_bytes()
            definition = load_bpmn(data, name, operators=operators)
            results.append({"file": name, "ok": True, "process": definition.code,
                            "name": definition.name})
        except OSError as exc:
            results.append({"file": name, "ok": False, "error": f"{name}: {exc.strerror}"})
        except OnethingError as exc:
            results.append({"file": name, "ok": False, "error": str(exc),
                            "element": getattr(exc, "element", None),
                            "line": getattr(exc, "line", None)})
    if state.as_json:
        _emit(results)
    else:
        for r in results:
            if r["ok"]:
                click.echo(f"ok  {r['file']}: {r['process']} ({r['name']})")
            else:
                click.echo(f"error  {r['error']}", err=True)
    if not all(r["ok"] for r in results):
        sys.exit(1)


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
@click.option("--as", "department", default=None, help="Department opening the case.")
@click.option("--actor", default="话务员", show_default=True)
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
@click.option("--as", "department", required=True, help="Your department.")
@click.option("--actor", required=True, help="Your name.")
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
@click.option("--as", "department", required=True, help="Your department.")
@click.option("--actor", default=None, help="Your name (default: the department).")
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
    items = state.engine().incidents(case=case_number, status="all" if show_all else "open")
    if state.as_json:
        _emit([i.to_dict() for i in items])
    elif items:
        _print_incidents(items)
    else:
        click.echo("no open incidents")


@cli.command()
@click.argument("incident_id", type=int)
@click.option("--actor", default="operator", show_default=True)
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


def main() -> None:
    cli(prog_name="onething")
