"""Time tiers, working-day deadlines, extensions (延期) and supervisions (督办)."""

from __future__ import annotations

import datetime as _dt
import functools
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from SpiffWorkflow.util.task import TaskState

from . import store
from .clock import parse_duration
from .errors import CaseNotFound, ExtensionError, UnknownTimeTier

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Tier", "Calendar", "tiers", "calendar", "find_tier", "deadline_for",
           "request_extension", "decide_extension", "extensions", "supervisions",
           "record_supervisions", "DEFAULT_COMMAND_CENTRE", "TIERS_FILE"]

TIERS_FILE = Path(__file__).with_name("data") / "time_tiers.toml"
DEFAULT_COMMAND_CENTRE = "县调度指挥中心"
SUPERVISION_WORDS = ("督办", "supervis")
WARNING_WORDS = ("预警", "warn")


@dataclass(frozen=True)
class Tier:
    """One time tier: how long a stage may take and when to warn."""

    code: str
    label: str
    duration: str
    warn_before: str
    working_days: bool
    aliases: tuple[str, ...] = ()
    working_hours: bool = False   # the duration counts office hours on working days only


@dataclass(frozen=True)
class Calendar:
    """Holidays and make-up working days, counted in one fixed UTC offset."""

    holidays: frozenset[_dt.date]
    workdays: frozenset[_dt.date]
    offset: _dt.timezone
    hours: tuple[tuple[_dt.time, _dt.time], ...] = ((_dt.time(9), _dt.time(12)),
                                                     (_dt.time(14, 30), _dt.time(18)))

    def is_working_day(self, day: _dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: _dt.datetime, days: int) -> _dt.datetime:
        """`start` moved by `days` working days, keeping the local time of day."""
        local = start.astimezone(self.offset)
        moved = 0
        while moved < days:
            local += _dt.timedelta(days=1)
            if self.is_working_day(local.date()):
                moved += 1
        return local.astimezone(_dt.timezone.utc)

    def add_working_time(self, start: _dt.datetime, delta: _dt.timedelta) -> _dt.datetime:
        """`start` moved by `delta` of office hours (`hours`) on working days: 2 working
        hours from Friday 17:00 end on Monday 10:00."""
        local = start.astimezone(self.offset)
        left = delta
        for _ in range(3700):                      # ten years of days; a calendar with no
            day = local.date()                     # office hours at all never ends
            if self.is_working_day(day):
                for begin, end in self.hours:
                    lo = max(local, _dt.datetime.combine(day, begin, self.offset))
                    hi = _dt.datetime.combine(day, end, self.offset)
                    if lo >= hi:
                        continue
                    if left <= hi - lo:
                        return (lo + left).astimezone(_dt.timezone.utc)
                    left -= hi - lo
            local = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(0), self.offset)
        raise UnknownTimeTier("the calendar has no office hours to count working time in")


def _hours(spans: list[str]) -> tuple[tuple[_dt.time, _dt.time], ...]:
    out = []
    for span in spans:
        begin, _, end = str(span).partition("-")
        try:
            pair = (_dt.time.fromisoformat(begin.strip()), _dt.time.fromisoformat(end.strip()))
        except ValueError:
            raise UnknownTimeTier(f"office hours {span!r}: write them as \"09:00-12:00\"") from None
        if pair[0] >= pair[1]:
            raise UnknownTimeTier(f"office hours {span!r} end before they begin")
        out.append(pair)
    return tuple(sorted(out))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict[str, Tier], Calendar]:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UnknownTimeTier(f"cannot read the time tiers in {path}: {exc}") from None
    out: dict[str, Tier] = {}
    for code, t in raw.get("tiers", {}).items():
        tier = Tier(code=code, label=t.get("label", code), duration=t["duration"],
                    warn_before=t.get("warn_before", "PT0S"),
                    working_days=bool(t.get("working_days", False)),
                    aliases=tuple(t.get("aliases", ())),
                    working_hours=bool(t.get("working_hours", False)))
        parse_duration(tier.duration)
        out[code] = tier
    cal = raw.get("calendar", {})
    calendar_ = Calendar(
        holidays=frozenset(_dt.date.fromisoformat(d) for d in cal.get("holidays", [])),
        workdays=frozenset(_dt.date.fromisoformat(d) for d in cal.get("workdays", [])),
        offset=_dt.timezone(_dt.timedelta(hours=float(cal.get("utc_offset_hours", 8)))),
        **({"hours": _hours(cal["working_hours"])} if "working_hours" in cal else {}))
    return out, calendar_


