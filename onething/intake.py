"""One intake for every channel: take a report, redirect, route, merge or queue it; then the
command centre's queue, hand merges, returns and township-to-county declarations."""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from . import store
from .attachments import Attachment, check_attachments
from .dedupe import Candidate, find_duplicate
from .directory import Directory
from .engine import Engine
from .errors import (CaseNotFound, DirectoryError, DispatchRefused, ReportNotFound,
                     ReportRefused)
from .routing import Route, Rules
from .views import CaseView

__all__ = ["Intake", "Report", "IntakeResult", "MERGE_MESSAGE", "CHANNEL_NAMES"]

MERGE_MESSAGE = "merge_report"
CHANNEL_NAMES = {"12345": "12345热线来电", "qr": "一码报/小程序", "township": "街乡点单",
                 "web": "网上表单"}
OPEN_OUTCOMES = ("dispatched", "merged")


@dataclass
class Report:
    """What a reporter sends, from any channel."""

    channel: str
    text: str
    region: str
    reporter: str = "匿名"
    phone: str | None = None
    category: str | None = None
    lat: float | None = None
    lon: float | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Report:
        from .attachments import from_json

        known = {k: raw[k] for k in ("channel", "text", "region", "reporter", "phone",
                                     "category", "lat", "lon") if raw.get(k) is not None}
        known.setdefault("text", raw.get("description", ""))
        files = [from_json(a) for a in raw.get("attachments", raw.get("photos", [])) or []]
        return cls(attachments=files, **{"channel": "", "region": "", **known})


