"""The figures a county reports (三率, 办结率, on time, time to closure), by SQL over cases and events."""

from __future__ import annotations

import datetime as _dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine as SqlEngine

from . import store
from .errors import OnethingError

__all__ = ["Figures", "figures", "GROUPINGS", "PERIODS", "percentile", "UNSATISFIED",
           "SATISFIED", "TOTAL"]

GROUPINGS = ("department", "matter", "channel", "region", "period")
PERIODS = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m", "year": "%Y"}
SATISFIED = ("满意", "基本满意")
UNSATISFIED = "不满意"
TOTAL = "合计"
# Periods are counted in China Standard Time, as the county reports them.
CST = _dt.timezone(_dt.timedelta(hours=8))
# Roles whose completed work is not a department's response (the dispatcher, the reporter,
# the leader's supervision).
NOT_A_RESPONSE = ("dispatch", "reporter", "leader")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Figures:
    """One row of the report: counts, the rates a county reports, and time to closure."""

    group: str
    received: int = 0
    responded: int = 0
    closed: int = 0
    on_time: int = 0
    supervised: int = 0
    evaluated: int = 0      # answers of reporters (one case may have several)
    satisfied: int = 0
    resolved: int = 0
    hours: list[float] = field(default_factory=list, repr=False)

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    @property
    def response_rate(self) -> float | None:     # 响应率
        return self._rate(self.responded, self.received)

    @property
    def resolution_rate(self) -> float | None:   # 解决率
        return self._rate(self.resolved, self.closed)

    @property
    def satisfaction_rate(self) -> float | None:  # 满意率
        return self._rate(self.satisfied, self.evaluated)

    @property
    def closure_rate(self) -> float | None:      # 办结率
        return self._rate(self.closed, self.received)

    @property
    def on_time_rate(self) -> float | None:
        return self._rate(self.on_time, self.closed)

    @property
    def median_hours(self) -> float | None:
        value = percentile(self.hours, 50)
        return round(value, 2) if value is not None else None

    @property
    def p90_hours(self) -> float | None:
        value = percentile(self.hours, 90)
        return round(value, 2) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("hours")
        for name in ("response_rate", "resolution_rate", "satisfaction_rate", "closure_rate",
                     "on_time_rate", "median_hours", "p90_hours"):
            out[name] = getattr(self, name)
        return out


def _key(by: str, row: Any, period: str) -> str:
    summary = row.summary or {}
    if by == "matter":
        return row.code
    if by == "department":
        return str(summary.get("lead_department") or "(未派单)")
    if by in ("channel", "region"):
        return str(summary.get(by) or "(未填)")
    return store.utc(row.created_at).astimezone(CST).strftime(PERIODS[period])


def figures(db: SqlEngine, *, by: str = "matter", period: str = "month",
            since: _dt.datetime | None = None, until: _dt.datetime | None = None,
            response_hours: float = 24.0, matters: Iterable[str] = ()) -> list[Figures]:
    """The figures per group of cases received in [since, until), and a 合计 row last.

    - 响应率 response: a department (not the dispatcher) finished its first task within
      `response_hours` of receipt;
    - 办结率 closure: closed / received; on time: closed without a supervision (督办);
    - 满意率 satisfaction: 满意 or 基本满意 among every reporter's answers;
    - 解决率 resolution: closed cases whose last answer is not 不满意 (or that ask none);
    - median / P90 hours from receipt to closure."""
    if by not in GROUPINGS:
        raise OnethingError(f"cannot group by {by!r} (choose {', '.join(GROUPINGS)})")
    if period not in PERIODS:
        raise OnethingError(f"unknown period {period!r} (choose {', '.join(PERIODS)})")
    c, w, e, s = store.cases.c, store.work_items.c, store.events.c, store.supervisions.c
    cases_q = select(c.id, c.code, c.status, c.summary, c.created_at, c.closed_at)
    if since is not None:
        cases_q = cases_q.where(c.created_at >= since)
    if until is not None:
        cases_q = cases_q.where(c.created_at < until)
    matters = list(matters)
    if matters:
        cases_q = cases_q.where(c.code.in_(matters))
    chosen = cases_q.subquery()
    first_q = (select(w.case_id, func.min(w.completed_at))
               .where(w.case_id.in_(select(chosen.c.id)), w.status == "done",
                      (w.role.is_(None)) | (w.role.not_in(NOT_A_RESPONSE)))
               .group_by(w.case_id))
    answers_q = (select(e.case_id, e.id, e.detail)
                 .where(e.case_id.in_(select(chosen.c.id)), e.action == "complete")
                 .order_by(e.id))
    supervised_q = select(s.case_id).where(s.case_id.in_(select(chosen.c.id))).distinct()
    with db.connect() as conn:
        rows = conn.execute(select(chosen)).all()
        first = {case_id: store.utc(at) for case_id, at in conn.execute(first_q)}
        answers: dict[int, list[str]] = defaultdict(list)
        for case_id, _id, detail in conn.execute(answers_q):
            value = ((detail or {}).get("data") or {}).get("satisfaction")
            if isinstance(value, str):
                answers[case_id].append(value)
        supervised = {r[0] for r in conn.execute(supervised_q)}
    groups: dict[str, Figures] = {}
    total = Figures(TOTAL)
    limit = _dt.timedelta(hours=response_hours)
    for row in rows:
        key = _key(by, row, period)
        fig = groups.setdefault(key, Figures(key))
        created = store.utc(row.created_at)
        closed_at = store.utc(row.closed_at)
        said = answers.get(row.id, [])
        for f in (fig, total):
            f.received += 1
            if row.id in first and first[row.id] - created <= limit:
                f.responded += 1
            if row.id in supervised:
                f.supervised += 1
            f.evaluated += len(said)
            f.satisfied += sum(1 for a in said if a in SATISFIED)
            if row.status == "closed" and closed_at is not None:
                f.closed += 1
                f.hours.append((closed_at - created).total_seconds() / 3600)
                if row.id not in supervised:
                    f.on_time += 1
                if not said or said[-1] != UNSATISFIED:
                    f.resolved += 1
    return [groups[k] for k in sorted(groups)] + [total]
