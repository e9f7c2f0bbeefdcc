"""Worker leases run on the wall clock, due times on the case clock: a crashed worker's claim
frees itself even when case time stands still, and jumping case time never breaks a live one."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import select

from onething import VirtualClock, leases, store
from onething.worker import Worker

from timeutil import actions, advance, to_handling

S = _dt.timedelta(seconds=1)
D = _dt.timedelta(days=1)


def _wall(engine) -> VirtualClock:
    """Stand in for real time, so the test never sleeps."""
    engine.lease_clock = VirtualClock("2030-01-01T00:00:00+00:00")
    return engine.lease_clock


def test_a_crashed_workers_lease_expires_in_real_time_while_case_time_stands_still(engine):
    wall = _wall(engine)
    number = to_handling(engine)
    advance(engine, 8 * D)                               # warning and supervision are due
    [claimed] = leases.claim_due_cases(engine.db, engine.clock.now(), "w-crashed",
                                       now=wall.now())  # …and that worker dies here
    assert claimed == engine.case_id(number)
    assert engine.tick(worker="w2") == []                # its claim still holds
    wall.advance(leases.LEASE - S)
    assert Worker(engine, name="w2").run_once().idle
    frozen = engine.clock.now()
    wall.advance(2 * S)                                  # real minutes passed; case time did not
    assert engine.tick(worker="w2") == [number]
    assert engine.clock.now() == frozen
    assert len(actions(engine, number, "warning")) == 1
    assert len(actions(engine, number, "supervision")) == 1
    assert engine.tick(worker="w2") == []


def test_jumping_case_time_ahead_never_breaks_a_live_workers_claim(engine):
    wall = _wall(engine)
    number = to_handling(engine)
    advance(engine, 8 * D)
    leases.claim_due_cases(engine.db, engine.clock.now(), "w-busy", now=wall.now())
    advance(engine, 365 * D)                             # a simulation jumps a year
    assert engine.tick(worker="w2") == []
    assert not actions(engine, number, "supervision")
    leases.release(engine.db, [engine.case_id(number)], "w-busy")
    assert engine.tick(worker="w2") == [number]
    assert len(actions(engine, number, "supervision")) == 1


def test_leases_are_stamped_in_wall_time_not_case_time(engine):
    wall = _wall(engine)
    to_handling(engine)
    advance(engine, 8 * D)
    engine.tick(worker="w1")                             # claims, fires, releases
    number = to_handling(engine)
    advance(engine, 8 * D)
    leases.claim_due_cases(engine.db, engine.clock.now(), "w1", now=wall.now())
    with engine.connect() as conn:
        until = conn.execute(select(store.cases.c.lease_until)
                             .where(store.cases.c.id == engine.case_id(number))).scalar_one()
    assert store.utc(until) == wall.now() + leases.LEASE
