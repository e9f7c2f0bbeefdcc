"""set_time_limit and reply_reporters: a stage's deadline from its tier; reply to and ask every reporter."""

from __future__ import annotations

from typing import Any

from onething import HandlerContext, hookimpl
from onething.timelimits import DEFAULT_COMMAND_CENTRE, deadline_for


def set_time_limit(ctx: HandlerContext, stage: str = "", default: str = "一般7天",
                   field: str = "time_limit", **extra: Any) -> dict[str, Any]:
    """The stage's warning and due times; the tier is the case's `field` (the dispatcher's
    choice; no field: always the default) or the BPMN's `default`. Each call starts the
    stage's clock afresh and is audited on the handler's event."""
    tier = (ctx.data.get(field) if field else None) or default
    deadline = deadline_for(str(tier), ctx.now, stage=stage or ctx.element)
    # Every stage start (a re-dispatch, a reopened case) is a fresh limit: audit it.
    ctx.audit(stage=deadline["stage"], tier=deadline["tier"], warn=deadline["warn"],
              due=deadline["due"])
    return deadline


def _names(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reporter of the case, merged ones included, each once."""
    raw = list(data.get("reporters") or [])
    if data.get("reporter"):
        raw.insert(0, {"name": data["reporter"], "phone": data.get("phone")})
    out: dict[str, dict[str, Any]] = {}
    for item in raw:
        entry = dict(item) if isinstance(item, dict) else {"name": str(item)}
        name = str(entry.get("name") or entry.get("reporter") or "").strip()
        if name and name not in out:
            out[name] = {"name": name, "phone": entry.get("phone")}
    return list(out.values())


def reply_reporters(ctx: HandlerContext, message: str = "", **extra: Any) -> list[dict[str, Any]]:
    """Reply (答复) to every reporter through the outbox, and return one call-back (回访) per
    reporter for the command centre: {reporter, phone, department, round}."""
    if not isinstance(message, str) or not message.strip():
        raise ValueError("reply_reporters needs a non-empty 'message'")
    reporters = _names(ctx.data)
    if not reporters:
        raise ValueError("the case names no reporter to reply to")
    previous = ctx.data.get("callbacks") or []
    round_ = 1 + max((int(c.get("round", 0)) for c in previous if isinstance(c, dict)), default=0)
    centre = ctx.data.get("dispatch_department") or DEFAULT_COMMAND_CENTRE
    callbacks = []
    for r in reporters:
        ctx.emit("reply", {"case": ctx.case_number, "to": r["name"], "phone": r["phone"],
                           "message": message.strip(), "round": round_})
        callbacks.append({"reporter": r["name"], "phone": r["phone"], "department": centre,
                          "round": round_})
    return callbacks


@hookimpl
def onething_handlers() -> dict[str, Any]:
    return {"set_time_limit": set_time_limit, "reply_reporters": reply_reporters}
