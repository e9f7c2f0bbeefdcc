"""Designer-ready files: every catalog BPMN opens in the modelers without a warning.

bpmn.io, Camunda Modeler and SpiffArena's modeler all draw with bpmn-js, so each
``onething/processes/*.bpmn`` is imported into bpmn-js's viewer in headless Chromium
(``tools/bpmnjs/check.mjs``, one browser launch for all files) and must give no import
warning, no error and no element without DI, and no overlapping label (``--strict-labels``). Every catalog file must also be valid
against the BPMN 2.0 XSD that SpiffWorkflow ships.

The browser tests need Node, ``npm ci`` in tools/bpmnjs and /usr/bin/chromium
(``bash .ci/install-browser`` sets all of that up). They are skipped only when
``ONETHING_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import SpiffWorkflow
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "bpmnjs"
CHECK = TOOL / "check.mjs"
PROCESSES = ROOT / "onething" / "processes"
PICTURES = ROOT / "docs" / "pictures"
DATA = Path(__file__).resolve().parent / "data"

CATALOG = sorted(PROCESSES.glob("*.bpmn"))
MINIMAL = DATA / "bpmnjs_minimal.bpmn"
BROKEN = DATA / "bpmnjs_broken_di.bpmn"
MISSING_DI = DATA / "bpmnjs_missing_di.bpmn"
OVERLAPPING = DATA / "bpmnjs_overlapping_labels.bpmn"
FIXTURES = [MINIMAL, BROKEN, MISSING_DI, OVERLAPPING]

REGENERATE = "node tools/bpmnjs/check.mjs onething/processes/*.bpmn --png-dir docs/pictures"

needs_browser = pytest.mark.skipif(
    os.environ.get("ONETHING_SKIP_BROWSER") == "1",
    reason="ONETHING_SKIP_BROWSER=1: bpmn-js/Chromium checks skipped",
)


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


# --------------------------------------------------------------------------- Node side


def _npm_ci() -> None:
    """Run ``npm ci`` once; later runs reuse tools/bpmnjs/node_modules."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node/npm not found: run `bash .ci/install-browser` (or set ONETHING_SKIP_BROWSER=1)")
    stamp = TOOL / "node_modules" / ".package-lock.json"  # written by npm ci/install
    lock = TOOL / "package-lock.json"
    wanted = ("bpmn-js", "bpmn-moddle", "playwright-core")
    if (
        stamp.exists()
        and stamp.stat().st_mtime >= lock.stat().st_mtime
        and all((TOOL / "node_modules" / name / "package.json").exists() for name in wanted)
    ):
        return
    proc = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=TOOL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"npm ci in {TOOL} failed:\n{proc.stdout}\n{proc.stderr}")


