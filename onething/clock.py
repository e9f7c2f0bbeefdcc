"""Real and virtual time, and the hook that makes SpiffWorkflow's timers follow it."""

from __future__ import annotations

import abc
import contextlib
import contextvars
import datetime as _dt
from collections.abc import Iterator

from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer

__all__ = ["Clock", "SystemClock", "VirtualClock", "current_clock", "use_clock", "parse_duration"]


class Clock(abc.ABC):
    """Where onething reads the time; always timezone-aware UTC."""

    @abc.abstractmethod
    def now(self) -> _dt.datetime:
        """The current time."""


class SystemClock(Clock):
    """The machine's clock."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_dt.timezone.utc)


class VirtualClock(Clock):
    """A clock that moves only when told: for tests, simulations and the CLI's --at."""

    def __init__(self, start: _dt.datetime | str | None = None) -> None:
        if isinstance(start, str):
            start = _dt.datetime.fromisoformat(start)
        start = start or _dt.datetime(2026, 1, 5, 9, 0, tzinfo=_dt.timezone.utc)
        if start.tzinfo is None:
            start = start.replace(tzinfo=_dt.timezone.utc)
        self._now = start.astimezone(_dt.timezone.utc)

    def now(self) -> _dt.datetime:
        return self._now

    def advance(self, delta: _dt.timedelta | str) -> _dt.datetime:
        if isinstance(delta, str):
            delta = parse_duration(delta)
        if delta < _dt.timedelta(0):
            raise ValueError("a virtual clock never goes back")
        self._now += delta
        return self._now

    def set(self, when: _dt.datetime) -> None:
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        if when < self._now:
            raise ValueError("a virtual clock never goes back")
        self._now = when


_SYSTEM = SystemClock()
_current: contextvars.ContextVar[Clock] = contextvars.ContextVar("onething_clock", default=_SYSTEM)


def current_clock() -> Clock:
    return _current.get()


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)


def parse_duration(text: str) -> _dt.timedelta:
    """An ISO 8601 duration (PT2H, P7D, P1DT12H) as a timedelta; ValueError if it does not parse."""
    try:
        parsed = _spiff_timer.TimerEventDefinition.parse_iso_duration(text.strip())
    except Exception:
        raise ValueError(f"not an ISO 8601 duration: {text!r}") from None
    if not text.strip().upper().startswith("P") or not parsed:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    return _spiff_timer.TimerEventDefinition.get_timedelta_from_start(parsed, current_clock().now())


class _ClockedDatetime(_dt.datetime):
    """SpiffWorkflow's timer module calls datetime.now(timezone.utc) with no clock
    parameter; this stand-in answers from the clock in use instead."""

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        now = _current.get().now()
        return now.astimezone(tz) if tz else now.replace(tzinfo=None)


_spiff_timer.datetime = _ClockedDatetime  # type: ignore[attr-defined]
