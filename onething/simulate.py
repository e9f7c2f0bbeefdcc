"""A synthetic county workload: one-matter (parallel, one lead) against department-by-department handling."""

from __future__ import annotations

import datetime as _dt
import heapq
import math
import random
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import VirtualClock
from .metrics import TOTAL, Figures, figures
from .timelimits import calendar, deadline_for

__all__ = ["Department", "SimCase", "Outcome", "DEPARTMENTS", "workload", "run_model",
           "summarise", "run_engine_sample", "Simulation", "simulate"]

CST = _dt.timezone(_dt.timedelta(hours=8))
OFFICE = ((_dt.time(8, 30), _dt.time(12, 0)), (_dt.time(14, 30), _dt.time(18, 0)))
ALL_DAY = ((_dt.time(0, 0), _dt.time(23, 59, 59, 999999)),)
DISPATCH_HOURS = 0.25        # the command centre (7×24) reads, classifies and dispatches
CLOSE_HOURS = 0.5            # the lead sums up the departments' answers and closes
EVALUATE_AFTER = _dt.timedelta(days=1)


@dataclass(frozen=True)
class Department:
    """A department: how many cases it works on at once, and when it works."""

    name: str
    capacity: int
    always_on: bool = False   # emergency repair crews work around the clock

    @property
    def hours(self) -> tuple[tuple[_dt.time, _dt.time], ...]:
        return ALL_DAY if self.always_on else OFFICE


DEPARTMENTS = (
    Department("县住建局", 6), Department("县水务局", 4, always_on=True),
    Department("县自然资源局", 3), Department("县生态环境局", 3), Department("县市场监管局", 4),
    Department("县交通运输局", 3), Department("县城管局", 6, always_on=True),
    Department("县人社局", 3), Department("县教育体育局", 2), Department("县供电局", 3, always_on=True),
    Department("罗雄街道办事处", 5), Department("九龙街道办事处", 4),
)
# matter, weight, (min, max) departments, time tier, mean handling hours per department
MATTERS = (
    ("appeal_12345", 0.55, (1, 3), "一般7天", 6.0),
    ("utilities_outage", 0.10, (1, 2), "水电气暖24小时", 3.0),
    ("emergency_hazard", 0.03, (1, 2), "紧急2小时", 1.0),
    ("illegal_building", 0.10, (3, 5), "复杂15个工作日", 16.0),
    ("solid_waste", 0.08, (2, 4), "一般7天", 10.0),
    ("wage_arrears", 0.08, (2, 4), "复杂15个工作日", 12.0),
    ("offcampus_tutoring", 0.06, (2, 3), "一般7天", 8.0),
)
CHANNELS = (("12345", 0.6), ("一码报", 0.25), ("网站", 0.1), ("来信来访", 0.05))
REGIONS = ("罗雄街道", "九龙街道", "阿岗镇", "板桥镇", "富乐镇", "马街镇", "长底乡", "钟山乡")


@dataclass
class SimCase:
    """One synthetic case; both handling modes see exactly the same draws."""

    idx: int
    arrival: _dt.datetime
    matter: str
    tier: str
    channel: str
    region: str
    departments: list[str]          # the lead first
    service: list[float]            # handling hours per department, same order
    handoff_days: list[float]       # sequential mode: days until the reporter reaches the next
    mood: float                     # the reporter's draw for satisfaction


@dataclass
class Outcome:
    case: SimCase
    first_start: _dt.datetime
    closed: _dt.datetime
    on_time: bool
    satisfied: bool

    @property
    def hours(self) -> float:
        return (self.closed - self.case.arrival).total_seconds() / 3600


def _pick(rng: random.Random, weighted: Iterable[tuple[Any, float]]) -> Any:
    items = list(weighted)
    return rng.choices([i for i, _ in items], [w for _, w in items])[0]


def workload(n: int, days: int, seed: int, start: _dt.datetime | None = None) -> list[SimCase]:
    """`n` cases arriving over `days` days, more by day than by night."""
    rng = random.Random(seed)
    start = start or _dt.datetime(2026, 3, 2, 0, 0, tzinfo=CST)
    by_name = [d.name for d in DEPARTMENTS]
    out = []
    for i in range(n):
        day = rng.randrange(days)
        hour = rng.choices(range(24), [1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 8, 6, 8, 10, 10, 9,
                                       8, 6, 5, 4, 3, 2, 1])[0]
        arrival = start + _dt.timedelta(days=day, hours=hour, minutes=rng.randrange(60))
        matter, _w, (lo, hi), tier, mean = _pick(
            rng, ((m, m[1]) for m in MATTERS))
        k = rng.randint(lo, hi)
        depts = rng.sample(by_name, k)
        service = [max(0.25, rng.lognormvariate(0, 0.6) * mean) for _ in depts]
        out.append(SimCase(
            idx=i, arrival=arrival, matter=matter, tier=tier,
            channel=_pick(rng, CHANNELS), region=rng.choice(REGIONS), departments=depts,
            service=service, handoff_days=[rng.uniform(0.5, 3.0) for _ in depts],
            mood=rng.random()))
    out.sort(key=lambda c: c.arrival)
    for i, case in enumerate(out):
        case.idx = i
    return out


