"""The worker: due timers, retries with backoff, and two workers on one PostgreSQL."""

from __future__ import annotations

import datetime as _dt
import threading


from onething import Engine
from onething.worker import Worker, backoff

from test_incidents import Flaky, run_to_reply
from timeutil import actions, advance, to_handling

D = _dt.timedelta(days=1)
S = _dt.timedelta(seconds=1)


def test_backoff_doubles_up_to_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(20) == _dt.timedelta(hours=1)


def test_worker_fires_due_timers(engine):
    number = to_handling(engine)
    worker = Worker(engine, name="w1")
    assert worker.run_once().idle
    advance(engine, 8 * D)
    assert worker.run_once().fired == [number]
    assert worker.run_once().idle


def test_worker_retries_failed_handlers_with_backoff(engine, data_file):
    flaky = Flaky()
    engine.register(flaky)
    case = run_to_reply(engine, data_file)
    [incident] = case.incidents
    worker = Worker(engine, name="w1")
    assert worker.run_once().failed_again == []          # not due yet: 30 s after the failure
    advance(engine, 30 * S)
    assert worker.run_once().failed_again == [incident.id]
    advance(engine, 30 * S)
    assert worker.run_once().failed_again == []          # the second wait is a minute
    flaky.broken = False
    advance(engine, 30 * S)
    assert worker.run_once().retried == [incident.id]
    assert engine.incidents() == []


def test_worker_gives_up_after_max_attempts(engine, data_file):
    engine.register(Flaky())
    case = run_to_reply(engine, data_file)
    worker = Worker(engine, name="w1", max_attempts=1)
    advance(engine, D)
    assert worker.run_once().gave_up == [case.incidents[0].id]


def test_two_workers_never_fire_one_timer_twice(db_url, clock):
    engines = [Engine(db_url, clock=clock, load_entry_points=False) for _ in range(2)]
    try:
        numbers = [to_handling(engines[0]) for _ in range(12)]
        clock.advance(10 * D)                             # warning and supervision both due
        barrier = threading.Barrier(2)
        fired: list[list[str]] = [[], []]

        def work(i: int) -> None:
            barrier.wait()
            for _ in range(3):
                fired[i].extend(engines[i].tick(limit=3, worker=f"w{i}"))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        engines[0].tick()
        assert sorted(fired[0] + fired[1]) == sorted(numbers)   # each case once, by one worker
        for number in numbers:
            assert len(actions(engines[0], number, "supervision")) == 1
            assert len(actions(engines[0], number, "warning")) == 1
            supervise = [t for t in engines[0].tasks(case=number) if t.element == "supervise"]
            assert len(supervise) == 1
    finally:
        for e in engines:
            e.close()
