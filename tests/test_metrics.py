"""The figures a county reports, computed by SQL from cases, work items, events, supervisions."""

from __future__ import annotations

import datetime as _dt
import json

from click.testing import CliRunner

from onething.cli import cli
from onething.metrics import figures, percentile

from timeutil import advance, do, to_handling

D = _dt.timedelta(days=1)
H = _dt.timedelta(hours=1)


def test_percentile_interpolates():
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(11)), 90) == 9


def _close(engine, number, answer):
    do(engine, number, "handle", handling="已办")
    do(engine, number, "close", result="已办结")
    return do(engine, number, "evaluate", satisfaction=answer)


def _workload(engine):
    a = to_handling(engine, channel="12345", region="罗雄街道")      # closed in a day, satisfied
    advance(engine, D)
    _close(engine, a, "满意")
    b = to_handling(engine, channel="一码报", region="九龙街道")     # late: supervised, then closed
    advance(engine, 8 * D)
    engine.tick()
    do(engine, b, "supervise", supervision_opinion="限期办结")
    _close(engine, b, "基本满意")
    c = to_handling(engine, channel="12345", region="九龙街道")      # still open
    return a, b, c


def test_rates_by_matter_and_channel(engine):
    _workload(engine)
    [row, total] = figures(engine.db, by="matter")
    assert row.group == "appeal_12345" and total.group == "合计"
    assert (row.received, row.closed, row.on_time, row.supervised) == (3, 2, 1, 1)
    assert row.closure_rate == round(2 / 3, 4) and row.on_time_rate == 0.5
    assert row.satisfaction_rate == 1.0 and row.resolution_rate == 1.0
    assert row.response_rate == 1.0
    assert row.median_hours == 24 * 4.5 and row.p90_hours is not None
    channels = {f.group: f for f in figures(engine.db, by="channel")}
    assert channels["12345"].received == 2 and channels["一码报"].closed == 1
    regions = {f.group: f for f in figures(engine.db, by="region")}
    assert regions["九龙街道"].received == 2
    [dept, _] = figures(engine.db, by="department")
    assert dept.group == "县住建局"
    [month, _] = figures(engine.db, by="period", period="month")
    assert month.group == "2026-03"


def test_unsatisfied_after_rework_is_not_resolved(engine):
    number = to_handling(engine)
    _close(engine, number, "不满意")
    do(engine, number, "rework", handling="再办")
    do(engine, number, "close", result="再办结")
    do(engine, number, "evaluate", satisfaction="不满意")
    do(engine, number, "leader_review", leader_opinion="协调", result="终结")
    [row, _] = figures(engine.db)
    assert row.closed == 1 and row.resolved == 0 and row.satisfaction_rate == 0.0


def test_report_cli_table_json_csv_png(engine, db_url, tmp_path):
    _workload(engine)
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", db_url, "report", "--by", "channel"])
    assert out.exit_code == 0, out.output
    assert "响应率" in out.output and "一码报" in out.output
    data = json.loads(runner.invoke(cli, ["--db", db_url, "--json", "report"]).output)
    assert data[-1]["group"] == "合计" and data[-1]["received"] == 3
    csv_out = runner.invoke(cli, ["--db", db_url, "report", "--csv", "-"]).output
    assert csv_out.splitlines()[0].startswith("group,received")
    png = tmp_path / "r.png"
    assert runner.invoke(cli, ["--db", db_url, "report", "--png", str(png)]).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
