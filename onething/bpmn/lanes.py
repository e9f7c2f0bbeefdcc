"""Lane names as departments or per-case roles (the designer's lane grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Lane", "ROLE_LABELS", "ROLE_DATA_KEYS", "parse_lane", "REPORTER_DEPARTMENT",
           "DEFAULT_DISPATCH"]

ROLE_LABELS: dict[str, str] = {
    "领办": "lead", "领办部门": "lead", "lead": "lead",
    "协同": "collaborators", "协同部门": "collaborators", "collaborators": "collaborators",
    "collaborator": "collaborators",
    "牵头领导": "leader", "县级领导": "leader", "leader": "leader",
    "调度": "dispatch", "调度中心": "dispatch", "dispatch": "dispatch",
    "反映人": "reporter", "reporter": "reporter",
}

# The case-data key each role is bound from.
ROLE_DATA_KEYS: dict[str, str] = {
    "lead": "lead_department",
    "collaborators": "collaborators",
    "leader": "leader",
    "dispatch": "dispatch_department",
}

REPORTER_DEPARTMENT = "反映人"
DEFAULT_DISPATCH = "县调度指挥中心"

_SPLIT_ROLE = re.compile(r"\s*[:：]\s*")
_SPLIT_NAMES = re.compile(r"\s*[、,，;；]\s*")


@dataclass(frozen=True)
class Lane:
    """One lane: a fixed department, or a role with its default department(s)."""

    name: str
    role: str | None = None
    defaults: tuple[str, ...] = field(default_factory=tuple)

    @property
    def department(self) -> str | None:
        """The fixed department of a plain lane (None for a role lane)."""
        return None if self.role else self.name

    def resolve(self, data: dict[str, Any]) -> str | None:
        """The department that owns a task in this lane, for a case with `data`."""
        if self.role is None:
            return self.name
        if self.role == "reporter":
            return REPORTER_DEPARTMENT
        value = data.get(ROLE_DATA_KEYS[self.role])
        if self.role == "collaborators":
            # A single task in a collaborators lane (not multi-instance) goes to the first one.
            value = value[0] if isinstance(value, list) and value else None
        if isinstance(value, str) and value:
            return value
        return self.defaults[0] if self.defaults else None


def parse_lane(name: str | None) -> Lane | None:
    """Read a lane name: `县住建局`, `领办部门`, or `领办部门：县住建局`."""
    if not name or not name.strip():
        return None
    name = name.strip()
    head, *rest = _SPLIT_ROLE.split(name, maxsplit=1)
    role = ROLE_LABELS.get(head.strip()) or ROLE_LABELS.get(head.strip().lower())
    if role is None:
        return Lane(name=name)
    defaults = tuple(n for n in _SPLIT_NAMES.split(rest[0]) if n) if rest else ()
    if role == "dispatch" and not defaults:
        defaults = (DEFAULT_DISPATCH,)
    return Lane(name=name, role=role, defaults=defaults)
