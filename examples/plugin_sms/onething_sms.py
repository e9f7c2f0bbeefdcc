"""send_sms: an example third-party handler, installed as a package with an entry point.

`pip install ./examples/plugin_sms` and every Engine (and the CLI) can run service tasks
whose operator is `send_sms`; no onething code changes."""

from __future__ import annotations

from typing import Any

from onething import HandlerContext, hookimpl


def send_sms(ctx: HandlerContext, message: str = "", to: str = "") -> dict[str, Any]:
    phone = to or ctx.data.get("phone")
    if not phone:
        raise ValueError("send_sms needs a phone number (parameter 'to' or case data 'phone')")
    if not message:
        raise ValueError("send_sms needs a message")
    # The outbox row is written in the case's own transaction and keyed by case and task,
    # so a retried task never texts the citizen twice; a relay process sends the rows.
    ctx.emit("sms", {"to": phone, "text": message[:300]})
    return {"queued": True, "to": phone}


@hookimpl
def onething_handlers() -> dict[str, Any]:
    return {"send_sms": send_sms}
