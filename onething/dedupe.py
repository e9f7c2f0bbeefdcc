"""Duplicate reports (并单): text similarity, distance, and the rule that joins a report to a case."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["similarity", "distance_m", "Candidate", "Match", "find_duplicate"]

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def _grams(text: str, n: int = 2) -> set[str]:
    clean = _NOISE.sub("", text)
    if len(clean) < n:
        return {clean} if clean else set()
    return {clean[i:i + n] for i in range(len(clean) - n + 1)}


def similarity(a: str, b: str) -> float:
    """Character-bigram Jaccard similarity of two texts (0 … 1); punctuation ignored."""
    ga, gb = _grams(a), _grams(b)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / len(ga | gb)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Candidate:
    """An earlier report whose case is still open."""

    report: str
    case: str
    category: str | None
    grid: str | None
    lat: float | None
    lon: float | None
    text: str
    received_at: Any


@dataclass(frozen=True)
class Match:
    """The open case a new report joins, and why."""

    case: str
    report: str
    score: float
    reason: str


def find_duplicate(*, text: str, category: str | None, grid: str | None, lat: float | None,
                   lon: float | None, candidates: list[Candidate], max_distance_m: float,
                   min_similarity: float) -> Match | None:
    """The best open case with the same category, same grid or near enough, and similar text.

    The time window is the caller's query; candidates are already inside it."""
    best: Match | None = None
    for c in candidates:
        if not category or c.category != category:
            continue
        if grid and c.grid == grid:
            place = f"same grid {grid}"
        elif None not in (lat, lon, c.lat, c.lon):
            metres = distance_m(lat, lon, c.lat, c.lon)  # type: ignore[arg-type]
            if metres > max_distance_m:
                continue
            place = f"{metres:.0f} m apart"
        else:
            continue
        score = similarity(text, c.text)
        if score < min_similarity:
            continue
        if best is None or score > best.score:
            best = Match(case=c.case, report=c.report, score=score,
                         reason=f"category {category}, {place}, text similarity {score:.2f}")
    return best
