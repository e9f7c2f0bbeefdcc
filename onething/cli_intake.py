"""CLI for intake and dispatch: intake, route, queue, dispatch, merge, unmerge, return, declare, lookup."""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from .clock import VirtualClock
from .errors import OnethingError, ReportRefused

__all__ = ["add_commands"]


def _intake(state: Any, clock: Any = None, directory: str | None = None,
            rules: str | None = None) -> Any:
    from .directory import Directory
    from .intake import Intake
    from .routing import Rules

    d = Directory.load(directory)
    return Intake(state.engine(clock), d, Rules.load(d, rules))


def _emit(obj: Any) -> None:
    from .cli import _emit as emit

    emit(obj)


def _read_reports(path: str) -> list[dict[str, Any]]:
    """A file of reports: JSON lines, a JSON list, or {"reports": [...]}; every report an
    object. Anything else is refused naming the file (and line) before any report is taken."""
    text = Path(path).read_text(encoding="utf-8")
    items: list[tuple[str, Any]] = []
    if path.endswith(".jsonl"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                try:
                    items.append((f"{path}:{n}", json.loads(line)))
                except ValueError as exc:
                    raise OnethingError(f"{path}:{n}: not JSON: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise OnethingError(f"{path}: not JSON: {exc}") from None
        if isinstance(data, dict):
            if not isinstance(data.get("reports"), list):
                raise OnethingError(f"{path}: expected a list of reports or an object with "
                                    "a \"reports\" list")
            data = data["reports"]
        if not isinstance(data, list):
            raise OnethingError(f"{path}: expected a list of reports")
        items = [(f"{path}: report {n}", item) for n, item in enumerate(data, 1)]
    for where, item in items:
        if not isinstance(item, dict):
            raise OnethingError(f"{where}: a report must be an object with channel, text, "
                                f"region …, not {type(item).__name__}")
    return [item for _where, item in items]


def _load_file(state: Any, path: str, directory: str | None, rules: str | None,
               actor: str) -> None:
    """Load a day of reports on a virtual clock; count what happened to each kind."""
    items = _read_reports(path)
    first = next((i.get("at") for i in items if i.get("at")), None)
    clock = VirtualClock(first or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0))
    intake = _intake(state, clock, directory, rules)
    outcomes: Counter[str] = Counter()
    by_channel: dict[str, Counter[str]] = {}
    refs: dict[str, str] = {}
    results = []
    for n, item in enumerate(items, 1):
        if item.get("at"):
            when = _dt.datetime.fromisoformat(item["at"])
            if when > clock.now():
                clock.set(when)
        action = item.get("action", "report")
        try:
            if action == "report":
                result = intake.submit(item, actor=item.get("actor", actor))
                outcome, number = result.outcome, result.number
                if item.get("ref"):
                    refs[item["ref"]] = result.case or result.number
            elif action == "return":
                case = refs[item["ref"]]
                view = intake.engine.case(case)
                intake.return_case(case, department=view.data["lead_department"],
                                   actor=item.get("actor", "领办部门"), reason=item["reason"])
                outcome, number = "returned", case
            elif action == "reassign":
                case = refs[item["ref"]]
                intake.dispatch(case, lead=item["lead"], collaborators=item.get("collaborators", []),
                                actor=item.get("actor", actor), note=item.get("note"))
                outcome, number = "reassigned", case
            elif action == "declare":
                case = refs[item["ref"]]
                county = intake.declare_to_county(case, matter=item["matter"],
                                                  actor=item.get("actor", actor),
                                                  note=item.get("note"))
                outcome, number = "declared", county.number
            else:
                raise OnethingError(f"unknown action {action!r}")
        except ReportRefused as exc:
            outcome, number = "refused", str(exc)
        except (OnethingError, KeyError) as exc:
            raise OnethingError(f"{path}, line {n}: {exc}") from None
        outcomes[outcome] += 1
        by_channel.setdefault(item.get("channel", action), Counter())[outcome] += 1
        results.append({"line": n, "action": action, "outcome": outcome, "number": number})
    if state.as_json:
        _emit({"counts": dict(outcomes), "by_channel": {k: dict(v) for k, v in by_channel.items()},
               "results": results})
        return
    from .textable import render_table

    kinds = ["dispatched", "merged", "redirected", "queued", "refused", "returned",
             "reassigned", "declared"]
    click.echo(f"{len(items)} lines from {path}")
    click.echo(render_table(["outcome", "count"], [[k, outcomes[k]] for k in kinds if outcomes[k]]
                            + [["total", sum(outcomes.values())]]))
    click.echo("")
    click.echo(render_table(["channel", *[k for k in kinds if outcomes[k]]],
                            [[ch, *[c[k] for k in kinds if outcomes[k]]]
                             for ch, c in sorted(by_channel.items())]))


def add_commands(group: click.Group) -> None:
    """Attach the intake commands to the `onething` group."""
    from .cli import _guard, _State
    from .textable import render_table

    files_opts = [
        click.option("--directory", "directory", default=None, type=click.Path(dir_okay=False),
                     help="Directory TOML (default: the shipped onething/data/directory.toml)."),
        click.option("--rules", "rules", default=None, type=click.Path(dir_okay=False),
                     help="Routing rules TOML (default: onething/data/routing.toml)."),
    ]

    def with_files(fn: Any) -> Any:
        for opt in reversed(files_opts):
            fn = opt(fn)
        return fn

    @group.command()
    @click.argument("text", required=False)
    @click.option("--channel", default="12345", show_default=True,
                  help="12345 (call), qr (一码报/小程序), township (街乡点单), web (form).")
    @click.option("--region", default=None, help="Region code or name from the directory.")
    @click.option("--reporter", default="匿名", show_default=True)
    @click.option("--phone", default=None)
    @click.option("--category", default=None, help="Category the reporter chose, if any.")
    @click.option("--photo", "photos", multiple=True, type=click.Path(dir_okay=False),
                  help="A photo or file to attach (repeatable).")
    @click.option("--merge-into", default=None, help="Join this open case by hand.")
    @click.option("--file", "file", default=None, type=click.Path(dir_okay=False),
                  help="Load many reports (.jsonl or .json) and count the outcomes.")
    @click.option("--actor", default="话务员", show_default=True)
    @with_files
    @click.pass_obj
    @_guard
    def intake(state: _State, text: str | None, channel: str, region: str | None,
               reporter: str, phone: str | None, category: str | None, photos: tuple[str, ...],
               merge_into: str | None, file: str | None, actor: str, directory: str | None,
               rules: str | None) -> None:
        """Take a report from any channel; prints the number the reporter looks it up by."""
        if file:
            _load_file(state, file, directory, rules, actor)
            return
        from .attachments import from_path
        from .intake import Report

        report = Report(channel=channel, text=text or "", region=region or "", reporter=reporter,
                        phone=phone, category=category,
                        attachments=[from_path(p) for p in photos])
        result = _intake(state, None, directory, rules).submit(report, actor=actor,
                                                               merge_into=merge_into)
        if state.as_json:
            _emit(result.to_dict())
            return
        click.echo(f"{result.outcome}: {result.number}")
        click.echo(result.message)
        if result.merge:
            click.echo(f"merged because: {result.merge['reason']}")

    @group.command()
    @click.argument("text")
    @click.option("--region", required=True, help="Region code or name from the directory.")
    @click.option("--channel", default=None)
    @click.option("--category", default=None)
    @click.option("--explain", is_flag=True, help="Show every rule considered and why.")
    @with_files
    @click.pass_obj
    @_guard
    def route(state: _State, text: str, region: str, channel: str | None,
              category: str | None, explain: bool, directory: str | None,
              rules: str | None) -> None:
        """Show where TEXT from REGION would go (no case is opened)."""
        from .directory import Directory
        from .routing import Rules

        d = Directory.load(directory)
        r = Rules.load(d, rules)
        decision = r.route(text, d.region(region).code, channel=channel, category=category)
        if state.as_json:
            _emit(decision.to_dict())
            return
        if decision.emergency:
            click.echo(f"redirect: call {decision.emergency.number} ({decision.emergency.name})")
        elif decision.rule is None:
            click.echo("no rule matched: manual dispatch queue")
        else:
            collab = "、".join(decision.collaborators or []) or "(the matter's defaults)"
            click.echo(f"rule {decision.rule.id} ({decision.rule.name}) → matter {decision.matter}"
                       f", lead {decision.lead or '(the matter default)'}, collaborators {collab}")
        if explain:
            for line in decision.explanation:
                click.echo(f"  {line}")

    @group.group(invoke_without_command=True)
    @with_files
    @click.pass_context
    def queue(ctx: click.Context, directory: str | None, rules: str | None) -> None:
        """The command centre's manual dispatch queue (and `queue dispatch`)."""
        ctx.meta["intake_files"] = (directory, rules)
        if ctx.invoked_subcommand is None:
            _show_queue(ctx.obj, directory, rules)

    @_guard
    def _show_queue(state: _State, directory: str | None, rules: str | None) -> None:
        items = _intake(state, None, directory, rules).queue()
        if state.as_json:
            _emit(items)
        elif not items:
            click.echo("the dispatch queue is empty")
        else:
            click.echo(render_table(["number", "kind", "since", "region", "text", "reason"],
                                    [[i["number"], i["kind"], f"{i['received_at']:%Y-%m-%d %H:%M}",
                                      i["region"], i["text"], i["reason"]] for i in items],
                                    max_width=40))

    @queue.command("dispatch")
    @click.argument("number")
    @click.option("--lead", required=True, help="Lead department (领办).")
    @click.option("--collaborator", "collaborators", multiple=True, help="Collaborating department.")
    @click.option("--matter", default=None, help="Matter for an unrouted report (default 12345).")
    @click.option("--note", default=None)
    @click.option("--actor", default="调度员", show_default=True)
    @click.pass_context
    @_guard
    def queue_dispatch(ctx: click.Context, number: str, lead: str,
                       collaborators: tuple[str, ...], matter: str | None, note: str | None,
                       actor: str) -> None:
        """Dispatch a queued report, or reassign a returned case."""
        directory, rules = ctx.meta.get("intake_files", (None, None))
        result = _intake(ctx.obj, None, directory, rules).dispatch(
            number, lead=lead, collaborators=list(collaborators), actor=actor, matter=matter,
            note=note)
        if ctx.obj.as_json:
            _emit(result.to_dict())
        else:
            click.echo(f"{result.outcome}: {result.number} → {lead}")

    @group.command()
    @click.argument("source")
    @click.argument("case", required=False)
    @click.option("--into", "into", default=None, metavar="CASE",
                  help="The open case to merge into (same as the second argument).")
    @click.option("--reason", default=None, help="Why they are the same matter (并单理由).")
    @click.option("--actor", default="调度员", show_default=True)
    @with_files
    @click.pass_obj
    @_guard
    def merge(state: _State, source: str, case: str | None, into: str | None,
              reason: str | None, actor: str, directory: str | None, rules: str | None) -> None:
        """并单 by hand: join SOURCE to an open CASE.

        SOURCE is a queued report (R…), which joins the case, or a case already dispatched,
        which is cancelled after its reporters, reports and photos move to CASE:

        \b
          onething merge R20260302000007 YJS20260302000001
          onething merge YJS20260302000004 --into YJS20260302000001 --reason "同一处下水道"
        """
        if case and into and case != into:
            raise click.UsageError(f"two targets given: {case} and --into {into}")
        target = into or case
        if not target:
            raise click.UsageError("say which case to merge into: CASE or --into CASE")
        intake = _intake(state, None, directory, rules)
        if source.startswith("R"):
            result = intake.merge(source, target, actor=actor, reason=reason)
        else:
            result = intake.merge_cases(source, target, actor=actor, reason=reason)
        _emit(result.to_dict()) if state.as_json else click.echo(result.message)

    @group.command()
    @click.argument("report")
    @click.option("--actor", default="调度员", show_default=True)
    @with_files
    @click.pass_obj
    @_guard
    def unmerge(state: _State, report: str, actor: str, directory: str | None,
                rules: str | None) -> None:
        """Split a merged REPORT off its case and route it on its own."""
        result = _intake(state, None, directory, rules).unmerge(report, actor=actor)
        _emit(result.to_dict()) if state.as_json else click.echo(
            f"{result.outcome}: {result.number}")

    @group.command("return")
    @click.argument("case")
    @click.option("--as", "department", required=True, help="The lead department returning it.")
    @click.option("--actor", required=True)
    @click.option("--reason", required=True, help="Why it is not yours (退单理由).")
    @with_files
    @click.pass_obj
    @_guard
    def return_cmd(state: _State, case: str, department: str, actor: str, reason: str,
                   directory: str | None, rules: str | None) -> None:
        """退单: return a misrouted CASE to the command centre with a reason."""
        view = _intake(state, None, directory, rules).return_case(
            case, department=department, actor=actor, reason=reason)
        if state.as_json:
            _emit(view.to_dict())
            return
        where = "、".join(sorted({f"{t.name}（{t.department}）" for t in view.open_tasks}))
        click.echo(f"returned {case} (退单 {view.data.get('return_count')} 次); now: {where}")

    @group.command()
    @click.argument("case")
    @click.option("--matter", required=True, help="The county module's matter code.")
    @click.option("--actor", required=True)
    @click.option("--note", default=None)
    @with_files
    @click.pass_obj
    @_guard
    def declare(state: _State, case: str, matter: str, actor: str, note: str | None,
                directory: str | None, rules: str | None) -> None:
        """街乡点单: declare a township CASE to the county module; both cases are linked."""
        county = _intake(state, None, directory, rules).declare_to_county(
            case, matter=matter, actor=actor, note=note)
        if state.as_json:
            _emit(county.to_dict())
        else:
            click.echo(f"declared {case} to the county: case {county.number} ({county.matter_name})")

    @group.command()
    @click.argument("number")
    @with_files
    @click.pass_obj
    @_guard
    def lookup(state: _State, number: str, directory: str | None, rules: str | None) -> None:
        """The reporter's view of a case or report number (no internal data)."""
        view = _intake(state, None, directory, rules).lookup(number)
        if state.as_json:
            _emit(view)
            return
        for key, value in view.items():
            if value not in (None, "", []):
                if isinstance(value, _dt.datetime):
                    value = f"{value:%Y-%m-%d %H:%M}"
                click.echo(f"{key}: {value}")
