"""The pluggy plugin manager: built-in handlers, entry points, and the handler registry."""

from __future__ import annotations

import datetime as _dt
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import OnethingError

__all__ = ["HandlerContext", "Handler", "make_plugin_manager", "collect_handlers",
           "DEFAULT_PLUGINS", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "onething"
DEFAULT_PLUGINS = (
    "onething.handlers.notify",
    "onething.handlers.agreement",
    "onething.handlers.timelimit",
)


@dataclass
class HandlerContext:
    """What a handler may know and do: read the case, and queue outside effects."""

    case_number: str
    element: str
    task_id: str
    data: dict[str, Any]
    now: _dt.datetime
    outbox: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def audit(self, **detail: Any) -> None:
        """Add JSON-serialisable detail to this handler's own audit event (`handler` in the
        case history), e.g. the deadline a time limit set."""
        self.notes.update(detail)

    @property
    def idempotency_key(self) -> str:
        """Stable across retries of the same task: use it for any outside effect."""
        return f"{self.case_number}:{self.task_id}"

    def emit(self, kind: str, payload: dict[str, Any]) -> None:
        """Queue a message (SMS, webhook …) in the outbox, written in the case's own
        transaction; a retry of the same task never queues it twice."""
        self.outbox.append({"key": f"{self.idempotency_key}:{kind}:{len(self.outbox)}",
                            "kind": kind, "payload": payload})


Handler = Callable[..., Any]


def make_plugin_manager(plugins: Iterable[Any] = (), *, load_entry_points: bool = True,
                        builtins: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("onething")
    pm.add_hookspecs(hookspecs)
    if builtins:
        for name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def collect_handlers(pm: pluggy.PluginManager) -> dict[str, Handler]:
    """Every registered operator id; two plugins claiming one id is a configuration error."""
    handlers: dict[str, Handler] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.onething_handlers.get_hookimpls():
        provided = impl.function() or {}
        for operator, fn in provided.items():
            if operator in handlers and handlers[operator] is not fn:
                raise OnethingError(
                    f"handler {operator!r} is registered by both {owners[operator]} and "
                    f"{impl.plugin_name}"
                )
            handlers[operator] = fn
            owners[operator] = impl.plugin_name
    return handlers
