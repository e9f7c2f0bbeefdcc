"""Routing rules: emergencies to redirect, and category/region/keywords → matter and departments."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .directory import Directory
from .errors import DirectoryError

__all__ = ["Rules", "Rule", "Emergency", "Route", "DEFAULT_RULES", "LOCAL"]

DEFAULT_RULES = Path(__file__).with_name("data") / "routing.toml"
LOCAL = "{属地}"  # the township/subdistrict office of the report's region


@dataclass(frozen=True)
class Emergency:
    """A service that stays outside 12345 (110 police, 119 fire, 120 ambulance, 122 traffic)."""

    number: str
    name: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One routing rule; empty conditions do not restrict."""

    id: str
    name: str
    matter: str
    category: str | None = None
    keywords: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    lead: str | None = None
    collaborators: tuple[str, ...] | None = None
    time_limit: str | None = None


@dataclass
class Route:
    """The outcome of routing one report, with the reasons for `--explain`."""

    rule: Rule | None
    category: str | None
    matter: str
    lead: str | None
    collaborators: list[str] | None
    time_limit: str | None
    emergency: Emergency | None = None
    score: int = 0
    explanation: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.id if self.rule else None,
                "rule_name": self.rule.name if self.rule else None,
                "category": self.category, "matter": self.matter, "lead": self.lead,
                "collaborators": self.collaborators, "time_limit": self.time_limit,
                "emergency": self.emergency.number if self.emergency else None,
                "score": self.score, "explanation": self.explanation}


