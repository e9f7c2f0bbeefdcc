"""Duplicates merge (并单) through the BPMN message merge_report; by hand too; and N returns
send the case to the county leader — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from onething import DispatchRefused
from onething.intake import Intake

DRAIN = "九龙社区第一网格供销小区3栋下水道堵塞，污水外溢到路面"
AGAIN = "供销小区3栋楼下下水道又堵了，污水外溢，味道很大"


@pytest.fixture
def intake(engine) -> Intake:
    return Intake(engine)


def _report(intake: Intake, text: str, region: str = "九龙社区第一网格", who: str = "张秀英",
            **extra):
    return intake.submit({"channel": "12345", "text": text, "region": region, "reporter": who,
                          **extra})


def test_duplicate_joins_the_open_case_by_bpmn_message(intake: Intake, engine) -> None:
    first = _report(intake, DRAIN)
    tasks_before = [t.id for t in engine.tasks(case=first.number)]
    second = _report(intake, AGAIN, who="李大爷")
    assert second.outcome == "merged" and second.case == first.number
    assert "same grid" in second.merge["reason"]
    case = engine.case(first.number)
    assert case.data["reporters"] == ["张秀英", "李大爷"] and case.data["report_count"] == 2
    assert [t.id for t in engine.tasks(case=first.number)] == tasks_before  # no new task
    assert len(engine.cases()) == 1
    history = engine.history(first.number)
    assert any(e.action == "message" and e.detail["name"] == "merge_report" for e in history)
    assert intake.lookup(first.number)["report_count"] == 2


def test_merged_reporters_all_get_the_reply(intake: Intake, engine) -> None:
    first = _report(intake, DRAIN)
    _report(intake, AGAIN, who="李大爷")
    sign = engine.tasks(case=first.number)[0]
    view = engine.complete(sign.id, actor="赵", department="县住建局", data={"accepted": True})
    for item in view.open_tasks:
        engine.complete(item.id, actor="x", department=item.department,
                        data={"handling": "已疏通", "opinion": "已配合"})
    close = engine.tasks(case=first.number)[0]
    assert close.element == "close"
    engine.complete(close.id, actor="赵", department="县住建局", data={"result": "已疏通"})
    replies = [m["payload"]["to"] for m in engine.outbox(case=first.number)
               if m["kind"] == "reply"]
    assert set(replies) >= {"张秀英", "李大爷"}


def test_no_merge_across_grid_window_or_text(intake: Intake, engine, clock) -> None:
    first = _report(intake, DRAIN)
    other_grid = _report(intake, AGAIN, region="马街村第一网格")
    assert other_grid.outcome == "dispatched"
    different = _report(intake, "小区门口窨井盖丢失了，晚上很危险")
    assert different.outcome == "dispatched"
    clock.advance("P4D")
    late = _report(intake, AGAIN)
    assert late.outcome == "dispatched" and late.case != first.number


def test_near_enough_merges_across_grids(intake: Intake) -> None:
    first = _report(intake, DRAIN)
    near = _report(intake, AGAIN, region="九龙社区第二网格")  # ≈ 290 m apart, limit 300 m
    assert near.outcome == "merged" and near.case == first.number
    assert "m apart" in near.merge["reason"]


def test_merge_and_unmerge_by_hand(intake: Intake, engine) -> None:
    first = _report(intake, DRAIN)
    queued = intake.submit({"channel": "web", "text": "楼道里一直有股怪味，不知道是哪里来的",
                            "region": "九龙社区第一网格", "reporter": "王"})
    assert queued.outcome == "queued"
    merged = intake.merge(queued.number, first.number, actor="调度员")
    assert merged.outcome == "merged" and engine.case(first.number).data["report_count"] == 2
    assert intake.queue() == []
    dup = _report(intake, AGAIN, who="李大爷")
    split = intake.unmerge(dup.report, actor="调度员")
    assert split.outcome == "dispatched" and split.case != first.number
    data = engine.case(first.number).data
    assert data["reporters"] == ["张秀英", "王"] and data["report_count"] == 2
    with pytest.raises(DispatchRefused, match="not merged"):
        intake.unmerge(dup.report, actor="调度员")


def test_after_max_returns_the_county_leader_assigns(intake: Intake, engine) -> None:
    res = _report(intake, DRAIN)
    intake.return_case(res.number, department="县住建局", actor="赵", reason="属水务")
    intake.dispatch(res.number, lead="县水务局", actor="李娜")
    case = intake.return_case(res.number, department="县水务局", actor="王", reason="属住建")
    assert case.data["return_count"] == 2
    [task] = case.open_tasks
    assert task.element == "leader_assign" and task.department == "分管副县长"
    assert intake.queue() == []
    view = engine.complete(task.id, actor="副县长", department="分管副县长",
                           data={"lead_department": "县住建局", "collaborators": ["县水务局"],
                                 "leader_note": "住建局领办"})
    assert [(t.element, t.department) for t in view.open_tasks] == [("sign", "县住建局")]


# ---- every catalog matter catches merge_report (一码报 ended 重复交办 for all of them)

ROAD = "板桥村村道被高速施工货车压坏，坑洼很深，车辆没法通行"
ROAD_AGAIN = "板桥村村道又被施工货车压坏了，坑洼很深"
BUILDING = "九龙社区供销小区5栋楼顶私搭乱建，加盖了一层彩钢房"
BUILDING_AGAIN = "供销小区5栋楼顶有人私搭乱建，加盖彩钢房"


def test_every_catalog_matter_catches_merge_report(intake: Intake, engine) -> None:
    codes = sorted(engine.catalog_entries())
    assert len(codes) >= 13
    assert [c for c in codes if not intake.mergeable(c)] == []


@pytest.mark.parametrize("text,again,region,matter", [
    (ROAD, ROAD_AGAIN, "板桥村第一网格", "luoping_road_damage"),
    (BUILDING, BUILDING_AGAIN, "九龙社区第一网格", "illegal_building"),
])
def test_duplicates_of_other_matters_merge(intake: Intake, engine, text, again, region,
                                           matter) -> None:
    first = intake.submit({"channel": "qr", "text": text, "region": region, "reporter": "村民甲"})
    assert first.outcome == "dispatched" and engine.case(first.number).matter == matter
    tasks_before = sorted(t.id for t in engine.tasks(case=first.number))
    second = intake.submit({"channel": "12345", "text": again, "region": region,
                            "reporter": "村民乙"})
    assert second.outcome == "merged" and second.case == first.number, second
    case = engine.case(first.number)
    assert case.data["reporters"] == ["村民甲", "村民乙"] and case.data["report_count"] == 2
    assert sorted(t.id for t in engine.tasks(case=first.number)) == tasks_before  # 不重复交办
    assert len(engine.cases()) == 1
    assert any(e.action == "message" and e.detail["name"] == "merge_report"
               for e in engine.history(first.number))


# ---- merging a case that was already dispatched (Intake.merge_cases, onething merge --into)

JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 64


def _two_cases(intake: Intake):
    """Two reports of one blocked drain that the rules did not join (different grids)."""
    from onething.attachments import Attachment
    from onething.intake import Report

    first = _report(intake, DRAIN)
    second = intake.submit(Report(channel="qr", text=AGAIN, region="马街村第一网格",
                                  reporter="李大爷", attachments=[Attachment("drain.jpg", JPEG)]))
    assert first.outcome == second.outcome == "dispatched" and first.case != second.case
    return first, second


def _close(engine, number: str) -> None:
    form = {"accepted": True, "handling": "已处理", "opinion": "已配合", "result": "已处理"}
    for _ in range(20):
        case = engine.case(number)
        if case.status != "open":
            return
        for item in case.open_tasks:
            data = {"satisfaction": "满意"} if item.element == "evaluate" else form
            engine.complete(item.id, actor="x", department=item.department, data=data)
    raise AssertionError(f"{number} did not close")


def test_a_dispatched_duplicate_merges_into_the_open_case(intake: Intake, engine) -> None:
    first, second = _two_cases(intake)
    tasks_before = sorted(t.id for t in engine.tasks(case=first.number))
    result = intake.merge_cases(second.number, first.number, actor="调度员",
                                reason="同一处下水道，网格报错")
    assert result.outcome == "merged" and result.case == first.number
    assert result.merge["reports"] == [second.report]
    target = engine.case(first.number)
    assert target.data["reporters"] == ["张秀英", "李大爷"] and target.data["report_count"] == 2
    assert sorted(t.id for t in engine.tasks(case=first.number)) == tasks_before
    dup = engine.case(second.number)
    assert dup.status == "cancelled" and dup.open_tasks == []
    cancel = [e for e in engine.history(second.number) if e.action == "cancel"]
    assert first.number in cancel[0].detail["reason"]
    message = [e for e in engine.history(first.number) if e.action == "message"][-1]
    assert message.detail["payload"]["case"] == second.number
    # the duplicate's report and photo now belong to the target; the link is recorded
    assert intake.lookup(second.report)["number"] == first.number
    assert [a["name"] for a in intake.attachments(first.number)] == ["drain.jpg"]
    assert intake.links(first.number) == [
        {**intake.links(first.number)[0], "case": second.number, "kind": "merged_into",
         "direction": "from", "note": "同一处下水道，网格报错"}]
    # the duplicate's reporter, looking up the old number, follows the case it joined
    view = intake.lookup(second.number)
    assert view["number"] == first.number and view["merged_from"] == second.number
    assert view["report_count"] == 2
    # a later duplicate of either still joins the open target
    third = _report(intake, AGAIN, who="王")
    assert third.outcome == "merged" and third.case == first.number
    assert engine.case(first.number).data["report_count"] == 3


def test_the_merged_reporter_gets_the_reply(intake: Intake, engine) -> None:
    first, second = _two_cases(intake)
    intake.merge_cases(second.number, first.number, actor="调度员")
    _close(engine, first.number)
    replies = {m["payload"]["to"] for m in engine.outbox(case=first.number) if m["kind"] == "reply"}
    assert replies >= {"张秀英", "李大爷"}


def test_merge_cases_refusals(intake: Intake, engine) -> None:
    first, second = _two_cases(intake)
    with pytest.raises(DispatchRefused, match="into itself"):
        intake.merge_cases(first.number, first.number, actor="调度员")
    other = _report(intake, "小区门口窨井盖丢失了，晚上很危险")
    _close(engine, other.number)
    with pytest.raises(DispatchRefused, match=f"{other.number}: the case is closed; a case can "
                                              "only be merged into an open case"):
        intake.merge_cases(second.number, other.number, actor="调度员")
    with pytest.raises(DispatchRefused, match=f"{other.number}: the case is closed; only an "
                                              "open case"):
        intake.merge_cases(other.number, first.number, actor="调度员")
    intake.merge_cases(second.number, first.number, actor="调度员")
    with pytest.raises(DispatchRefused, match="the case is cancelled"):
        intake.merge_cases(second.number, first.number, actor="调度员")
    with pytest.raises(DispatchRefused, match="a case merge cannot be undone"):
        intake.unmerge(second.report, actor="调度员")
    assert engine.case(first.number).data["report_count"] == 2


def test_merge_cases_is_all_or_nothing(intake: Intake, engine, monkeypatch) -> None:
    import sqlalchemy as sa
    from onething import OnethingError, store

    first, second = _two_cases(intake)

    def broken(*args, **kwargs):
        raise OnethingError("cancel failed")

    monkeypatch.setattr(engine, "cancel", broken)
    with pytest.raises(OnethingError, match="cancel failed"):
        intake.merge_cases(second.number, first.number, actor="调度员")
    monkeypatch.undo()
    target = engine.case(first.number)
    assert target.data["reporters"] == ["张秀英"] and target.data["report_count"] == 1
    assert not any(e.action == "message" for e in engine.history(first.number))
    assert engine.case(second.number).status == "open"
    assert intake.lookup(second.report)["number"] == second.number
    with engine.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.case_links)).scalar() == 0
    # and the same merge then goes through
    assert intake.merge_cases(second.number, first.number, actor="调度员").outcome == "merged"


def test_cli_merge_into(engine) -> None:
    from click.testing import CliRunner
    from onething.cli import cli

    intake = Intake(engine)
    first, second = _two_cases(intake)
    db = ["--db", engine.url]
    runner = CliRunner()
    out = runner.invoke(cli, [*db, "merge", second.number, "--into", second.number])
    assert out.exit_code == 1 and "cannot be merged into itself" in out.output
    out = runner.invoke(cli, [*db, "merge", second.number])
    assert out.exit_code == 2 and "--into CASE" in out.output
    out = runner.invoke(cli, [*db, "merge", second.number, "--into", first.number,
                              "--reason", "同一处下水道"])
    assert out.exit_code == 0, out.output
    assert f"已并入工单{first.number}" in out.output
    assert engine.case(second.number).status == "cancelled"
    out = runner.invoke(cli, [*db, "--json", "lookup", second.number])
    assert out.exit_code == 0 and first.number in out.output