def _check(files: list[Path], *options: str, env: dict[str, str] | None = None):
    """Run check.mjs; returns (exit code, {file name: result}, stderr)."""
    proc = subprocess.run(
        ["node", str(CHECK), *map(str, files), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            results[Path(result["file"]).name] = result
    return proc.returncode, results, proc.stderr


@pytest.fixture(scope="session")
def bpmnjs(tmp_path_factory):
    """One Chromium launch: the whole catalog plus the fixtures, with pictures."""
    _npm_ci()
    png_dir = tmp_path_factory.mktemp("pictures")
    code, results, stderr = _check(CATALOG + FIXTURES, "--require-browser", "--png-dir", str(png_dir))
    if code == 3:
        pytest.fail(f"Chromium could not be used (run `bash .ci/install-browser`):\n{stderr}")
    missing = [p.name for p in CATALOG + FIXTURES if p.name not in results]
    assert not missing, f"check.mjs gave no result for {missing}:\n{stderr}"
    return code, results, stderr


def _describe(result: dict) -> str:
    lines = [f"{result['file']} does not import cleanly into bpmn-js ({result['engine']}):"]
    lines += [f"  warning: {w}" for w in result["warnings"]]
    lines += [f"  error: {e}" for e in result["errors"]]
    if result["missingDi"]:
        lines.append(f"  no DI (not drawn in a modeler): {', '.join(result['missingDi'])}")
    return "\n".join(lines)


@needs_browser
@pytest.mark.parametrize("path", CATALOG, ids=_ids(CATALOG))
def test_catalog_file_imports_into_bpmnjs_without_warnings(bpmnjs, path):
    _, results, _ = bpmnjs
    result = results[path.name]
    assert result["engine"] == "bpmn-js", result
    assert result["ok"], _describe(result)


@needs_browser
def test_clean_fixture_passes_and_is_pictured(bpmnjs):
    _, results, _ = bpmnjs
    result = results[MINIMAL.name]
    assert result["ok"], _describe(result)
    assert result["engine"] == "bpmn-js"
    png = Path(result["png"])
    assert png.name == "bpmnjs_minimal.png"
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert 700 <= width <= 1000 and 300 <= height <= 500, (width, height)  # diagram is 760x320


@needs_browser
def test_broken_di_is_reported(bpmnjs):
    code, results, stderr = bpmnjs
    result = results[BROKEN.name]
    assert not result["ok"]
    assert code == 1, stderr
    warnings = "\n".join(result["warnings"])
    assert "unresolved reference <ghost_task>" in warnings
    assert 'multiple DI elements defined for <bpmn:UserTask id="route" />' in warnings
    assert "bpmnjs_broken_di.bpmn" in _describe(result)


@needs_browser
def test_element_without_di_is_reported(bpmnjs):
    _, results, _ = bpmnjs
    result = results[MISSING_DI.name]
    assert not result["ok"]
    assert result["warnings"] == []  # bpmn-js itself says nothing: it just doesn't draw them
    assert result["missingDi"] == ["notify", "Flow_accepted", "Flow_notify_end"]


def _describe_overlaps(result: dict) -> str:
    lines = [f"{result['file']} has overlapping labels (move the dc:Bounds in its bpmndi:BPMNLabel, "
             "or make the lane taller):"]
    lines += [f"  {o['kind']}: {o['message']} at {o['bounds']}" for o in result["overlaps"]]
    return "\n".join(lines)


@needs_browser
@pytest.mark.parametrize("path", CATALOG, ids=_ids(CATALOG))
def test_catalog_file_has_no_overlapping_labels(bpmnjs, path):
    _, results, _ = bpmnjs
    result = results[path.name]
    assert result["overlaps"] == [], _describe_overlaps(result)


@needs_browser
def test_catalog_passes_the_strict_label_check():
    _npm_ci()
    code, results, stderr = _check(CATALOG, "--require-browser", "--strict-labels")
    bad = [_describe_overlaps(r) for r in results.values() if r["overlaps"]]
    assert code == 0 and not bad, "\n".join(bad) or stderr


@needs_browser
def test_overlapping_labels_are_reported_and_fail_only_with_strict_labels(bpmnjs):
    _, results, _ = bpmnjs
    result = results[OVERLAPPING.name]
    assert result["ok"], _describe(result)  # it imports cleanly: overlaps are not import warnings
    found = {(o["kind"], o["label"]["id"], (o.get("other") or {}).get("id")) for o in result["overlaps"]}
    assert found == {
        ("label-label", "accepted_gateway", "Flow_accepted"),
        ("label-shape", "Flow_returned", "notify"),
        ("label-flow", "start", "Flow_route_handle"),
        ("name-outside", "Lane_dispatch", None),
    }, result["overlaps"]
    assert results[MINIMAL.name]["overlaps"] == []
    code, _, stderr = _check([MINIMAL, OVERLAPPING], "--require-browser")
    assert code == 0, stderr
    code, _, stderr = _check([MINIMAL, OVERLAPPING], "--require-browser", "--strict-labels")
    assert code == 1, stderr


@needs_browser
def test_fallback_without_chromium_is_loud_and_still_checks():
    _npm_ci()
    env = {"ONETHING_CHROMIUM": "/nonexistent/chromium"}
    code, results, stderr = _check([MINIMAL, BROKEN], env=env)
    assert code == 1
    assert "FALLBACK" in stderr
    assert {r["engine"] for r in results.values()} == {"bpmn-moddle-fallback"}
    assert results[MINIMAL.name]["ok"]
    assert not results[BROKEN.name]["ok"]
    assert "unresolved reference <ghost_task>" in results[BROKEN.name]["warnings"]

    code, _, stderr = _check([MINIMAL], "--require-browser", env=env)
    assert code == 3, stderr


@needs_browser
def test_every_catalog_file_has_a_picture():
    """docs/pictures/<code>.png exists for each catalog file, and only for those."""
    wanted = {p.stem + ".png" for p in CATALOG}
    present = {p.name for p in PICTURES.glob("*.png")} if PICTURES.is_dir() else set()
    assert wanted == present, (
        f"pictures missing: {sorted(wanted - present)}, pictures of no catalog file: "
        f"{sorted(present - wanted)}; regenerate with `{REGENERATE}` (see docs/designer.md)"
    )


# --------------------------------------------------------------------------- XSD


@pytest.fixture(scope="module")
def bpmn_schema() -> etree.XMLSchema:
    xsd = Path(SpiffWorkflow.__file__).parent / "bpmn" / "parser" / "schema" / "BPMN20.xsd"
    assert xsd.is_file(), xsd
    return etree.XMLSchema(etree.parse(str(xsd)))


def _parse(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.parse(str(path), parser)


@pytest.mark.parametrize("path", CATALOG + [MINIMAL], ids=_ids(CATALOG + [MINIMAL]))
def test_file_is_valid_bpmn20_xsd(bpmn_schema, path):
    valid = bpmn_schema.validate(_parse(path))
    errors = "\n".join(f"  line {e.line}: {e.message}" for e in bpmn_schema.error_log)
    assert valid, f"{path.name} is not valid against BPMN20.xsd:\n{errors}"


def test_xsd_check_rejects_an_invalid_file(bpmn_schema, tmp_path):
    bad = tmp_path / "bad.bpmn"
    # a sequence flow without its required sourceRef
    bad.write_text(
        MINIMAL.read_text(encoding="utf-8").replace(' sourceRef="start" targetRef="route"', ' targetRef="route"'),
        encoding="utf-8",
    )
    assert not bpmn_schema.validate(_parse(bad))
    messages = " ".join(e.message for e in bpmn_schema.error_log)
    assert "sourceRef" in messages, messages