class Rules:
    """The county's intake policy: channels, limits, emergencies, routing, merge and return settings."""

    def __init__(self, raw: dict[str, Any], directory: Directory, *, file: str = "<rules>") -> None:
        self.file = file
        self.directory = directory
        intake = raw.get("intake", {})
        self.channels: tuple[str, ...] = tuple(intake.get("channels", ("12345", "qr", "township",
                                                                        "web")))
        self.max_attachments = int(intake.get("max_attachments", 9))
        self.max_attachment_bytes = int(intake.get("max_attachment_bytes", 5 * 1024 * 1024))
        self.attachment_types: tuple[str, ...] = tuple(intake.get(
            "attachment_types", ("image/jpeg", "image/png")))
        self.default_matter = intake.get("default_matter", "appeal_12345")
        dispatch = raw.get("dispatch", {})
        self.dispatch_department = dispatch.get("department", "县调度指挥中心")
        self.dispatch_actor = dispatch.get("actor", "智能派单")
        merge = raw.get("merge", {})
        self.merge_window_hours = float(merge.get("window_hours", 72))
        self.merge_distance_m = float(merge.get("distance_m", 300))
        self.merge_similarity = float(merge.get("similarity", 0.3))
        returns = raw.get("returns", {})
        self.return_limit_hours = float(returns.get("limit_hours", 24))
        self.max_returns = int(returns.get("max_returns", 2))
        self.emergencies = [Emergency(str(e["number"]), e.get("name", ""), tuple(e["keywords"]))
                            for e in raw.get("emergency", [])]
        self.rules: list[Rule] = []
        seen: set[str] = set()
        for i, item in enumerate(raw.get("rule", []), 1):
            rule = self._rule(item, i)
            if rule.id in seen:
                raise DirectoryError(f"rule id {rule.id!r} appears twice", file=file)
            seen.add(rule.id)
            self.rules.append(rule)

    def _rule(self, item: dict[str, Any], i: int) -> Rule:
        where = f"rule #{i} ({item.get('id', '?')})"
        if "id" not in item or "matter" not in item:
            raise DirectoryError(f"{where} needs an id and a matter", file=self.file)
        if not item.get("keywords") and not item.get("channels"):
            raise DirectoryError(f"{where} needs keywords or channels", file=self.file)
        regions = []
        for ref in item.get("regions", []):
            regions.append(self.directory.region(ref).code)
        for dept in [item.get("lead"), *item.get("collaborators", [])]:
            if dept and dept != LOCAL and self.directory.department(dept) is None:
                raise DirectoryError(f"{where}: department {dept!r} is not in the directory "
                                     f"({self.directory.file})", file=self.file)
        collab = item.get("collaborators")
        return Rule(id=item["id"], name=item.get("name", item["id"]), matter=item["matter"],
                    category=item.get("category"), keywords=tuple(item.get("keywords", ())),
                    channels=tuple(item.get("channels", ())), regions=tuple(regions),
                    lead=item.get("lead"),
                    collaborators=tuple(collab) if collab is not None else None,
                    time_limit=item.get("time_limit"))

    @classmethod
    def load(cls, directory: Directory, path: str | os.PathLike[str] | None = None) -> Rules:
        file = Path(path) if path else DEFAULT_RULES
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DirectoryError(f"cannot read: {exc.strerror}", file=str(file)) from None
        except tomllib.TOMLDecodeError as exc:
            raise DirectoryError(f"not valid TOML: {exc}", file=str(file)) from None
        return cls(raw, directory, file=str(file))

    # ------------------------------------------------------------------ decisions
    def emergency(self, text: str) -> tuple[Emergency, str] | None:
        """The emergency service a report belongs to, and the word that showed it."""
        for service in self.emergencies:
            for word in service.keywords:
                if word in text:
                    return service, word
        return None

    def _resolve(self, dept: str, region: str) -> str:
        if dept == LOCAL:
            return self.directory.township_office(region) or dept
        return dept

    def route(self, text: str, region: str, *, channel: str | None = None,
              category: str | None = None) -> Route:
        """Choose the rule for a report (region is a directory code); explain every decision."""
        why: list[str] = []
        hit = self.emergency(text)
        if hit:
            service, word = hit
            why.append(f"emergency: {word!r} belongs to {service.number} {service.name}; "
                       "no case is opened")
            return Route(None, None, self.default_matter, None, None, None, emergency=service,
                         explanation=why)
        best: tuple[int, Rule, list[str]] | None = None
        for rule in self.rules:
            reasons: list[str] = []
            score = 0
            if rule.channels:
                if channel not in rule.channels:
                    why.append(f"rule {rule.id}: channel {channel!r} not in {list(rule.channels)}")
                    continue
                score += 100
                reasons.append(f"channel {channel!r}")
            if rule.regions:
                inside = [r for r in rule.regions if self.directory.within(region, r)]
                if not inside:
                    why.append(f"rule {rule.id}: region outside "
                               f"{[self.directory.regions[r].name for r in rule.regions]}")
                    continue
                score += 1
                reasons.append(f"region within {self.directory.regions[inside[0]].name}")
            if category and rule.category:
                if not (rule.category == category or rule.category.startswith(category + "/")):
                    why.append(f"rule {rule.id}: category {rule.category!r} ≠ {category!r}")
                    continue
                score += 5
                reasons.append(f"category {rule.category!r}")
            if rule.keywords:
                hits = [k for k in rule.keywords if k in text]
                if not hits and not (category and rule.category and score >= 5):
                    why.append(f"rule {rule.id}: no keyword of {list(rule.keywords)[:4]}…")
                    continue
                score += 10 * len(hits)
                if hits:
                    reasons.append("keywords " + "、".join(hits))
            why.append(f"rule {rule.id}: candidate, score {score} ({'; '.join(reasons)})")
            if best is None or score > best[0]:
                best = (score, rule, reasons)
        if best is None:
            why.append("no rule matched: the report waits in the manual dispatch queue")
            return Route(None, category, self.default_matter, None, None, None, explanation=why)
        score, rule, reasons = best
        why.append(f"matched rule {rule.id} ({rule.name}) with score {score}: {'; '.join(reasons)}")
        lead = self._resolve(rule.lead, region) if rule.lead else None
        collab = ([self._resolve(d, region) for d in rule.collaborators]
                  if rule.collaborators is not None else None)
        if collab is not None and lead in collab:
            collab = [d for d in collab if d != lead]
        return Route(rule, rule.category or category, rule.matter, lead, collab, rule.time_limit,
                     score=score, explanation=why)
