"""Read-only views the engine returns: cases, work items, events, incidents, matters."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CaseView", "WorkItem", "Event", "Incident", "Matter"]


class _View:
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)  # type: ignore[call-overload]
        for key, value in out.items():
            if isinstance(value, _dt.datetime):
                out[key] = value.isoformat()
        return out


@dataclass(frozen=True)
class WorkItem(_View):
    """A user task waiting for (or done by) one department."""

    id: str
    case: str
    matter: str
    element: str
    name: str
    department: str | None
    role: str | None
    status: str
    claimed_by: str | None
    created_at: _dt.datetime
    completed_by: str | None = None
    completed_at: _dt.datetime | None = None


@dataclass(frozen=True)
class Event(_View):
    """One entry of a case's append-only audit log."""

    id: int
    case: str
    at: _dt.datetime
    actor: str
    department: str | None
    action: str
    element: str | None
    task_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Incident(_View):
    """A handler or script that failed; the case waits at that element until retried."""

    id: int
    case: str
    task_id: str
    element: str
    operator: str | None
    error: str
    attempts: int
    status: str
    created_at: _dt.datetime
    updated_at: _dt.datetime


@dataclass(frozen=True)
class CaseView(_View):
    """A case as it stands after the last committed command."""

    number: str
    matter: str
    matter_name: str
    process_version: int
    status: str
    version: int
    data: dict[str, Any]
    created_at: _dt.datetime
    updated_at: _dt.datetime
    closed_at: _dt.datetime | None
    due_at: _dt.datetime | None
    open_tasks: list[WorkItem] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


@dataclass(frozen=True)
class Matter(_View):
    """One matter of the catalog, as its newest BPMN file describes it."""

    code: str
    name: str
    version: int
    sha256: str
    file: str
    lead: str | None
    collaborators: list[str]
    leader: str | None
    dispatch: str | None
    departments: list[str]
    time_limits: list[str]
    steps: list[dict[str, Any]]
