"""record_agreement: keep the on-site agreement (who pays, who repairs, by when) on the case."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from onething import HandlerContext, hookimpl


def record_agreement(ctx: HandlerContext, payer: str = "", repairer: str = "",
                     deadline: str = "", **extra: Any) -> dict[str, Any]:
    missing = [name for name, value in (("payer", payer), ("repairer", repairer),
                                        ("deadline", deadline)) if not value]
    if missing:
        raise ValueError(f"the agreement lacks {', '.join(missing)}")
    try:
        _dt.date.fromisoformat(str(deadline)[:10])
    except ValueError:
        raise ValueError(f"deadline {deadline!r} is not a date (YYYY-MM-DD)") from None
    agreement = {"payer": payer, "repairer": repairer, "deadline": str(deadline)[:10],
                 "recorded_at": ctx.now.isoformat()}
    agreement.update({k: v for k, v in extra.items() if isinstance(v, (str, int, float, bool))})
    return agreement


@hookimpl
def onething_handlers() -> dict[str, Any]:
    return {"record_agreement": record_agreement}
