"""The directory of regions (five levels) and departments, read from a TOML file a county edits."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DirectoryError, UnknownRegion

__all__ = ["Directory", "Region", "Department", "LEVELS", "DEFAULT_DIRECTORY"]

LEVELS = ("city", "county", "township", "village", "grid")
LEVEL_NAMES = {"city": "市", "county": "县", "township": "乡镇/街道", "village": "村/社区",
               "grid": "网格"}
DEFAULT_DIRECTORY = Path(__file__).with_name("data") / "directory.toml"


@dataclass(frozen=True)
class Region:
    """One region: a city, county, township/subdistrict, village/community or grid."""

    code: str
    name: str
    level: str
    parent: str | None = None
    office: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Department:
    """A department (or township office) and the region it serves."""

    name: str
    level: str
    region: str
    duties: tuple[str, ...] = field(default_factory=tuple)


class Directory:
    """Regions and departments by code and name; `region()` resolves what a reporter typed."""

    def __init__(self, regions: list[Region], departments: list[Department], *,
                 file: str = "<directory>") -> None:
        self.file = file
        self.regions: dict[str, Region] = {}
        for region in regions:
            if region.code in self.regions:
                raise DirectoryError(f"region code {region.code!r} appears twice", file=file)
            if region.level not in LEVELS:
                raise DirectoryError(f"region {region.code!r}: level {region.level!r} is not one "
                                     f"of {', '.join(LEVELS)}", file=file)
            self.regions[region.code] = region
        for region in regions:
            if region.parent is not None:
                parent = self.regions.get(region.parent)
                if parent is None:
                    raise DirectoryError(f"region {region.code!r}: parent {region.parent!r} is "
                                         "not in the file", file=file)
                if LEVELS.index(parent.level) >= LEVELS.index(region.level):
                    raise DirectoryError(f"region {region.code!r} ({region.level}) cannot sit "
                                         f"under {parent.code!r} ({parent.level})", file=file)
        self.departments: dict[str, Department] = {}
        for dept in departments:
            if dept.region not in self.regions:
                raise DirectoryError(f"department {dept.name!r}: region {dept.region!r} is not "
                                     "in the file", file=file)
            self.departments[dept.name] = dept
        self._by_name: dict[str, list[str]] = {}
        for region in regions:
            for key in {region.name, self.full_name(region.code),
                        self.full_name(region.code, from_level="county")}:
                self._by_name.setdefault(key, []).append(region.code)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Directory:
        """Read a directory TOML file (default: the shipped onething/data/directory.toml)."""
        file = Path(path) if path else DEFAULT_DIRECTORY
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DirectoryError(f"cannot read: {exc.strerror}", file=str(file)) from None
        except tomllib.TOMLDecodeError as exc:
            raise DirectoryError(f"not valid TOML: {exc}", file=str(file)) from None
        return cls.from_dict(raw, file=str(file))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, file: str = "<directory>") -> Directory:
        regions, departments = [], []
        for i, item in enumerate(raw.get("region", []), 1):
            try:
                regions.append(Region(code=str(item["code"]), name=item["name"],
                                      level=item["level"], parent=item.get("parent"),
                                      office=item.get("office"), lat=item.get("lat"),
                                      lon=item.get("lon")))
            except (KeyError, TypeError) as exc:
                raise DirectoryError(f"region #{i} lacks {exc}", file=file) from None
        for i, item in enumerate(raw.get("department", []), 1):
            try:
                departments.append(Department(name=item["name"], level=item["level"],
                                              region=str(item["region"]),
                                              duties=tuple(item.get("duties", ()))))
            except (KeyError, TypeError) as exc:
                raise DirectoryError(f"department #{i} lacks {exc}", file=file) from None
        return cls(regions, departments, file=file)

    # ------------------------------------------------------------------ queries
    def region(self, ref: str) -> Region:
        """A region by code, name or full name (罗平县罗雄街道九龙社区); UnknownRegion if none."""
        ref = (ref or "").strip()
        if ref in self.regions:
            return self.regions[ref]
        codes = self._by_name.get(ref, [])
        if len(codes) == 1:
            return self.regions[codes[0]]
        if len(codes) > 1:
            raise UnknownRegion(ref, [self.full_name(c) for c in codes])
        hint = sorted({self.full_name(r.code) for r in self.regions.values()
                       if ref and (ref in r.name or r.name in ref)})[:3]
        raise UnknownRegion(ref, hint)

    def ancestors(self, code: str) -> list[Region]:
        """The region and its parents, the region first."""
        out = []
        region: Region | None = self.regions[code]
        while region is not None:
            out.append(region)
            region = self.regions.get(region.parent) if region.parent else None
        return out

    def at_level(self, code: str, level: str) -> Region | None:
        return next((r for r in self.ancestors(code) if r.level == level), None)

    def within(self, code: str, ancestor: str) -> bool:
        return any(r.code == ancestor for r in self.ancestors(code))

    def full_name(self, code: str, *, from_level: str = "city") -> str:
        chain = list(reversed(self.ancestors(code)))
        start = LEVELS.index(from_level)
        return "".join(r.name for r in chain if LEVELS.index(r.level) >= start) or chain[-1].name

    def township_office(self, code: str) -> str | None:
        """The township/subdistrict office responsible for a region (属地)."""
        township = self.at_level(code, "township")
        return township.office if township else None

    def children(self, code: str | None = None) -> list[Region]:
        return [r for r in self.regions.values() if r.parent == code]

    def department(self, name: str) -> Department | None:
        return self.departments.get(name)
