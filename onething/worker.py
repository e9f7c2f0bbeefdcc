"""The background worker: fire due timers and retry failed handlers with exponential backoff."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from . import leases, store
from .engine import Engine
from .errors import ConcurrencyConflict, IncidentNotFound, OnethingError

__all__ = ["Worker", "Pass", "backoff"]

BASE_BACKOFF = _dt.timedelta(seconds=30)
MAX_BACKOFF = _dt.timedelta(hours=1)
MAX_ATTEMPTS = 10


def backoff(attempts: int, base: _dt.timedelta = BASE_BACKOFF,
            cap: _dt.timedelta = MAX_BACKOFF) -> _dt.timedelta:
    """How long after its last failure an incident with `attempts` failures is retried:
    30 s, 1 min, 2 min, 4 min … at most an hour."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


@dataclass
class Pass:
    """What one pass of the worker did."""

    fired: list[str] = field(default_factory=list)       # case numbers whose timers fired
    retried: list[int] = field(default_factory=list)     # incidents that resolved
    failed_again: list[int] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)     # left to an operator (max attempts)

    @property
    def idle(self) -> bool:
        return not (self.fired or self.retried or self.failed_again)


class Worker:
    """A stateless worker; run as many as you like against one PostgreSQL.

    >>> Worker(engine).run_once()                          # doctest: +SKIP
    """

    def __init__(self, engine: Engine, *, name: str | None = None, batch: int = 100,
                 base: _dt.timedelta = BASE_BACKOFF, cap: _dt.timedelta = MAX_BACKOFF,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.engine = engine
        self.name = name or leases.worker_name()
        self.batch = batch
        self.base, self.cap, self.max_attempts = base, cap, max_attempts

    def run_once(self) -> Pass:
        """Fire every due timer (in batches until none is left), then retry due incidents."""
        result = Pass()
        while True:
            fired = self.engine.tick(limit=self.batch, worker=self.name)
            result.fired.extend(fired)
            if len(fired) < self.batch:
                break
        self._retry_due(result)
        return result

    def _retry_due(self, result: Pass) -> None:
        now = self.engine.clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.incidents.c.id, store.incidents.c.case_id,
                                       store.incidents.c.attempts, store.incidents.c.updated_at)
                                .where(store.incidents.c.status == "open")
                                .order_by(store.incidents.c.updated_at)).all()
        due: dict[int, list[int]] = {}
        for r in rows:
            if r.attempts >= self.max_attempts:
                result.gave_up.append(r.id)
            elif store.utc(r.updated_at) + backoff(r.attempts, self.base, self.cap) <= now:
                due.setdefault(r.case_id, []).append(r.id)
        if not due:
            return
        query = select(store.cases.c.id).where(store.cases.c.id.in_(list(due)))
        claimed = leases.claim(self.engine.db, query, self.name, self.engine.lease_clock.now())
        try:
            for case_id in claimed:
                for incident_id in due[case_id]:
                    try:
                        case = self.engine.retry(incident_id, actor=f"worker {self.name}")
                    except (IncidentNotFound, ConcurrencyConflict):
                        continue  # resolved or moved by someone else meanwhile
                    except OnethingError:
                        result.failed_again.append(incident_id)
                        continue
                    if any(i.id == incident_id for i in case.incidents):
                        result.failed_again.append(incident_id)
                    else:
                        result.retried.append(incident_id)
        finally:
            leases.release(self.engine.db, claimed, self.name)

    def run(self, *, interval: float = 5.0, stop: threading.Event | None = None,
            on_pass: Callable[[Pass], None] | None = None) -> None:
        """Loop until `stop` is set: a pass, then sleep `interval` seconds (real time)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            done = self.run_once()
            if on_pass is not None:
                on_pass(done)
            if done.idle:
                stop.wait(interval)

