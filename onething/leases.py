"""Claim cases for one worker (FOR UPDATE SKIP LOCKED on PostgreSQL) so no two fire one timer.

Two clocks meet here. Which cases are due is business time, the engine's clock (virtual in
tests, simulations and `onething --at`). How long a claim holds is real time: a lease guards
against a worker that died mid-way, and a death is a real-world event. So leases are stamped
and expire on the wall clock (`Engine.lease_clock`, real unless a test stands it in); a
crashed worker's claim frees itself LEASE after the crash even when case time never moves,
and a simulation that jumps case time a year ahead cannot break a live worker's claim."""

from __future__ import annotations

import datetime as _dt
import os
import socket
import uuid
from collections.abc import Iterable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.sql import Select

from . import store

__all__ = ["LEASE", "worker_name", "wall_now", "claim", "release", "claim_due_cases"]

# How long a claim holds if its worker dies mid-way; the next worker takes over after it.
LEASE = _dt.timedelta(minutes=5)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def wall_now() -> _dt.datetime:
    """Real time, which leases are measured in."""
    return _dt.datetime.now(_dt.timezone.utc)


def _free(now: _dt.datetime) -> object:
    return or_(store.cases.c.lease_until.is_(None), store.cases.c.lease_until < now)


def claim(db: SqlEngine, query: Select, owner: str, now: _dt.datetime | None = None,
          lease: _dt.timedelta = LEASE) -> list[int]:
    """Lease the open, unleased cases `query` selects (it selects cases.id); their ids.
    `now` is wall-clock time (default: real now), never a virtual case clock.

    PostgreSQL: the rows are locked with FOR UPDATE SKIP LOCKED, so a concurrent worker skips
    them instead of waiting, and sees the lease once this short transaction commits. SQLite:
    BEGIN IMMEDIATE already serialises claimers on one machine."""
    now = now or wall_now()
    query = query.where(and_(store.cases.c.status == "open", _free(now)))
    with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=store.cases, skip_locked=True)
        ids = [r[0] for r in conn.execute(query)]
        if ids:
            conn.execute(update(store.cases).where(store.cases.c.id.in_(ids))
                         .values(lease_owner=owner, lease_until=now + lease))
    return ids


def release(db: SqlEngine, case_ids: Iterable[int], owner: str) -> None:
    ids = list(case_ids)
    if not ids:
        return
    with db.begin() as conn:
        conn.execute(update(store.cases).where(and_(
            store.cases.c.id.in_(ids), store.cases.c.lease_owner == owner))
            .values(lease_owner=None, lease_until=None))


def claim_due_cases(db: SqlEngine, due_by: _dt.datetime, owner: str, limit: int = 100, *,
                    now: _dt.datetime | None = None) -> list[int]:
    """Lease up to `limit` open cases whose earliest timer is due by `due_by` (case time),
    earliest first; the leases run from `now` (wall time, default real now)."""
    query = (select(store.cases.c.id).where(store.cases.c.due_at <= due_by)
             .order_by(store.cases.c.due_at).limit(limit))
    return claim(db, query, owner, now)