def tiers(path: str | Path = TIERS_FILE) -> dict[str, Tier]:
    return _load(str(path))[0]


def calendar(path: str | Path = TIERS_FILE) -> Calendar:
    return _load(str(path))[1]


def find_tier(name: str, path: str | Path = TIERS_FILE) -> Tier:
    """A tier by code, label or alias (`general`, `一般7天`, `一般`)."""
    known = tiers(path)
    text = str(name or "").strip()
    for tier in known.values():
        if text == tier.code or text == tier.label or text in tier.aliases:
            return tier
    raise UnknownTimeTier(f"no time tier {text!r} (known: "
                          + ", ".join(f"{t.code} {t.label}" for t in known.values()) + ")")


def _add(start: _dt.datetime, duration: str | _dt.timedelta, tier: Tier,
         cal: Calendar) -> _dt.datetime:
    delta = parse_duration(duration) if isinstance(duration, str) else duration
    if tier.working_hours:
        return cal.add_working_time(start, delta)
    if not tier.working_days or delta.days == 0:
        return start + delta
    return cal.add_working_days(start, delta.days) + _dt.timedelta(seconds=delta.seconds)


def deadline_for(tier_name: str, start: _dt.datetime, *, stage: str = "",
                 path: str | Path = TIERS_FILE) -> dict[str, Any]:
    """The warning and due times of a stage that starts at `start` under a tier (ISO strings,
    as the BPMN timers read them: `deadline["warn"]`, `deadline["due"]`)."""
    tier = find_tier(tier_name, path)
    cal = calendar(path)
    due = _add(start, tier.duration, tier, cal)
    if tier.working_hours:
        # Office time too: 30 working minutes before a Monday 09:30 deadline is Friday 17:30.
        before = parse_duration(tier.duration) - parse_duration(tier.warn_before)
        warn = _add(start, max(before, _dt.timedelta(0)), tier, cal)
    else:
        warn = max(start, due - parse_duration(tier.warn_before))
    return {"stage": stage, "tier": tier.code, "label": tier.label,
            "working_days": tier.working_days, "working_hours": tier.working_hours,
            "start": start.isoformat(),
            "warn": warn.isoformat(), "due": due.isoformat(), "extensions": []}


# ---------------------------------------------------------------------------- extensions
def _dispatcher(engine: Engine, number: str) -> str:
    data = engine.case(number).data
    return str(data.get("dispatch_department") or DEFAULT_COMMAND_CENTRE)


def request_extension(engine: Engine, number: str, *, stage: str, duration: str, reason: str,
                      actor: str, department: str) -> dict[str, Any]:
    """A department asks for more time on a stage of a case (audited; nothing moves yet)."""
    try:
        seconds = int(parse_duration(duration).total_seconds())
    except ValueError as exc:
        raise ExtensionError(f"case {number}: {exc}") from None
    if seconds <= 0:
        raise ExtensionError(f"case {number}: an extension must add time ({duration!r})")
    if not reason.strip():
        raise ExtensionError(f"case {number}: an extension request needs a reason")
    view = engine.case(number)
    stages = sorted({t.attached_to for t in engine.definition(view.process_version).timers
                     if t.attached_to})
    if stage not in stages:
        raise ExtensionError(f"case {number}: stage {stage!r} has no time limit to extend "
                             f"(stages with one: {', '.join(stages) or 'none'})")
    now = engine.clock.now()
    with engine.transaction() as conn:
        case = conn.execute(select(store.cases.c.id, store.cases.c.status)
                            .where(store.cases.c.number == number)).first()
        if case is None:
            raise CaseNotFound(number)
        if case.status != "open":
            raise ExtensionError(f"case {number} is {case.status}")
        ext_id = conn.execute(insert(store.extensions).values(
            case_id=case.id, stage=stage, seconds=seconds, reason=reason.strip(),
            status="requested", requested_by=actor, department=department, requested_at=now,
        )).inserted_primary_key[0]
        conn.execute(insert(store.events).values(
            case_id=case.id, at=now, actor=actor, department=department,
            action="extension_requested", element=stage, task_id=None,
            detail={"extension": ext_id, "duration": duration, "reason": reason.strip()}))
    return extensions(engine, extension_id=ext_id)[0]


