"""Where matters come from: the shipped processes plus designers' folders, by process id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .bpmn.load import BPMN_NS, parse_xml
from .errors import BpmnError

__all__ = ["CatalogEntry", "catalog_dirs", "scan", "SHIPPED", "PROCESSES_ENV"]

SHIPPED = Path(__file__).with_name("processes")
PROCESSES_ENV = "ONETHING_PROCESSES"


@dataclass(frozen=True)
class CatalogEntry:
    """One matter's current file: its process id, name and where it lies."""

    code: str
    name: str
    path: Path


def catalog_dirs(extra: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None) -> list[Path]:
    """The shipped folder first, then `extra` (or ONETHING_PROCESSES, os.pathsep-separated);
    a later folder's file replaces an earlier one with the same process id."""
    dirs = [SHIPPED]
    if extra is None:
        extra = [p for p in os.environ.get(PROCESSES_ENV, "").split(os.pathsep) if p]
    elif not isinstance(extra, list):
        extra = [extra]
    dirs.extend(Path(p).expanduser() for p in extra)
    return dirs


_HEADS: dict[tuple[str, int, int], tuple[str, str]] = {}


def _head(path: Path) -> tuple[str, str]:
    """(process id, name) of a file, cached by path, size and mtime."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HEADS:
        root = parse_xml(path.read_bytes(), str(path))
        procs = [p for p in root.iter(f"{{{BPMN_NS}}}process")
                 if p.get("isExecutable", "true").lower() != "false"]
        if len(procs) != 1:
            raise BpmnError("expected exactly one executable process", file=str(path))
        _HEADS[key] = (procs[0].get("id") or path.stem, procs[0].get("name") or path.stem)
    return _HEADS[key]


def scan(dirs: list[Path]) -> tuple[dict[str, CatalogEntry], list[BpmnError]]:
    """Every matter found in `dirs`, and the files that could not be read (not fatal)."""
    entries: dict[str, CatalogEntry] = {}
    problems: list[BpmnError] = []
    for folder in dirs:
        if not folder.is_dir():
            if folder != SHIPPED:
                problems.append(BpmnError("the processes folder does not exist", file=str(folder)))
            continue
        for path in sorted(folder.glob("*.bpmn")):
            try:
                code, name = _head(path)
            except (BpmnError, OSError, etree.LxmlError) as exc:
                problems.append(exc if isinstance(exc, BpmnError) else BpmnError(str(exc), file=str(path)))
                continue
            entries[code] = CatalogEntry(code=code, name=name, path=path)
    return entries, problems
