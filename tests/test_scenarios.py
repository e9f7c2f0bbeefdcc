"""Every example scenario drives its matter's case to closure."""

from __future__ import annotations

from pathlib import Path

import pytest

from onething.scenario import load_scenario, run_scenario

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_scenario_reaches_its_expected_end(engine, path):
    scenario = load_scenario(path)
    result = run_scenario(engine, scenario)
    assert result.case.status == scenario.expect.get("status", "closed")
    assert result.case.open_tasks == []
    assert result.timeline[0].action == "start"
    assert result.timeline[-1].action == "closed"


def test_every_catalog_matter_has_a_scenario():
    shipped = {p.stem for p in (Path(__file__).parent.parent / "onething" / "processes").glob("*.bpmn")}
    covered = {load_scenario(p).matter for p in EXAMPLES}
    assert shipped <= covered
