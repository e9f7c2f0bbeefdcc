"""Intake from every channel: a number at once, public look-up, attachments, refusals, queue,
returns and township-to-county declarations — on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
import pytest
from click.testing import CliRunner

from onething import AttachmentRefused, DispatchRefused, ReportRefused, UnknownRegion, store
from onething.attachments import Attachment
from onething.cli import cli
from onething.intake import Intake, Report

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 64
DRAIN = "九龙社区第一网格小区3栋下水道堵塞，污水外溢到路面"


@pytest.fixture
def intake(engine) -> Intake:
    return Intake(engine)


def _count(engine, table) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_every_channel_gets_a_number_at_once(intake: Intake, engine) -> None:
    call = intake.submit({"channel": "12345", "text": DRAIN, "region": "九龙社区第一网格",
                          "reporter": "张秀英", "phone": "138****5127"})
    assert call.outcome == "dispatched" and call.case == call.number
    case = engine.case(call.number)
    assert case.data["reporters"] == ["张秀英"] and case.data["report_count"] == 1
    assert [t.element for t in case.open_tasks] == ["sign"]
    assert case.open_tasks[0].department == "县住建局"
    web = intake.submit(Report(channel="web", text="马街村自来水停水两天了", region="马街村",
                               reporter="李"))
    assert web.outcome == "dispatched" and engine.case(web.number).data["lead_department"] == "县水务局"
    qr = intake.submit(Report(channel="qr", text="村道被货车压坏，坑洼很深", region="板桥村第一网格",
                              reporter="村民", attachments=[Attachment("road.jpg", JPEG)]))
    assert qr.outcome == "dispatched" and engine.case(qr.number).matter == "luoping_road_damage"
    town = intake.submit(Report(channel="township", text="片区断头路需要多部门协调",
                                region="中枢街道", reporter="中枢街道办"))
    assert engine.case(town.number).data["lead_department"] == "陆良县中枢街道办事处"


def test_public_lookup_hides_internal_data(intake: Intake) -> None:
    res = intake.submit({"channel": "12345", "text": DRAIN, "region": "九龙社区第一网格",
                         "reporter": "张秀英", "phone": "13800001111"})
    view = intake.lookup(res.number)
    assert view["status"] == "办理中" and view["stage"] == "签收"
    assert view["lead_department"] == "县住建局" and view["report_count"] == 1
    text = repr(view)
    assert "13800001111" not in text and "张秀英" not in text and "max_returns" not in text
    assert intake.lookup(res.report)["number"] == res.number  # the receipt number works too


def test_attachments_are_kept_once_by_content_hash(intake: Intake, engine) -> None:
    photos = [Attachment("a.png", PNG), Attachment("copy.png", PNG), Attachment("b.jpg", JPEG)]
    res = intake.submit(Report(channel="qr", text="小区垃圾桶满了没人清运", region="腊庄社区第一网格",
                               attachments=photos))
    listed = intake.attachments(res.number)
    assert [a["name"] for a in listed] == ["a.png", "copy.png", "b.jpg"]
    assert listed[0]["sha256"] == listed[1]["sha256"] and listed[0]["media_type"] == "image/png"
    assert _count(engine, store.attachment_blobs) == 2


@pytest.mark.parametrize("report,error,words", [
    (Report(channel="12345", text="   ", region="九龙社区"), ReportRefused, "no text"),
    (Report(channel="12345", text="路灯坏了", region="火星"), UnknownRegion, "unknown region"),
    (Report(channel="fax", text="路灯坏了", region="九龙社区"), ReportRefused, "unknown channel"),
    (Report(channel="qr", text="垃圾没人清运", region="九龙社区",
            attachments=[Attachment("big.jpg", JPEG + b"\x00" * 6_000_000)]),
     AttachmentRefused, "over the limit"),
    (Report(channel="qr", text="垃圾没人清运", region="九龙社区",
            attachments=[Attachment("photo.jpg", b"MZ\x90\x00 not an image")]),
     AttachmentRefused, "not accepted"),
])
def test_bad_reports_are_refused_and_leave_nothing(intake: Intake, engine, report, error,
                                                   words) -> None:
    with pytest.raises(error, match=words):
        intake.submit(report)
    assert _count(engine, store.reports) == 0
    assert _count(engine, store.cases) == 0
    assert _count(engine, store.attachment_blobs) == 0


def test_emergencies_become_no_case(intake: Intake, engine) -> None:
    res = intake.submit({"channel": "12345", "text": "楼下饭店着火了，浓烟很大", "region": "九龙社区",
                         "reporter": "王"})
    assert res.outcome == "redirected" and res.redirect_to == "119" and res.case is None
    assert "119" in res.message
    assert _count(engine, store.cases) == 0
    assert intake.lookup(res.number)["status"] == "已转接：请拨打119"


def test_unmatched_reports_wait_in_the_queue_and_are_dispatched_by_hand(intake: Intake,
                                                                         engine) -> None:
    res = intake.submit({"channel": "web", "text": "咨询退休手续在哪里办理", "region": "九龙社区"})
    assert res.outcome == "queued" and res.case is None
    assert [q["number"] for q in intake.queue()] == [res.number]
    assert intake.lookup(res.number)["status"] == "已受理，等待派单"
    done = intake.dispatch(res.number, lead="县人力资源和社会保障局", actor="调度员李娜")
    assert done.outcome == "dispatched"
    assert engine.case(done.case).open_tasks[0].department == "县人力资源和社会保障局"
    assert intake.queue() == []
    with pytest.raises(DispatchRefused, match="not in the directory"):
        intake.dispatch(res.number, lead="县不存在局", actor="x")


def test_return_within_the_limit_and_reassign(intake: Intake, engine, clock) -> None:
    res = intake.submit({"channel": "12345", "text": "九龙社区停水了，自来水一直没来",
                         "region": "九龙社区第一网格"})
    with pytest.raises(DispatchRefused, match="needs a reason"):
        intake.return_case(res.number, department="县水务局", actor="王", reason=" ")
    case = intake.return_case(res.number, department="县水务局", actor="王强",
                              reason="小区内部管网，不属本单位职责")
    assert case.data["return_count"] == 1
    queued = intake.queue()
    assert queued[0]["number"] == res.number and queued[0]["kind"] == "returned"
    intake.dispatch(res.number, lead="县住建局", collaborators=["县水务局"], actor="李娜")
    clock.advance("PT25H")
    with pytest.raises(DispatchRefused, match="has passed"):
        intake.return_case(res.number, department="县住建局", actor="赵", reason="不是我们的")


def test_township_case_is_declared_to_the_county_module(intake: Intake, engine) -> None:
    town = intake.submit({"channel": "township", "region": "中枢街道", "reporter": "中枢街道办",
                          "text": "城南片区闲置土地、断头路，街道协调不了，申请县级统筹"})
    county = intake.declare_to_county(town.number, matter="luliang_chengnan_development",
                                      actor="街道党政办王芳", note="涉及7个部门")
    assert county.matter == "luliang_chengnan_development"
    assert county.data["origin_case"] == town.number
    assert intake.links(town.number) == [{**intake.links(town.number)[0], "case": county.number,
                                          "direction": "to"}]
    back = intake.links(county.number)
    assert back[0]["case"] == town.number and back[0]["direction"] == "from"
    assert intake.lookup(town.number)["linked"][0]["case"] == county.number
    with pytest.raises(DispatchRefused, match="already declared"):
        intake.declare_to_county(town.number, matter="luliang_chengnan_development", actor="x")
    plain = intake.submit({"channel": "12345", "text": DRAIN, "region": "九龙社区第一网格"})
    with pytest.raises(DispatchRefused, match="township-level"):
        intake.declare_to_county(plain.number, matter="luliang_chengnan_development", actor="x")


def test_cli_intake_route_queue_and_lookup(engine, tmp_path) -> None:
    runner = CliRunner()
    db = ["--db", engine.url]
    out = runner.invoke(cli, [*db, "intake", DRAIN, "--region", "九龙社区第一网格",
                              "--reporter", "张"])
    assert out.exit_code == 0, out.output
    number = out.output.split()[1]
    assert "dispatched" in out.output
    out = runner.invoke(cli, [*db, "lookup", number])
    assert "办理中" in out.output
    out = runner.invoke(cli, [*db, "intake", "有人持刀抢劫", "--region", "九龙社区"])
    assert "redirected" in out.output and "110" in out.output
    out = runner.invoke(cli, [*db, "intake", "", "--region", "九龙社区"])
    assert out.exit_code == 1 and "no text" in out.output
    out = runner.invoke(cli, [*db, "route", "噪音扰民", "--region", "九龙社区", "--explain"])
    assert "rule noise" in out.output and "matched rule noise" in out.output
    out = runner.invoke(cli, [*db, "intake", "问一下办证", "--region", "九龙社区", "--channel", "web"])
    queued = out.output.split()[1]
    out = runner.invoke(cli, [*db, "queue"])
    assert queued in out.output
    out = runner.invoke(cli, [*db, "queue", "dispatch", queued, "--lead", "县公安局"])
    assert out.exit_code == 0, out.output


def test_a_day_of_12345_reports_loads_with_counts(engine) -> None:
    import json
    from pathlib import Path

    day = Path(__file__).resolve().parents[1] / "examples" / "day_12345.jsonl"
    out = CliRunner().invoke(cli, ["--db", engine.url, "--json", "intake", "--file", str(day)])
    assert out.exit_code == 0, out.output
    counts = json.loads(out.output)["counts"]
    for kind in ("dispatched", "merged", "redirected", "queued", "refused", "returned",
                 "reassigned", "declared"):
        assert counts.get(kind, 0) > 0, (kind, counts)
    assert sum(counts.values()) >= 190


def test_a_report_whose_dispatch_fails_leaves_nothing_written(intake: Intake, engine,
                                                              monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise DispatchRefused("?", "the dispatch step failed")

    monkeypatch.setattr(engine, "complete", broken)
    with pytest.raises(DispatchRefused):
        intake.submit({"channel": "12345", "text": DRAIN, "region": "九龙社区第一网格",
                       "reporter": "张秀英", "attachments": []})
    assert _count(engine, store.cases) == 0
    assert _count(engine, store.reports) == 0
    assert _count(engine, store.events) == 0