@dataclass
class IntakeResult:
    """What happened to a report, and what the reporter is told."""

    number: str          # the number the reporter looks the case up by
    report: str          # the report's own receipt number
    outcome: str         # dispatched, merged, redirected, queued
    message: str
    case: str | None = None
    redirect_to: str | None = None
    route: dict[str, Any] | None = None
    merge: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Intake:
    """The command centre's front desk over an Engine."""

    def __init__(self, engine: Engine, directory: Directory | None = None,
                 rules: Rules | None = None) -> None:
        self.engine = engine
        self.directory = directory or Directory.load()
        self.rules = rules or Rules.load(self.directory)
        known = self.engine.catalog_entries()
        for rule in self.rules.rules:
            if rule.matter not in known:
                raise DirectoryError(f"rule {rule.id}: matter {rule.matter!r} is not in the "
                                     "catalog", file=self.rules.file)
        self._mergeable: dict[str, bool] = {}

    # ------------------------------------------------------------------ checks
    def check(self, report: Report) -> tuple[Report, Any, list[tuple[Attachment, str]]]:
        """Refuse a bad report before anything is written (ReportRefused and subclasses)."""
        text = (report.text or "").strip()
        if not text:
            raise ReportRefused("the report has no text: say what happened and where",
                                field="text")
        if report.channel not in self.rules.channels:
            raise ReportRefused(f"unknown channel {report.channel!r} (channels: "
                                f"{', '.join(self.rules.channels)})", field="channel")
        region = self.directory.region(report.region)
        files = check_attachments(report.attachments, allowed=self.rules.attachment_types,
                                  max_bytes=self.rules.max_attachment_bytes,
                                  max_count=self.rules.max_attachments)
        report.text = text
        report.reporter = (report.reporter or "").strip() or "匿名"
        return report, region, files

    def route(self, text: str, region: str, *, channel: str | None = None,
              category: str | None = None) -> Route:
        """Which rule a report would follow, with the reasons."""
        return self.rules.route(text, self.directory.region(region).code, channel=channel,
                                category=category)

    def mergeable(self, matter: str) -> bool:
        """Whether a matter's BPMN catches the merge_report message."""
        if matter not in self._mergeable:
            definition = self.engine.process(matter)
            specs = [definition.spec, *definition.subprocess_specs.values()]
            self._mergeable[matter] = any(
                getattr(getattr(ts, "event_definition", None), "name", None) == MERGE_MESSAGE
                for spec in specs for ts in spec.task_specs.values())
        return self._mergeable[matter]

    # ------------------------------------------------------------------ intake
    def submit(self, report: Report | dict[str, Any], *, actor: str = "话务员",
               merge_into: str | None = None) -> IntakeResult:
        """Take one report from any channel; its number comes back at once."""
        if isinstance(report, dict):
            report = Report.from_dict(report)
        report, region, files = self.check(report)
        # The case, its dispatch and the report's own rows commit together or not at all.
        with self.engine.transaction():
            return self._take(report, region, files, actor=actor, merge_into=merge_into)

    def _take(self, report: Report, region: Any, files: list[tuple[Attachment, str]], *,
              actor: str, merge_into: str | None) -> IntakeResult:
        grid = self.directory.at_level(region.code, "grid")
        lat = report.lat if report.lat is not None else (grid.lat if grid else None)
        lon = report.lon if report.lon is not None else (grid.lon if grid else None)
        route = self.rules.route(report.text, region.code, channel=report.channel,
                                 category=report.category)
        row = dict(channel=report.channel, reporter=report.reporter, phone=report.phone,
                   text=report.text, category=route.category or report.category,
                   region=region.code, grid=grid.code if grid else None, lat=lat, lon=lon,
                   rule=route.rule.id if route.rule else None)
        if route.emergency:
            service = route.emergency
            message = (f"您反映的情况属于{service.name}，请立即拨打{service.number}。"
                       "本次来电已登记为转接，不作为12345工单受理。")
            number = self._record(row, files, outcome="redirected", case_id=None,
                                  redirect_to=service.number,
                                  detail={"explanation": route.explanation})
            return IntakeResult(number=number, report=number, outcome="redirected",
                                message=message, redirect_to=service.number,
                                route=route.to_dict())
        match = None
        if merge_into:
            match = {"case": merge_into, "reason": f"merged by hand by {actor}", "score": None}
        elif route.rule is not None and self.mergeable(route.matter):
            found = self._find_duplicate(row, route)
            if found is not None:
                match = {"case": found.case, "report": found.report, "reason": found.reason,
                         "score": round(found.score, 3)}
        if match is not None:
            return self._merge(row, files, match, route, actor)
        if route.rule is None:
            number = self._record(row, files, outcome="queued", case_id=None,
                                  detail={"explanation": route.explanation})
            return IntakeResult(number=number, report=number, outcome="queued",
                                message=f"您的诉求已受理，编号{number}，正在人工派单。",
                                route=route.to_dict())
        return self._dispatch_new(row, files, route, actor)

    def _case_data(self, row: dict[str, Any], route: Route) -> dict[str, Any]:
        data = {"reporter": row["reporter"], "reporters": [row["reporter"]], "report_count": 1,
                "channel": row["channel"], "region": self.directory.full_name(row["region"]),
                "region_code": row["region"], "description": row["text"],
                "return_count": 0, "max_returns": self.rules.max_returns}
        for key, value in (("phone", row["phone"]), ("grid", row["grid"]),
                           ("category", route.category), ("time_limit", route.time_limit),
                           ("lead_department", route.lead),
                           ("collaborators", route.collaborators)):
            if value is not None:
                data[key] = value
        return data

    def _dispatch_new(self, row: dict[str, Any], files: list[tuple[Attachment, str]],
                      route: Route, actor: str, *, reserved: int | None = None) -> IntakeResult:
        case = self.engine.start(route.matter, self._case_data(row, route), actor=actor,
                                 department=self.rules.dispatch_department)
        case = self._auto_dispatch(case, route)
        case_id = self._case_id(case.number)
        if reserved is None:
            number = self._record(row, files, outcome="dispatched", case_id=case_id,
                                  detail={"explanation": route.explanation})
        else:
            number = self._update_report(reserved, outcome="dispatched", case_id=case_id,
                                         rule=route.rule.id if route.rule else None)
        return IntakeResult(number=case.number, report=number, outcome="dispatched",
                            case=case.number, route=route.to_dict(),
                            message=(f"您的诉求已受理，工单号{case.number}，已派{case.data.get('lead_department')}"
                                     "办理，可凭工单号查询进度。"))

    def _auto_dispatch(self, case: CaseView, route: Route, *, actor: str | None = None,
                       note: str | None = None) -> CaseView:
        item = next((t for t in case.open_tasks if t.element == "dispatch"
                     and t.department == self.rules.dispatch_department), None)
        if item is None:
            return case
        form = {"lead_department": route.lead or case.data.get("lead_department"),
                "collaborators": (route.collaborators if route.collaborators is not None
                                  else case.data.get("collaborators", [])),
                "dispatch_note": note or (f"按规则“{route.rule.name}”派单" if route.rule
                                          else "人工派单")}
        if route.category:
            form["category"] = route.category
        if route.time_limit:
            form["time_limit"] = route.time_limit
        return self.engine.complete(item.id, actor=actor or self.rules.dispatch_actor,
                                    department=self.rules.dispatch_department, data=form)

    def _find_duplicate(self, row: dict[str, Any], route: Route,
                        exclude: str | None = None) -> Any:
        since = self.engine.clock.now() - _dt.timedelta(hours=self.rules.merge_window_hours)
        r, c = store.reports, store.cases
        query = (select(r.c.number, r.c.category, r.c.grid, r.c.lat, r.c.lon, r.c.text,
                        r.c.received_at, c.c.number.label("case"), c.c.code)
                 .join(c, c.c.id == r.c.case_id)
                 .where(and_(r.c.category == route.category, r.c.received_at >= since,
                             r.c.outcome.in_(OPEN_OUTCOMES), c.c.status == "open")))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        candidates = [Candidate(report=x.number, case=x.case, category=x.category, grid=x.grid,
                                lat=x.lat, lon=x.lon, text=x.text, received_at=x.received_at)
                      for x in rows if x.case != exclude and self.mergeable(x.code)]
        return find_duplicate(text=row["text"], category=row["category"], grid=row["grid"],
                              lat=row["lat"], lon=row["lon"], candidates=candidates,
                              max_distance_m=self.rules.merge_distance_m,
                              min_similarity=self.rules.merge_similarity)

    def _reporters(self, case_number: str) -> list[str]:
        r, c = store.reports, store.cases
        with self.engine.connect() as conn:
            rows = conn.execute(select(r.c.reporter).join(c, c.c.id == r.c.case_id)
                                .where(and_(c.c.number == case_number,
                                            r.c.outcome.in_(OPEN_OUTCOMES)))
                                .order_by(r.c.id)).all()
        return [x.reporter for x in rows]

    def _merge(self, row: dict[str, Any], files: list[tuple[Attachment, str]],
               match: dict[str, Any], route: Route, actor: str, *,
               reserved: int | None = None) -> IntakeResult:
        target = self.engine.case(match["case"])
        if target.status != "open":
            raise DispatchRefused(target.number, "the case is closed; a report can only join "
                                  "an open case")
        if not self.mergeable(target.matter):
            raise DispatchRefused(target.number, f"matter {target.matter} does not catch the "
                                  f"{MERGE_MESSAGE!r} message, so reports cannot join it")
        reporters = list(target.data.get("reporters") or [target.data.get("reporter")])
        reporters = [x for x in reporters if x] + [row["reporter"]]
        payload = {"action": "merge", "reporter": row["reporter"], "channel": row["channel"],
                   "reason": match["reason"]}
        self.engine.message(target.number, MERGE_MESSAGE, payload, actor=actor,
                            department=self.rules.dispatch_department,
                            data={"reporters": reporters, "report_count": len(reporters)})
        case_id = self._case_id(target.number)
        detail = {"merge": match, "explanation": route.explanation}
        if reserved is None:
            number = self._record(row, files, outcome="merged", case_id=case_id, detail=detail)
        else:
            number = self._update_report(reserved, outcome="merged", case_id=case_id,
                                         detail=detail)
        return IntakeResult(number=target.number, report=number, outcome="merged",
                            case=target.number, route=route.to_dict(), merge=match,
                            message=(f"您反映的问题已有工单{target.number}正在办理，已并入该工单"
                                     f"（共{len(reporters)}件诉求），办理结果将一并答复您。"))

    # ------------------------------------------------------------------ records
    def _case_id(self, number: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(store.cases.c.id)
                               .where(store.cases.c.number == number)).first()
        if row is None:
            raise ReportNotFound(number)
        return row.id

    def _record(self, row: dict[str, Any], files: list[tuple[Attachment, str]], *,
                outcome: str, case_id: int | None, redirect_to: str | None = None,
                detail: dict[str, Any] | None = None) -> str:
        """Write the report and its attachments in one transaction; its number."""
        now = self.engine.clock.now()
        with self.engine.transaction() as conn:
            report_id = conn.execute(insert(store.reports).values(
                number=uuid.uuid4().hex[:32], outcome=outcome, case_id=case_id,
                redirect_to=redirect_to, detail=detail or {}, received_at=now, **row,
            )).inserted_primary_key[0]
            number = f"R{now:%Y%m%d}{report_id:06d}"
            conn.execute(update(store.reports).where(store.reports.c.id == report_id)
                         .values(number=number))
            for item, kind in files:
                sha = item.sha256
                if conn.execute(select(store.attachment_blobs.c.sha256).where(
                        store.attachment_blobs.c.sha256 == sha)).first() is None:
                    conn.execute(insert(store.attachment_blobs).values(
                        sha256=sha, size=item.size, media_type=kind, content=item.content,
                        created_at=now))
                conn.execute(insert(store.attachments).values(
                    report_id=report_id, case_id=case_id, sha256=sha, name=item.name,
                    media_type=kind, size=item.size, created_at=now))
        return number

    def _update_report(self, report_id: int, *, outcome: str, case_id: int | None,
                       rule: str | None = None, detail: dict[str, Any] | None = None) -> str:
        values: dict[str, Any] = {"outcome": outcome, "case_id": case_id}
        if rule is not None:
            values["rule"] = rule
        with self.engine.transaction() as conn:
            conn.execute(update(store.reports).where(store.reports.c.id == report_id)
                         .values(**values))
            conn.execute(update(store.attachments).where(store.attachments.c.report_id
                                                         == report_id).values(case_id=case_id))
            row = conn.execute(select(store.reports).where(store.reports.c.id
                                                           == report_id)).first()
            if detail is not None:
                conn.execute(update(store.reports).where(store.reports.c.id == report_id)
                             .values(detail={**(row.detail or {}), **detail}))
        return row.number

    def _report_row(self, number: str) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(store.reports, store.cases.c.number.label("case"))
                               .outerjoin(store.cases, store.cases.c.id == store.reports.c.case_id)
                               .where(store.reports.c.number == number)).first()
        if row is None:
            raise ReportNotFound(number)
        return row

    def _row_route(self, row: Any) -> Route:
        return self.rules.route(row.text, row.region, channel=row.channel, category=row.category)

    # ------------------------------------------------------------------ the queue
    def queue(self) -> list[dict[str, Any]]:
        """The command centre's manual dispatch queue: unrouted reports, then returned cases."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.reports).where(store.reports.c.outcome == "queued")
                                .order_by(store.reports.c.id)).all()
        out = [{"number": r.number, "kind": "unrouted", "received_at": store.utc(r.received_at),
                "channel": r.channel, "region": self.directory.full_name(r.region),
                "text": r.text, "reason": "no routing rule matched"} for r in rows]
        for item in self.engine.tasks(self.rules.dispatch_department):
            if item.element != "dispatch":
                continue
            data = self.engine.case(item.case).data
            out.append({"number": item.case, "kind": "returned" if data.get("return_count")
                        else "dispatch", "received_at": item.created_at,
                        "channel": data.get("channel"), "region": data.get("region"),
                        "text": data.get("description"),
                        "reason": (f"退单{data.get('return_count')}次：{data.get('return_reason')}"
                                   if data.get("return_count") else "waiting for dispatch")})
        return out

    def dispatch(self, number: str, *, lead: str, collaborators: list[str] | tuple[str, ...] = (),
                 actor: str, matter: str | None = None, note: str | None = None,
                 category: str | None = None, time_limit: str | None = None) -> IntakeResult:
        """Dispatch from the queue by hand: an unrouted report becomes a case, a returned case
        is reassigned."""
        for dept in [lead, *collaborators]:
            if self.directory.department(dept) is None:
                raise DispatchRefused(number, f"department {dept!r} is not in the directory")
        route = Route(rule=None, category=category, matter=matter or self.rules.default_matter,
                      lead=lead, collaborators=list(collaborators), time_limit=time_limit,
                      explanation=[f"dispatched by hand by {actor}"])
        if number.startswith("R"):
            row = self._report_row(number)
            if row.outcome != "queued":
                raise DispatchRefused(number, f"the report is {row.outcome}, not queued")
            data = self._case_data(dict(reporter=row.reporter, phone=row.phone, text=row.text,
                                        channel=row.channel, region=row.region, grid=row.grid),
                                   route)
            case = self.engine.start(route.matter, data, actor=actor,
                                     department=self.rules.dispatch_department)
            case = self._auto_dispatch(case, route, actor=actor, note=note)
            self._update_report(row.id, outcome="dispatched", case_id=self._case_id(case.number))
            return IntakeResult(number=case.number, report=number, outcome="dispatched",
                                case=case.number, route=route.to_dict(),
                                message=f"工单{case.number}已派{lead}办理")
        case = self.engine.case(number)
        if not any(t.element == "dispatch" for t in case.open_tasks):
            raise DispatchRefused(number, "the case is not waiting for dispatch")
        case = self._auto_dispatch(case, route, actor=actor, note=note or "改派")
        return IntakeResult(number=number, report=number, outcome="dispatched", case=number,
                            route=route.to_dict(), message=f"工单{number}已改派{lead}办理")

    # ------------------------------------------------------------------ merges by hand
    def merge(self, report: str, case: str, *, actor: str,
              reason: str | None = None) -> IntakeResult:
        """Join a queued report to an open case by hand."""
        row = self._report_row(report)
        if row.outcome != "queued":
            raise DispatchRefused(case, f"report {report} is {row.outcome}; only a queued report "
                                  "can be merged by hand (unmerge it first)")
        data = {k: getattr(row, k) for k in ("channel", "reporter", "phone", "text", "category",
                                             "region", "grid", "lat", "lon")}
        match = {"case": case, "reason": (reason or "").strip() or f"merged by hand by {actor}",
                 "score": None}
        return self._merge(data, [], match, self._row_route(row), actor, reserved=row.id)

    def merge_cases(self, duplicate: str, into: str, *, actor: str,
                    reason: str | None = None) -> IntakeResult:
        """并单 after dispatch: a case already dispatched turns out to duplicate another open
        case. In one transaction the target catches merge_report with the duplicate's
        reporters, the duplicate is cancelled (its tasks and timers stop; the reason names the
        target), its reports and attachments move to the target and a `merged_into` link
        records where it went. Not reversible by `unmerge`."""
        if duplicate == into:
            raise DispatchRefused(duplicate, "a case cannot be merged into itself")
        note = (reason or "").strip() or f"merged by hand by {actor}"
        dispatch = self.rules.dispatch_department
        with self.engine.transaction() as conn:
            # Read and check inside the transaction, so the states checked are the ones merged.
            dup, target = self.engine.case(duplicate), self.engine.case(into)
            if target.status != "open":
                raise DispatchRefused(into, f"the case is {target.status}; a case can only be "
                                      "merged into an open case")
            if dup.status != "open":
                raise DispatchRefused(duplicate, f"the case is {dup.status}; only an open case "
                                      "can be merged into another")
            if not self.mergeable(target.matter):
                raise DispatchRefused(into, f"matter {target.matter} does not catch the "
                                      f"{MERGE_MESSAGE!r} message, so cases cannot join it")
            moved = [x for x in (dup.data.get("reporters") or [dup.data.get("reporter")]) if x]
            reporters = [x for x in (target.data.get("reporters")
                                     or [target.data.get("reporter")]) if x] + moved
            self.engine.message(into, MERGE_MESSAGE,
                                {"action": "merge_case", "case": duplicate, "reporters": moved,
                                 "reason": note},
                                actor=actor, department=dispatch,
                                data={"reporters": reporters, "report_count": len(reporters)})
            self.engine.cancel(duplicate, reason=f"并入工单{into}（重复诉求）：{note}",
                               actor=actor, department=dispatch)
            dup_id, target_id = self._case_id(duplicate), self._case_id(into)
            r = store.reports
            rows = conn.execute(select(r.c.id, r.c.number, r.c.detail)
                                .where(and_(r.c.case_id == dup_id,
                                            r.c.outcome.in_(OPEN_OUTCOMES)))
                                .order_by(r.c.id)).all()
            match = {"case": into, "merged_case": duplicate, "reason": note, "by": actor,
                     "score": None}
            for row in rows:
                conn.execute(update(r).where(r.c.id == row.id).values(
                    outcome="merged", case_id=target_id,
                    detail={**(row.detail or {}), "merge": match}))
            conn.execute(update(store.attachments).where(store.attachments.c.case_id == dup_id)
                         .values(case_id=target_id))
            conn.execute(insert(store.case_links).values(
                from_case_id=dup_id, to_case_id=target_id, kind="merged_into", actor=actor,
                note=note, created_at=self.engine.clock.now()))
        return IntakeResult(
            number=into, report=duplicate, outcome="merged", case=into,
            merge={**match, "reports": [x.number for x in rows], "reporters": moved},
            message=(f"工单{duplicate}与工单{into}重复，已并入工单{into}（共{len(reporters)}件诉求），"
                     f"办理结果将一并答复；工单{duplicate}已撤销。"))

    def unmerge(self, report: str, *, actor: str) -> IntakeResult:
        """Split a merged report off its case: the case drops the reporter, the report is
        routed again on its own (never back into the same case)."""
        row = self._report_row(report)
        if row.outcome != "merged" or row.case is None:
            raise DispatchRefused(row.case or report, f"report {report} is {row.outcome}, "
                                  "not merged")
        merged_case = ((row.detail or {}).get("merge") or {}).get("merged_case")
        if merged_case:
            raise DispatchRefused(row.case, f"report {report} came with case {merged_case}, "
                                  "merged into this one by hand; a case merge cannot be undone "
                                  "(take the report again with `onething intake` if it must "
                                  "be handled on its own)")
        target = self.engine.case(row.case)
        reporters = list(target.data.get("reporters") or [])
        if row.reporter in reporters:
            reporters.remove(row.reporter)
        self.engine.message(target.number, MERGE_MESSAGE,
                            {"action": "unmerge", "reporter": row.reporter, "report": report},
                            actor=actor, department=self.rules.dispatch_department,
                            data={"reporters": reporters, "report_count": len(reporters)})
        route = self._row_route(row)
        data = {k: getattr(row, k) for k in ("channel", "reporter", "phone", "text", "category",
                                             "region", "grid", "lat", "lon", "rule")}
        if route.rule is None:
            self._update_report(row.id, outcome="queued", case_id=None)
            return IntakeResult(number=report, report=report, outcome="queued",
                                message=f"诉求{report}已从工单{target.number}拆出，等待人工派单")
        return self._dispatch_new(data, [], route, actor, reserved=row.id)

    # ------------------------------------------------------------------ returns
    def return_case(self, number: str, *, department: str, actor: str,
                    reason: str) -> CaseView:
        """退单: the lead returns a misrouted case with a reason, within the time limit."""
        if not (reason or "").strip():
            raise DispatchRefused(number, "a return needs a reason (why it is not yours)")
        case = self.engine.case(number)
        item = next((t for t in case.open_tasks if t.element == "sign"), None)
        if item is None:
            raise DispatchRefused(number, "the case is not waiting to be signed for; only a "
                                  "newly dispatched case can be returned")
        limit = _dt.timedelta(hours=self.rules.return_limit_hours)
        if self.engine.clock.now() > item.created_at + limit:
            raise DispatchRefused(number, f"the time to return it ({self.rules.return_limit_hours:g}"
                                  f" h after dispatch, until {item.created_at + limit:%Y-%m-%d %H:%M}"
                                  " UTC) has passed; sign for it and handle it")
        return self.engine.complete(item.id, actor=actor, department=department,
                                    data={"accepted": False, "return_reason": reason.strip()})

    # ------------------------------------------------------------------ township → county
    def declare_to_county(self, number: str, *, matter: str, actor: str,
                          note: str | None = None) -> CaseView:
        """街乡点单: a township case it cannot resolve starts the county module's case, linked
        both ways."""
        origin = self.engine.case(number)
        if origin.status != "open":
            raise DispatchRefused(number, "the case is closed")
        lead = origin.data.get("lead_department")
        dept = self.directory.department(lead) if lead else None
        if origin.data.get("channel") != "township" and (dept is None or dept.level != "township"):
            raise DispatchRefused(number, "only a township-level case (街乡点单, or led by a "
                                  "township office) can be declared to the county")
        if self.links(number, kind="declared_to_county"):
            raise DispatchRefused(number, "the case was already declared to the county")
        data = {k: origin.data[k] for k in ("reporter", "phone", "region", "region_code",
                                            "description") if origin.data.get(k)}
        data.update(channel="township", origin_case=number, reporters=[lead or actor],
                    declaration_note=note or "")
        county = self.engine.start(matter, data, actor=actor, department=lead)
        from_id, to_id = self._case_id(number), self._case_id(county.number)
        with self.engine.transaction() as conn:
            conn.execute(insert(store.case_links).values(
                from_case_id=from_id, to_case_id=to_id, kind="declared_to_county", actor=actor,
                note=note, created_at=self.engine.clock.now()))
        return county

    def links(self, number: str, *, kind: str | None = None) -> list[dict[str, Any]]:
        """Cases linked to this one, both ways."""
        case_id = self._case_id(number)
        l, c = store.case_links, store.cases
        query = select(l, c.c.number.label("from_number")).join(c, c.c.id == l.c.from_case_id)
        query = query.where(or_(l.c.from_case_id == case_id, l.c.to_case_id == case_id))
        if kind:
            query = query.where(l.c.kind == kind)
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query.order_by(l.c.id)).all():
                other_id = row.to_case_id if row.from_case_id == case_id else row.from_case_id
                other = conn.execute(select(c.c.number, c.c.code).where(c.c.id == other_id)).first()
                out.append({"case": other.number, "matter": other.code, "kind": row.kind,
                            "direction": "to" if row.from_case_id == case_id else "from",
                            "actor": row.actor, "note": row.note,
                            "at": store.utc(row.created_at)})
        return out

    # ------------------------------------------------------------------ public look-up
    def attachments(self, number: str) -> list[dict[str, Any]]:
        a = store.attachments
        with self.engine.connect() as conn:
            case = conn.execute(select(store.cases.c.id).where(
                store.cases.c.number == number)).first()
            query = select(a, store.reports.c.number.label("report")).join(
                store.reports, store.reports.c.id == a.c.report_id)
            query = query.where(a.c.case_id == case.id if case else
                                store.reports.c.number == number)
            return [{"report": r.report, "name": r.name, "sha256": r.sha256, "size": r.size,
                     "media_type": r.media_type} for r in conn.execute(query.order_by(a.c.id))]

    def lookup(self, number: str) -> dict[str, Any]:
        """The reporter's view of a case or report: progress only, no internal data."""
        try:
            case: CaseView | None = self.engine.case(number)
        except CaseNotFound:  # not a case number: try a report number
            case = None
        if case is None:
            row = self._report_row(number)
            if row.case is not None:
                view = self.lookup(row.case)
                return {**view, "report": number}
            status = {"redirected": f"已转接：请拨打{row.redirect_to}",
                      "queued": "已受理，等待派单"}.get(row.outcome, row.outcome)
            return {"number": number, "status": status, "received_at": store.utc(row.received_at),
                    "channel": CHANNEL_NAMES.get(row.channel, row.channel),
                    "region": self.directory.full_name(row.region)}
        if case.status == "cancelled":
            into = next((x["case"] for x in self.links(case.number, kind="merged_into")
                         if x["direction"] == "to"), None)
            if into is not None:  # merged by hand: the reporter follows the case it joined
                return {**self.lookup(into), "merged_from": case.number}
        stages = sorted({t.name for t in case.open_tasks})
        status = {"closed": "已办结", "cancelled": "已撤销"}.get(case.status, "办理中")
        view = {"number": case.number, "matter": case.matter_name, "status": status,
                "stage": "、".join(stages) if stages else None,
                "received_at": case.created_at, "closed_at": case.closed_at,
                "channel": CHANNEL_NAMES.get(case.data.get("channel", ""), case.data.get("channel")),
                "region": case.data.get("region"), "category": case.data.get("category"),
                "lead_department": case.data.get("lead_department"),
                "report_count": case.data.get("report_count", 1),
                "attachments": len(self.attachments(case.number))}
        if case.status == "closed" and case.data.get("result"):
            view["result"] = case.data["result"]
        links = self.links(case.number)
        if links:
            view["linked"] = [{"case": x["case"], "kind": x["kind"]} for x in links]
        return view