def _finish(start: _dt.datetime, hours: float, dept: Department) -> _dt.datetime:
    """When `hours` of work begun at `start` end, counting only the department's hours."""
    if dept.always_on:
        return start + _dt.timedelta(hours=hours)
    cal = calendar()
    left = _dt.timedelta(hours=hours)
    t = start.astimezone(CST)
    while True:
        if cal.is_working_day(t.date()):
            for a, b in OFFICE:
                lo = t.replace(hour=a.hour, minute=a.minute, second=0, microsecond=0)
                hi = t.replace(hour=b.hour, minute=b.minute, second=0, microsecond=0)
                if t >= hi:
                    continue
                begin = max(t, lo)
                if begin + left <= hi:
                    return begin + left
                left -= hi - begin
                t = hi
        t = (t + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def size_departments(cases: list[SimCase], days: int,
                     utilisation: float = 0.8) -> tuple[Department, ...]:
    """Staff each department for its share of the workload at `utilisation` of its hours
    (a county sizes its task forces to the work, not the other way round)."""
    demand: dict[str, float] = {d.name: 0.0 for d in DEPARTMENTS}
    for c in cases:
        for name, hours in zip(c.departments, c.service):
            demand[name] += hours
    out = []
    for d in DEPARTMENTS:
        per_day = 24.0 if d.always_on else 7.0 * 5 / 7
        staff = demand[d.name] / max(1, days) / per_day / utilisation
        out.append(Department(d.name, max(d.capacity, math.ceil(staff)), d.always_on))
    return tuple(out)


def run_model(cases: list[SimCase], mode: str,
              progress: Callable[[int], None] | None = None,
              departments: tuple[Department, ...] = DEPARTMENTS) -> list[Outcome]:
    """Queue every case's department work through department capacities (first come, first
    served, in working hours). `parallel`: the command centre dispatches once, the lead and
    collaborators work at the same time. `sequential`: the reporter goes from department to
    department, each starting only after the previous one finished and the reporter got there."""
    if mode not in ("parallel", "sequential"):
        raise ValueError(mode)
    depts = {d.name: d for d in departments}
    free: dict[str, list[_dt.datetime]] = {d.name: [] for d in departments}
    for d in departments:
        free[d.name] = [cases[0].arrival if cases else _dt.datetime.now(CST)] * d.capacity
    queue: list[tuple[_dt.datetime, int, int, int]] = []   # (when, seq, case, step)
    seq = 0
    pending: dict[int, int] = {}
    first: dict[int, _dt.datetime] = {}
    finish: dict[int, _dt.datetime] = {}
    for c in cases:
        if mode == "parallel":
            at = c.arrival + _dt.timedelta(hours=DISPATCH_HOURS)
            pending[c.idx] = len(c.departments)
            for step in range(len(c.departments)):
                heapq.heappush(queue, (at, seq, c.idx, step))
                seq += 1
        else:
            heapq.heappush(queue, (c.arrival, seq, c.idx, 0))
            seq += 1
    done = 0
    outcomes: dict[int, Outcome] = {}
    while queue:
        at, _s, idx, step = heapq.heappop(queue)
        c = cases[idx]
        dept = depts[c.departments[step]]
        server = heapq.heappop(free[dept.name])
        begin = max(at, server)
        end = _finish(begin, c.service[step], dept)
        heapq.heappush(free[dept.name], end)
        first[idx] = min(first.get(idx, begin), begin)
        finish[idx] = max(finish.get(idx, end), end)
        if mode == "parallel":
            pending[idx] -= 1
            complete = pending[idx] == 0
        else:
            complete = step + 1 == len(c.departments)
            if not complete:
                arrive = end + _dt.timedelta(days=c.handoff_days[step])
                heapq.heappush(queue, (arrive, seq, idx, step + 1))
                seq += 1
        if complete:
            closed = finish[idx]
            if mode == "parallel":
                closed = _finish(closed, CLOSE_HOURS, depts[c.departments[0]])
            due = _dt.datetime.fromisoformat(deadline_for(c.tier, c.arrival)["due"])
            on_time = closed <= due
            satisfied = c.mood < (0.93 if on_time else 0.70)
            outcomes[idx] = Outcome(c, first[idx], closed, on_time, satisfied)
            done += 1
            if progress is not None:
                progress(1)
    return [outcomes[c.idx] for c in cases]


def summarise(outcomes: list[Outcome], by: str = "matter") -> list[Figures]:
    """The same figures as `onething report`, from the model's outcomes."""
    groups: dict[str, Figures] = {}
    total = Figures(TOTAL)
    for o in outcomes:
        key = {"matter": o.case.matter, "channel": o.case.channel, "region": o.case.region,
               "department": o.case.departments[0]}.get(by, o.case.matter)
        for f in (groups.setdefault(key, Figures(key)), total):
            f.received += 1
            f.responded += (o.first_start - o.case.arrival) <= _dt.timedelta(hours=24)
            f.closed += 1
            f.on_time += o.on_time
            f.supervised += not o.on_time
            f.evaluated += 1
            f.satisfied += o.satisfied
            f.resolved += o.satisfied
            f.hours.append(o.hours)
    return [groups[k] for k in sorted(groups)] + [total]


def run_engine_sample(outcomes: list[Outcome], db: str | None = None,
                      progress: Callable[[int], None] | None = None) -> list[Figures]:
    """Replay the one-matter timeline of some cases through the real engine (appeal_12345 on
    a virtual clock, timers fired by tick) and compute the figures from its database."""
    from .engine import Engine

    if not outcomes:
        return []
    folder = tempfile.mkdtemp(prefix="onething-sim-")
    url = db or f"sqlite:///{Path(folder) / 'sample.db'}"
    clock = VirtualClock(min(o.case.arrival for o in outcomes))
    steps: list[tuple[_dt.datetime, int, str, dict[str, Any]]] = []
    for o in outcomes:
        c = o.case
        lead, collabs = c.departments[0], c.departments[1:]
        dispatched = c.arrival + _dt.timedelta(hours=DISPATCH_HOURS)
        answer = "满意" if o.satisfied else "基本满意"
        steps += [
            (c.arrival, 0, "start", {}),
            (dispatched, 1, "dispatch", {"lead_department": lead, "collaborators": collabs,
                                         "time_limit": c.tier}),
            (o.first_start, 2, "sign", {"accepted": True}),
            (o.closed - _dt.timedelta(minutes=1), 3, "collaborate", {"opinion": "已办理"}),
            (o.closed - _dt.timedelta(minutes=1), 4, "handle", {"handling": "已办理"}),
            (o.closed, 5, "close", {"result": "已办结"}),
            (o.closed + EVALUATE_AFTER, 6, "evaluate", {"satisfaction": answer}),
        ]
    numbers: dict[int, str] = {}
    order = sorted(range(len(steps)), key=lambda i: (steps[i][0], steps[i][1]))
    with Engine(url, clock=clock, load_entry_points=False) as engine:
        index = [o for o in outcomes for _ in range(7)]
        for i in order:
            when, _rank, element, data = steps[i]
            case = index[i].case
            if when > clock.now():
                clock.set(when)
                engine.tick()
            if element != "start":
                _answer_supervision(engine, numbers[case.idx])
            if element == "start":
                numbers[case.idx] = engine.start(
                    "appeal_12345", {"reporter": f"反映人{case.idx}", "channel": case.channel,
                                     "region": case.region}).number
                continue
            for task in engine.tasks(case=numbers[case.idx]):
                if task.element == element:
                    engine.complete(task.id, actor="模拟", department=task.department or "",
                                    data=data)
            if element == "evaluate" and progress is not None:
                progress(1)
        clock.set(clock.now() + _dt.timedelta(days=30))
        engine.tick()
        for number in numbers.values():
            _answer_supervision(engine, number)
        return figures(engine.db, by="matter")


def _answer_supervision(engine: Any, number: str) -> None:
    """The county leader answers a supervision (督办) as soon as it appears."""
    for task in engine.tasks(case=number):
        if task.element == "supervise":
            engine.complete(task.id, actor="模拟", department=task.department or "",
                            data={"supervision_opinion": "限期办结"})


@dataclass
class Simulation:
    cases: int
    days: int
    seed: int
    parallel: list[Figures]
    sequential: list[Figures]
    sample: list[Figures] = field(default_factory=list)
    sample_size: int = 0

    @property
    def reduction(self) -> dict[str, float]:
        """How much shorter one-matter handling makes time to closure (percent)."""
        p, s = self.parallel[-1], self.sequential[-1]
        out = {}
        for name in ("median_hours", "p90_hours"):
            a, b = getattr(p, name), getattr(s, name)
            out[name] = round(100 * (1 - a / b), 1) if a is not None and b else 0.0
        mean_p = sum(p.hours) / len(p.hours) if p.hours else 0
        mean_s = sum(s.hours) / len(s.hours) if s.hours else 0
        out["mean_hours"] = round(100 * (1 - mean_p / mean_s), 1) if mean_s else 0.0
        return out


def simulate(n: int, days: int, seed: int, *, sample: int = 100,
             progress: Callable[[int], None] | None = None) -> Simulation:
    """The fast model for all `n` cases in both modes, and the real engine for `sample` of them."""
    cases = workload(n, days, seed)
    staffed = size_departments(cases, days)
    par = run_model(cases, "parallel", progress, staffed)
    seq = run_model(cases, "sequential", progress, staffed)
    rng = random.Random(seed + 1)
    picked = sorted(rng.sample(range(n), min(sample, n)))
    sample_out = [par[i] for i in picked if par[i].case.matter == "appeal_12345"]
    sample_figs = run_engine_sample(sample_out, progress=progress) if sample_out else []
    return Simulation(cases=n, days=days, seed=seed, parallel=summarise(par),
                      sequential=summarise(seq), sample=sample_figs,
                      sample_size=len(sample_out))

