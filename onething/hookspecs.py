"""The hook specifications a onething plugin may implement."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("onething")
hookimpl = pluggy.HookimplMarker("onething")

__all__ = ["hookspec", "hookimpl"]


@hookspec
def onething_handlers() -> dict[str, Any]:
    """Return {operator id: handler} for service tasks; a handler is
    `handler(ctx: HandlerContext, **params) -> JSON-serialisable value`."""


@hookspec
def onething_event(event: dict[str, Any]) -> None:
    """Observe one committed audit event (case, actor, department, action, element, detail)."""
