"""The synthetic workload: deterministic, fast, and one-matter handling is faster."""

from __future__ import annotations

from click.testing import CliRunner

from onething.cli import cli
from onething.simulate import run_model, simulate, size_departments, workload


def test_workload_is_deterministic_by_seed():
    a, b = workload(50, 5, seed=7), workload(50, 5, seed=7)
    assert [(c.arrival, c.departments) for c in a] == [(c.arrival, c.departments) for c in b]


def test_parallel_handling_closes_sooner_on_the_same_workload():
    cases = workload(400, 10, seed=3)
    staffed = size_departments(cases, 10)
    par = run_model(cases, "parallel", departments=staffed)
    seq = run_model(cases, "sequential", departments=staffed)
    assert all(p.case is s.case for p, s in zip(par, seq))
    assert sum(p.hours for p in par) < sum(s.hours for s in seq)


def test_simulate_runs_an_engine_sample_and_reports_a_reduction(tmp_path):
    result = simulate(300, 10, seed=2, sample=12)
    assert result.parallel[-1].received == 300 and result.sequential[-1].received == 300
    assert result.reduction["median_hours"] > 0
    assert result.sample_size > 0 and result.sample[-1].received == result.sample_size


def test_simulate_cli_prints_the_comparison(tmp_path):
    out = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "simulate", "--cases", "200",
                                   "--days", "5", "--seed", "1", "--sample", "5"])
    assert out.exit_code == 0, out.output
    assert "cuts time to closure by" in out.output and "real engine" in out.output
