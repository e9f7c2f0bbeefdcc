"""CLI commands for time: worker, extend, supervisions, tiers, report, simulate."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import sys
from pathlib import Path
from typing import Any

import click

from .clock import SystemClock, VirtualClock, parse_duration
from .errors import OnethingError
from .textable import render_table

__all__ = ["add_commands"]

RATE_COLUMNS = ("response_rate", "resolution_rate", "satisfaction_rate", "closure_rate",
                "on_time_rate")
HEADERS = ["group", "received", "closed", "响应率", "解决率", "满意率", "办结率", "on time",
           "median h", "P90 h"]


def _clock(at: str | None, advance: str | None) -> Any:
    """--at TIME / --advance DURATION: a virtual clock there; neither: the real clock."""
    if at is None and advance is None:
        return SystemClock()
    start = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    if at is not None:
        try:
            start = _dt.datetime.fromisoformat(at.strip())
        except ValueError:
            raise click.BadParameter(f"{at!r} is not an ISO 8601 time (2026-03-02T09:00+08:00)",
                                     param_hint="--at") from None
    clock = VirtualClock(start)
    if advance is not None:
        try:
            clock.advance(parse_duration(advance))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--advance") from None
    return clock


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _rows(figs: list[Any]) -> list[list[Any]]:
    return [[f.group, f.received, f.closed, *(_pct(getattr(f, r)) for r in RATE_COLUMNS),
             "" if f.median_hours is None else f"{f.median_hours:.1f}",
             "" if f.p90_hours is None else f"{f.p90_hours:.1f}"] for f in figs]


def _png(figs: list[Any], path: str, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise OnethingError("--png needs matplotlib (pip install matplotlib)") from None
    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei",
                                       "SimHei", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    groups = [f for f in figs]
    names = [f.group for f in groups]
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(10, 1.6 * len(names) + 6), 5))
    labels = ["响应率", "解决率", "满意率", "办结率", "按时率"]
    width = 0.8 / len(RATE_COLUMNS)
    for i, (rate, label) in enumerate(zip(RATE_COLUMNS, labels)):
        values = [100 * (getattr(f, rate) or 0) for f in groups]
        left.bar([x + i * width for x in range(len(names))], values, width, label=label)
    left.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=30,
                    ha="right")
    left.set_ylim(0, 125)
    left.set_ylabel("%")
    left.set_title("三率、办结率、按时率")
    left.legend(fontsize="small", ncol=5, loc="upper center")
    med = [f.median_hours or 0 for f in groups]
    p90 = [f.p90_hours or 0 for f in groups]
    right.bar([x - 0.2 for x in range(len(names))], med, 0.4, label="中位数")
    right.bar([x + 0.2 for x in range(len(names))], p90, 0.4, label="P90")
    right.set_xticks(range(len(names)), names, rotation=30, ha="right")
    right.set_ylabel("小时")
    right.set_title("办结用时")
    right.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def _writable(path: str, hint: str) -> None:
    """Refuse an output path that cannot be written before anything is computed or written."""
    target = Path(path)
    if target.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=hint)
    folder = target.parent
    if not folder.is_dir():
        raise click.BadParameter(f"cannot write {path}: the folder {str(folder)!r} does not "
                                 "exist", param_hint=hint)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"cannot write {path}: the folder is read-only",
                                 param_hint=hint)


def add_commands(group: click.Group) -> None:
    """Register the time commands on the `onething` group."""
    from .cli import ID, _emit, _guard, _State, check_case, name_option

    @group.command()
    @click.option("--once", is_flag=True, help="One pass, then exit.")
    @click.option("--interval", default=5.0, show_default=True,
                  type=click.FloatRange(min=0, min_open=True), help="Seconds between passes.")
    @click.option("--at", "at", default=None, help="Run once at this virtual time (ISO 8601).")
    @click.option("--advance", default=None,
                  help="Run once at now (or --at) plus this ISO duration, e.g. P8D.")
    @name_option("--name", default=None, help="Worker name in leases (default host:pid).")
    @click.pass_obj
    @_guard
    def worker(state: _State, once: bool, interval: float, at: str | None,
               advance: str | None, name: str | None) -> None:
        """Fire due timers and retry failed handlers (backoff 30 s … 1 h); run many at once."""
        from .worker import Worker

        clock = _clock(at, advance)
        w = Worker(state.engine(clock), name=name)
        if once or isinstance(clock, VirtualClock):
            done = w.run_once()
            if state.as_json:
                _emit({"at": clock.now(), "fired": done.fired, "retried": done.retried,
                       "failed_again": done.failed_again, "gave_up": done.gave_up})
            else:
                click.echo(f"{clock.now():%Y-%m-%d %H:%M} fired {len(done.fired)} case(s), "
                           f"resolved {len(done.retried)} incident(s), "
                           f"{len(done.failed_again)} failed again, {len(done.gave_up)} left "
                           "to an operator")
            return
        click.echo(f"worker {w.name}: every {interval:g}s; Ctrl-C stops", err=True)
        try:
            w.run(interval=interval, on_pass=lambda p: p.idle or click.echo(
                f"fired {len(p.fired)}, resolved {len(p.retried)}, "
                f"failed again {len(p.failed_again)}", err=True))
        except KeyboardInterrupt:
            pass

    @group.group()
    def extend() -> None:
        """Extension requests (延期): a department asks, the command centre decides."""

    @extend.command("request")
    @click.argument("number")
    @click.option("--stage", default="handle", show_default=True)
    @click.option("--by", "duration", required=True, help="ISO duration, e.g. P3D.")
    @click.option("--reason", required=True)
    @name_option("--as", "department", required=True)
    @name_option("--actor", default=None)
    @click.option("--at", "at", default=None, help="Virtual time of the request.")
    @click.pass_obj
    @_guard
    def extend_request(state: _State, number: str, stage: str, duration: str, reason: str,
                       department: str, actor: str | None, at: str | None) -> None:
        """Ask for more time on a stage of case NUMBER."""
        from .timelimits import request_extension

        row = request_extension(state.engine(_clock(at, None)), number, stage=stage,
                                duration=duration, reason=reason, actor=actor or department,
                                department=department)
        _emit(row) if state.as_json else click.echo(f"extension request {row['id']} for case "
                                                    f"{number} ({row['hours']} h): requested")

    def _decide(state: _State, ext_id: int, approve: bool, department: str,
                actor: str | None, note: str, at: str | None) -> None:
        from .timelimits import decide_extension

        row = decide_extension(state.engine(_clock(at, None)), ext_id, approve=approve,
                               actor=actor or department, department=department, note=note)
        if state.as_json:
            _emit(row)
        else:
            moved = f"; deadline {row['old_due']:%Y-%m-%d %H:%M} → {row['new_due']:%Y-%m-%d %H:%M}" \
                if row["new_due"] else ""
            click.echo(f"extension request {ext_id} of case {row['case']}: {row['status']}{moved}")

    for verb, approve in (("approve", True), ("reject", False)):
        @extend.command(verb, help=f"{verb.title()} an extension request (the command centre).")
        @click.argument("ext_id", type=ID)
        @name_option("--as", "department", default="县调度指挥中心", show_default=True)
        @name_option("--actor", default=None)
        @click.option("--note", default="")
        @click.option("--at", "at", default=None, help="Virtual time of the decision.")
        @click.pass_obj
        @_guard
        def decide(state: _State, ext_id: int, department: str, actor: str | None, note: str,
                   at: str | None, approve: bool = approve) -> None:
            _decide(state, ext_id, approve, department, actor, note, at)

    @extend.command("list")
    @click.option("--case", "case_number", default=None)
    @click.option("--status", default=None,
                  type=click.Choice(["requested", "approved", "rejected"]))
    @click.pass_obj
    @_guard
    def extend_list(state: _State, case_number: str | None, status: str | None) -> None:
        """Extension requests, oldest first."""
        from .timelimits import extensions

        check_case(state, case_number)

        rows = extensions(state.engine(), case=case_number, status=status)
        if state.as_json:
            _emit(rows)
            return
        click.echo(render_table(["id", "case", "stage", "hours", "status", "by", "reason"],
                                [[r["id"], r["case"], r["stage"], r["hours"], r["status"],
                                  r["department"], r["reason"]] for r in rows]))

    @group.command()
    @click.option("--case", "case_number", default=None)
    @click.pass_obj
    @_guard
    def supervisions(state: _State, case_number: str | None) -> None:
        """Supervisions (督办): one per case and stage."""
        from .timelimits import supervisions as rows_of

        check_case(state, case_number)

        rows = rows_of(state.engine(), case=case_number)
        if state.as_json:
            _emit(rows)
            return
        click.echo(render_table(["case", "stage", "leader", "deadline", "opened"],
                                [[r["case"], r["stage"], r["leader"],
                                  f"{r['due_at']:%Y-%m-%d %H:%M}" if r["due_at"] else "",
                                  f"{r['opened_at']:%Y-%m-%d %H:%M}"] for r in rows]))

    @group.command()
    @click.pass_obj
    @_guard
    def tiers(state: _State) -> None:
        """The time tiers (办理时限档次) and what they mean."""
        from .timelimits import tier_rows

        rows = tier_rows()
        if state.as_json:
            _emit(rows)
            return
        click.echo(render_table(["code", "label", "duration", "warn before", "working days",
                                 "aliases"],
                                [[r["code"], r["label"], r["duration"], r["warn_before"],
                                  "yes" if r["working_days"] else "", "、".join(r["aliases"])]
                                 for r in rows]))

    @group.command()
    @click.option("--by", "by", default="matter", show_default=True,
                  type=click.Choice(["department", "matter", "channel", "region", "period"]))
    @click.option("--period", default="month", show_default=True,
                  type=click.Choice(["day", "week", "month", "year"]))
    @click.option("--since", default=None, help="Cases received from (ISO date/time).")
    @click.option("--until", default=None, help="Cases received before (ISO date/time).")
    @click.option("--response-hours", default=24.0, show_default=True,
                  type=click.FloatRange(min=0, min_open=True))
    @click.option("--csv", "csv_path", default=None, help="Write CSV to a file ('-' stdout).")
    @click.option("--png", "png_path", default=None, help="Write a chart (matplotlib).")
    @click.pass_obj
    @_guard
    def report(state: _State, by: str, period: str, since: str | None, until: str | None,
               response_hours: float, csv_path: str | None, png_path: str | None) -> None:
        """响应率, 解决率, 满意率, 办结率, on-time rate, median and P90 hours to closure."""
        from .metrics import figures

        def when(text: str | None, hint: str) -> _dt.datetime | None:
            if text is None:
                return None
            try:
                value = _dt.datetime.fromisoformat(text.strip())
            except ValueError:
                raise click.BadParameter(f"{text!r} is not an ISO 8601 date or time "
                                         "(2026-03-01 or 2026-03-01T08:00)",
                                         param_hint=hint) from None
            return value if value.tzinfo else value.replace(
                tzinfo=_dt.timezone(_dt.timedelta(hours=8)))

        start, end = when(since, "--since"), when(until, "--until")
        if start and end and start >= end:
            raise click.BadParameter(f"{since} is not before --until {until}",
                                     param_hint="--since")
        for path, hint in ((csv_path, "--csv"), (png_path, "--png")):
            if path and path != "-":
                _writable(path, hint)
        figs = figures(state.engine().db, by=by, period=period, since=start,
                       until=end, response_hours=response_hours)
        if csv_path:
            buf = io.StringIO()
            rows = [f.to_dict() for f in figs]
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            if csv_path == "-":
                sys.stdout.write(buf.getvalue())
            else:
                with open(csv_path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(buf.getvalue())
        if png_path:
            _png(figs, png_path, f"onething report by {by}")
        if state.as_json:
            _emit([f.to_dict() for f in figs])
        elif csv_path != "-":
            click.echo(render_table(HEADERS, _rows(figs)))
            if png_path:
                click.echo(f"chart written to {png_path}")

    @group.command()
    @click.option("--cases", "n", default=1000, show_default=True, type=click.IntRange(min=1))
    @click.option("--days", default=30, show_default=True, type=click.IntRange(min=1))
    @click.option("--seed", default=1, show_default=True)
    @click.option("--sample", default=100, show_default=True, type=click.IntRange(min=0),
                  help="How many cases also run through the real engine.")
    @click.pass_obj
    @_guard
    def simulate(state: _State, n: int, days: int, seed: int, sample: int) -> None:
        """A synthetic county workload: one-matter vs department-by-department handling."""
        from .simulate import simulate as run

        total = 2 * n + min(sample, n)
        with click.progressbar(length=total, label="simulating", file=sys.stderr) as bar:
            result = run(n, days, seed, sample=sample, progress=bar.update)
        if state.as_json:
            _emit({"cases": n, "days": days, "seed": seed,
                   "one_matter": [f.to_dict() for f in result.parallel],
                   "sequential": [f.to_dict() for f in result.sequential],
                   "engine_sample": [f.to_dict() for f in result.sample],
                   "engine_sample_size": result.sample_size,
                   "reduction_percent": result.reduction})
            return
        click.echo(f"{n} synthetic cases over {days} days (seed {seed}). All {n} run through a "
                   "fast queueing model (department capacities, working hours, holidays);\n"
                   f"{result.sample_size} appeal_12345 cases of a {min(sample, n)}-case sample "
                   "also ran through the real engine (SQLite, virtual clock, timers by tick).\n")
        click.echo("one-matter handling (dispatch once; lead and collaborators in parallel)")
        click.echo(render_table(HEADERS, _rows(result.parallel)))
        click.echo("\ndepartment-by-department handling (跑好几个部门), same workload")
        click.echo(render_table(HEADERS, _rows(result.sequential)))
        if result.sample:
            click.echo("\nreal-engine sample, figures by `onething report` from its database "
                       "(closure includes the call-back day)")
            click.echo(render_table(HEADERS, _rows(result.sample)))
        r = result.reduction
        click.echo(f"\none-matter handling cuts time to closure by {r['median_hours']:.1f}% "
                   f"(median), {r['p90_hours']:.1f}% (P90), {r['mean_hours']:.1f}% (mean)")
