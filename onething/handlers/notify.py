"""notify_reporter: tell the reporter (答复) through the outbox, once per task."""

from __future__ import annotations

from typing import Any

from onething import HandlerContext, hookimpl


def notify_reporter(ctx: HandlerContext, message: str = "", **extra: Any) -> dict[str, Any]:
    if not isinstance(message, str) or not message.strip():
        raise ValueError("notify_reporter needs a non-empty 'message'")
    reporters = ctx.data.get("reporters") or [ctx.data.get("reporter")]
    recipients = [r for r in reporters if r]
    for reporter in recipients:
        ctx.emit("reply", {"case": ctx.case_number, "to": reporter,
                           "phone": ctx.data.get("phone"), "message": message.strip()})
    return {"sent_to": recipients, "message": message.strip(), "at": ctx.now.isoformat()}


@hookimpl
def onething_handlers() -> dict[str, Any]:
    return {"notify_reporter": notify_reporter}