def decide_extension(engine: Engine, extension_id: int, *, approve: bool, actor: str,
                     department: str, note: str = "") -> dict[str, Any]:
    """The command centre approves (the stage's warning and deadline move) or rejects."""
    with engine.connect() as conn:
        row = conn.execute(select(store.extensions, store.cases.c.number)
                           .join(store.cases, store.cases.c.id == store.extensions.c.case_id)
                           .where(store.extensions.c.id == extension_id)).first()
    if row is None:
        raise ExtensionError(f"no extension request {extension_id}")
    if row.status != "requested":
        raise ExtensionError(f"extension request {extension_id} is already {row.status}")
    centre = _dispatcher(engine, row.number)
    if department != centre:
        raise ExtensionError(f"only {centre} decides extension requests of case {row.number}, "
                             f"not {department}")
    now = engine.clock.now()
    moved: dict[str, Any] = {}
    with engine.transaction() as conn:
        if approve:
            _approve(engine, row, extension_id, moved, actor=actor, department=department,
                     note=note)
        _close_request(conn, row, extension_id, approve, moved, actor=actor,
                       department=department, note=note, now=now)
    return extensions(engine, extension_id=extension_id)[0]


def _approve(engine: Engine, row: Any, extension_id: int, moved: dict[str, Any], *,
             actor: str, department: str, note: str) -> None:
    delta = _dt.timedelta(seconds=row.seconds)

    def apply(cmd: Any, workflow: Any) -> None:
        moved.update(_move_deadline(cmd.definition.timers, workflow, row.stage, extension_id,
                                    delta))
        cmd.log("extension_approved", element=row.stage, extension=extension_id,
                seconds=row.seconds, old_due=moved.get("old_due"),
                new_due=moved.get("new_due"), note=note)

    engine.act(row.number, apply, actor=actor, department=department)


def _close_request(conn: Connection, row: Any, extension_id: int, approve: bool,
                   moved: dict[str, Any], *, actor: str, department: str, note: str,
                   now: _dt.datetime) -> None:
    result = conn.execute(update(store.extensions).where(and_(
        store.extensions.c.id == extension_id, store.extensions.c.status == "requested"))
        .values(status="approved" if approve else "rejected", decided_by=actor,
                decided_at=now, note=note or None,
                old_due=_parse(moved.get("old_due")), new_due=_parse(moved.get("new_due"))))
    if result.rowcount != 1:
        raise ExtensionError(f"extension request {extension_id} was decided meanwhile")
    if not approve:
        conn.execute(insert(store.events).values(
            case_id=row.case_id, at=now, actor=actor, department=department,
            action="extension_rejected", element=row.stage, task_id=None,
            detail={"extension": extension_id, "note": note}))


def _parse(value: str | None) -> _dt.datetime | None:
    return store.utc(_dt.datetime.fromisoformat(value)) if value else None


def _move_deadline(all_timers: list[Any], workflow: Any, stage: str, extension_id: int,
                   delta: _dt.timedelta) -> dict[str, Any]:
    """Move the waiting timers attached to `stage` and the case's deadline record."""
    timers = [t for t in all_timers if t.attached_to == stage]
    ids = {t.id for t in timers}
    old_due = new_due = None
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if task.task_spec.bpmn_id not in ids:
            continue
        value = task.internal_data.get("event_value")
        if not isinstance(value, str):
            continue
        when = _dt.datetime.fromisoformat(value)
        if applied := task.internal_data.get("onething_extensions"):
            if extension_id in applied:
                continue
        moved = (when + delta).isoformat()
        task.internal_data["event_value"] = moved
        task.internal_data.setdefault("onething_extensions", []).append(extension_id)
        if any(w in (task.task_spec.bpmn_name or task.task_spec.bpmn_id)
               for w in SUPERVISION_WORDS) or old_due is None:
            old_due, new_due = value, moved
    if old_due is None:
        raise ExtensionError(f"stage {stage!r} has no running time limit to extend "
                             "(its deadline has passed or the stage is not active)")
    # Every unfinished task, and the timers' parents: a waiting timer re-reads its parent's data.
    pending = workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK)
    parents = [t.parent for t in pending if t.task_spec.bpmn_id in ids and t.parent is not None]
    for task in {id(t): t for t in [*pending, *parents]}.values():
        for key, value in list(task.data.items()):
            if isinstance(value, dict) and value.get("stage") == stage and "due" in value:
                if extension_id in value.get("extensions", []):
                    continue
                value = dict(value)
                for field in ("warn", "due"):
                    value[field] = (_dt.datetime.fromisoformat(value[field]) + delta).isoformat()
                value["extensions"] = [*value.get("extensions", []), extension_id]
                task.data[key] = value
    return {"old_due": old_due, "new_due": new_due}


def extensions(engine: Engine, *, case: str | None = None, status: str | None = None,
               extension_id: int | None = None) -> list[dict[str, Any]]:
    query = (select(store.extensions, store.cases.c.number)
             .join(store.cases, store.cases.c.id == store.extensions.c.case_id))
    if case:
        query = query.where(store.cases.c.number == case)
    if status:
        query = query.where(store.extensions.c.status == status)
    if extension_id is not None:
        query = query.where(store.extensions.c.id == extension_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(store.extensions.c.id)).all()
    return [dict(id=r.id, case=r.number, stage=r.stage, hours=round(r.seconds / 3600, 2),
                 reason=r.reason, status=r.status, requested_by=r.requested_by,
                 department=r.department, requested_at=store.utc(r.requested_at),
                 decided_by=r.decided_by, decided_at=store.utc(r.decided_at), note=r.note,
                 old_due=store.utc(r.old_due), new_due=store.utc(r.new_due)) for r in rows]


# ---------------------------------------------------------------------------- supervisions
def is_supervision(timer: Any) -> bool:
    text = f"{timer.name} {timer.id}"
    return any(w in text for w in SUPERVISION_WORDS)


def is_warning(timer: Any) -> bool:
    text = f"{timer.name} {timer.id}"
    return any(w in text for w in WARNING_WORDS)


def record_supervisions(conn: Connection, case_id: int, timers: list[Any],
                        fired: dict[str, str], *, leader: str | None,
                        now: _dt.datetime) -> int:
    """Write one supervision row per case and stage for fired 督办 timers, in the firing
    command's transaction (idempotent: the unique key refuses a second one, whichever
    worker gets there)."""
    by_id = {t.id: t for t in timers}
    written = 0
    for element, due in fired.items():
        timer = by_id.get(element)
        if timer is None or not is_supervision(timer):
            continue
        stage = timer.attached_to or element
        exists = conn.execute(select(store.supervisions.c.id).where(and_(
            store.supervisions.c.case_id == case_id,
            store.supervisions.c.stage == stage))).first()
        if exists is not None:
            continue
        try:
            with conn.begin_nested():
                conn.execute(insert(store.supervisions).values(
                    case_id=case_id, stage=stage, element=element, leader=leader,
                    due_at=_parse(due), opened_at=now))
            written += 1
        except IntegrityError:
            continue  # another worker wrote it first: still exactly one
    return written


def supervisions(engine: Engine, *, case: str | None = None) -> list[dict[str, Any]]:
    query = (select(store.supervisions, store.cases.c.number)
             .join(store.cases, store.cases.c.id == store.supervisions.c.case_id))
    if case:
        query = query.where(store.cases.c.number == case)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(store.supervisions.c.id)).all()
    return [dict(id=r.id, case=r.number, stage=r.stage, element=r.element, leader=r.leader,
                 due_at=store.utc(r.due_at), opened_at=store.utc(r.opened_at)) for r in rows]


def tier_rows() -> list[dict[str, Any]]:
    return [asdict(t) for t in tiers().values()]
