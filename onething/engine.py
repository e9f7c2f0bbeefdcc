"""The engine: every command (start, claim, complete, retry, tick) is one transaction."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
# The spiff parser's class: event definitions only match their own class.
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import store
from .bpmn.lanes import Lane, parse_lane
from .bpmn.load import ProcessDefinition, load_bpmn
from .catalog import CatalogEntry, catalog_dirs, scan
from .clock import Clock, SystemClock, use_clock
from .errors import (
    BpmnError,
    CaseNotFound,
    ConcurrencyConflict,
    HandlerError,
    IncidentNotFound,
    OnethingError,
    ProcessNotFound,
    TaskNotFound,
    TaskNotReady,
    UnknownHandler,
    WrongDepartment,
)
from .plugins import HandlerContext, collect_handlers, make_plugin_manager
from .scripting import RestrictedScriptEngine
from .state import dump_state, load_state
from .views import CaseView, Event, Incident, Matter, WorkItem

__all__ = ["Engine", "SYSTEM_ACTOR"]

SYSTEM_ACTOR = "system"
SUMMARY_KEYS = ("reporter", "channel", "region", "description", "lead_department",
                "collaborators", "leader", "phone")
OPEN_ITEM = ("open", "claimed")
WORKFLOW_CACHE_SIZE = 256


# The statements of the hot path (one human step), built once: constructing a SQLAlchemy
# statement costs about as much as running it on SQLite.
_CASE_BY_ID = select(store.cases).where(store.cases.c.id == bindparam("case_id"))
_CASE_UPDATE = (update(store.cases)
                .where(and_(store.cases.c.id == bindparam("case_id"),
                            store.cases.c.version == bindparam("expected_version")))
                .values({name: bindparam(f"new_{name}") for name in (
                    "state", "version", "status", "summary", "due_at", "updated_at", "number",
                    "closed_at")}))
# claim: take the item only if it is this department's and free (or already this actor's),
# in one statement; only a refusal reads the row again to say why.
_ITEM_CLAIM = (update(store.work_items)
               .where(and_(store.work_items.c.id == bindparam("item_id"),
                           store.work_items.c.department == bindparam("owner"),
                           or_(store.work_items.c.status == "open",
                               and_(store.work_items.c.status == "claimed",
                                    store.work_items.c.claimed_by == bindparam("actor")))))
               .values(status="claimed", claimed_by=bindparam("actor"))
               .returning(*store.work_items.c))
_CASE_IDENT = (select(store.cases.c.number, store.cases.c.code)
               .where(store.cases.c.id == bindparam("case_id")))
CASE_IDENT_CACHE_SIZE = 10_000
_OPEN_ITEMS = (select(store.work_items.c.id, store.work_items.c.status,
                      store.work_items.c.claimed_by)
               .where(and_(store.work_items.c.case_id == bindparam("case_id"),
                           store.work_items.c.status.in_(OPEN_ITEM))))
_ITEM_ROW = (select(store.work_items, store.cases.c.number, store.cases.c.code)
             .join(store.cases, store.cases.c.id == store.work_items.c.case_id)
             .where(store.work_items.c.id == bindparam("task_id")))
# complete: the work item and its case (state included) in one round trip.
_ITEM_WITH_CASE = (select(store.work_items, store.cases.c.number, store.cases.c.code,
                          store.cases.c.version.label("case_version"),
                          store.cases.c.state.label("case_state"),
                          store.cases.c.process_version_id,
                          store.cases.c.created_at.label("case_created_at"))
                   .join(store.cases, store.cases.c.id == store.work_items.c.case_id)
                   .where(store.work_items.c.id == bindparam("task_id")))
_ITEM_FINISH = (update(store.work_items).where(store.work_items.c.id == bindparam("item_id"))
                .values(status=bindparam("final"), completed_at=bindparam("at"),
                        completed_by=bindparam("by")))
_INSERT_ITEMS = insert(store.work_items)
_INSERT_EVENTS = insert(store.events)

@dataclass(frozen=True)
class _CaseRef:
    """The columns of a case row a command needs, when a lookup already read them."""

    id: int
    number: str
    version: int
    state: bytes
    process_version_id: int
    created_at: _dt.datetime


@dataclass
class _Transaction:
    """An open Engine.transaction(): its connection, the cases it touched, what runs after."""

    conn: Connection
    touched: set[int] = field(default_factory=set)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Command:
    """What one command accumulates before it commits."""

    case_id: int
    number: str
    definition: ProcessDefinition
    actor: str
    department: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    had_errors: bool = False
    cancelled: bool = False
    fired: dict[str, str] = field(default_factory=dict)  # timer element -> its deadline
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id -> handler's audit detail

    def log(self, action: str, *, element: str | None = None, task_id: str | None = None,
            system: bool = False, **detail: Any) -> None:
        """Audit one thing this command did: by its actor, or (`system`) by the engine itself."""
        self.events.append({
            "actor": SYSTEM_ACTOR if system else self.actor,
            "department": None if system else self.department,
            "action": action, "element": element, "task_id": task_id, "detail": detail,
        })


NAME_LIMIT = 200  # the width of the actor and department columns


def _check_name(value: str | None, what: str, *, required: bool = True) -> None:
    """Actors and departments are audited names: present, text, and short enough to store."""
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise OnethingError(f"{what} must be a non-empty name")
    if len(value) > NAME_LIMIT:
        raise OnethingError(f"{what} is longer than {NAME_LIMIT} characters: {value[:40]!r}…")


def _tasks(workflow: BpmnWorkflow, state: int) -> list[Any]:
    """Every task of the workflow and its subprocesses whose state is in `state`, in creation
    order. A flat pass over the task dicts: SpiffWorkflow's get_tasks walks the tree with an
    iterator that costs several times more, and a command asks this four times."""
    out = [t for t in workflow.tasks.values() if t.state & state]
    for sub in workflow.subprocesses.values():
        out.extend(t for t in sub.tasks.values() if t.state & state)
    return out


def _ready_user_tasks(workflow: BpmnWorkflow) -> set[str]:
    return {str(t.id) for t in _tasks(workflow, TaskState.READY) if t.task_spec.manual}


def _find_task(workflow: BpmnWorkflow, task_id: UUID) -> Any:
    """The task with that id, or None (SpiffWorkflow raises for a task no longer in the tree)."""
    try:
        return workflow.get_task_from_id(task_id)
    except TaskNotFoundException:
        return None


def _check_form(data: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OnethingError(f"{what}: data must be a mapping of field names to values")
    for key in data:
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise OnethingError(f"{what}: {key!r} is not a usable field name "
                                "(letters, digits and _, not starting with _)")
    try:
        return json.loads(json.dumps(data, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise OnethingError(f"{what}: data is not JSON-serialisable: {exc}") from None


class Engine:
    """Run one-matter cases durably.

    >>> engine = Engine("sqlite:///onething.db")           # doctest: +SKIP
    >>> case = engine.start("appeal_12345", {"reporter": "王女士"}, actor="李娜")  # doctest: +SKIP
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        clock: Clock | None = None,
        processes: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None,
        plugins: Iterable[Any] = (),
        load_entry_points: bool = True,
    ) -> None:
        self.url = store.database_url(db)
        self.db = store.open_database(self.url)
        self.clock = clock or SystemClock()
        # Worker leases expire in real time, whatever `clock` says (see onething.leases).
        self.lease_clock: Clock = SystemClock()
        self.plugins = make_plugin_manager(plugins, load_entry_points=load_entry_points)
        self.handlers = collect_handlers(self.plugins)
        self.catalog_dirs = catalog_dirs(processes)
        self._script = RestrictedScriptEngine(self._call_handler)
        self._definitions: dict[int, ProcessDefinition] = {}
        self._version_by_sha: dict[str, int] = {}
        self._workflows: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._command_ctx: _Command | None = None
        self._tx: _Transaction | None = None
        self._idents: dict[int, tuple[str, str]] = {}
        self._lanes: dict[str, Lane | None] = {}


    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run several commands, and your own writes on the yielded connection, as one
        transaction: all of it commits, or nothing does. An Engine is not thread-safe;
        give each thread its own."""
        if self._tx is not None:
            # Nested: a savepoint, so a failing inner command that the caller catches
            # leaves none of its writes behind.
            with self._tx.conn.begin_nested():
                yield self._tx.conn
            return
        with use_clock(self.clock), self.db.begin() as conn:
            tx = self._tx = _Transaction(conn)
            try:
                yield conn
            except BaseException:
                # Cached workflows were mutated by commands that will not commit.
                for case_id in tx.touched:
                    self._workflows.pop(case_id, None)
                raise
            finally:
                self._tx = None
        for callback in tx.after_commit:
            callback()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading: the open transaction's own, if there is one (SQLite
        would make a second connection wait for it)."""
        if self._tx is not None:
            yield self._tx.conn
        else:
            with self.db.connect() as conn:
                yield conn

    def _after(self, callback: Callable[[], None]) -> None:
        if self._tx is not None:
            self._tx.after_commit.append(callback)
        else:
            callback()

    # ------------------------------------------------------------------ plugins
    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object or module (hookimpls) after construction."""
        self.plugins.register(plugin, name=name)
        self.handlers = collect_handlers(self.plugins)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ processes
    def catalog_entries(self) -> dict[str, CatalogEntry]:
        entries, _problems = scan(self.catalog_dirs)
        return entries

    def deploy(self, source: str | os.PathLike[str] | bytes, *, file: str | None = None) -> int:
        """Store one BPMN content as a process version (once per distinct bytes); its id."""
        if isinstance(source, bytes):
            data, file = source, file or "<bytes>"
        else:
            path = Path(source)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise BpmnError(f"cannot read the file: {exc.strerror}", file=str(path)) from None
            file = file or str(path)
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._version_by_sha:
            return self._version_by_sha[sha]
        with self.connect() as conn:
            row = conn.execute(select(store.process_versions.c.id)
                               .where(store.process_versions.c.sha256 == sha)).first()
        if row is not None:
            self._version_by_sha[sha] = row.id
            return row.id
        definition = load_bpmn(data, file, operators=self.handlers)
        with self.transaction() as conn:
            row = conn.execute(select(store.process_versions.c.id)
                               .where(store.process_versions.c.sha256 == sha)).first()
            if row is None:
                version_id = conn.execute(insert(store.process_versions).values(
                    code=definition.code, name=definition.name, sha256=sha, bpmn=data,
                    file=file, created_at=self.clock.now(),
                )).inserted_primary_key[0]
            else:
                version_id = row.id
        self._definitions[version_id] = definition
        self._version_by_sha[sha] = version_id
        return version_id

    def _resolve_process(self, matter: str | os.PathLike[str]) -> int:
        text = os.fspath(matter)
        if text.endswith(".bpmn") or os.sep in text or Path(text).is_file():
            return self.deploy(text)
        entries = self.catalog_entries()
        if text not in entries:
            raise ProcessNotFound(text, sorted(entries))
        return self.deploy(entries[text].path)

    def definition(self, version_id: int) -> ProcessDefinition:
        """A stored process version, parsed once per engine."""
        if version_id not in self._definitions:
            with self.connect() as conn:
                row = conn.execute(select(store.process_versions)
                                   .where(store.process_versions.c.id == version_id)).first()
            if row is None:
                raise ProcessNotFound(f"version {version_id}")
            self._definitions[version_id] = load_bpmn(bytes(row.bpmn), row.file)
            self._version_by_sha[row.sha256] = version_id
        return self._definitions[version_id]

    def process(self, matter: str | os.PathLike[str]) -> ProcessDefinition:
        """The current definition of a matter (by catalog code or file path)."""
        return self.definition(self._resolve_process(matter))

    def catalog(self, *, problems: list[BpmnError] | None = None) -> list[Matter]:
        """Every matter in the catalog folders, at its current version.

        A file that cannot be read or loaded raises BpmnError; with a `problems` list it is
        skipped and its error appended there instead (one designer's broken draft does not
        hide the rest of the catalog)."""
        entries, unreadable = scan(self.catalog_dirs)
        if problems is not None:
            problems.extend(unreadable)
        out = []
        for code, entry in sorted(entries.items()):
            try:
                version_id = self.deploy(entry.path)
            except BpmnError as exc:
                if problems is None:
                    raise
                problems.append(exc)
                continue
            out.append(self.matter(code, version_id=version_id))
        return out

    def matter(self, code: str, *, version_id: int | None = None) -> Matter:
        version_id = version_id or self._resolve_process(code)
        definition = self.definition(version_id)
        with self.connect() as conn:
            ordinal = conn.execute(
                select(func.count()).select_from(store.process_versions).where(and_(
                    store.process_versions.c.code == definition.code,
                    store.process_versions.c.id <= version_id))).scalar_one()
        defaults = definition.role_defaults()
        steps = [{"id": t.id, "name": t.name, "lane": t.lane,
                  "multi_instance": t.multi_instance} for t in definition.user_tasks.values()]
        return Matter(
            code=definition.code, name=definition.name, version=ordinal,
            sha256=definition.sha256, file=definition.file,
            lead=defaults.get("lead_department"), collaborators=defaults.get("collaborators", []),
            leader=defaults.get("leader"), dispatch=defaults.get("dispatch_department"),
            departments=definition.departments,
            time_limits=[f"{t.name} {t.expression}" for t in definition.timers],
            steps=steps,
        )

    # ------------------------------------------------------------------ handlers
    def _call_handler(self, task: Any, operator: str, params: dict[str, Any]) -> Any:
        cmd = self._command_ctx
        handler = self.handlers.get(operator)
        element = task.task_spec.bpmn_id or task.task_spec.name
        if handler is None:
            raise UnknownHandler(operator, file=cmd.definition.file if cmd else None,
                                 element=element, known=sorted(self.handlers))
        ctx = HandlerContext(case_number=cmd.number if cmd else "?", element=element,
                             task_id=str(task.id), data=copy.deepcopy(task.data),
                             now=self.clock.now())
        result = handler(ctx, **params)
        if cmd is not None:
            if ctx.notes:
                cmd.notes[str(task.id)] = ctx.notes
            for message in ctx.outbox:
                cmd.outbox.append(message)
        return result

    # ------------------------------------------------------------------ ownership
    def _lane(self, name: str | None) -> Lane | None:
        if name not in self._lanes:
            self._lanes[name] = parse_lane(name)  # type: ignore[index]
        return self._lanes[name]  # type: ignore[index]

    def _owner(self, task: Any) -> tuple[str | None, str | None]:
        """(department, role) that owns a ready user task."""
        spec = task.task_spec
        lane = self._lane(spec.lane)
        parent = task.parent
        pspec = parent.task_spec if parent is not None else None
        item = getattr(pspec, "input_item", None)
        if item is not None and getattr(pspec, "task_spec", None) == spec.name:
            # SpiffWorkflow gives every instance the same lane: the item names the department.
            value = task.data.get(item.bpmn_id)
            if isinstance(value, dict):
                value = value.get("department") or value.get("name")
            if isinstance(value, str) and value:
                return value, (lane.role if lane else None) or "item"
        if lane is None:
            return None, None
        return lane.resolve(task.data), lane.role

    # ------------------------------------------------------------------ workflow cache
    def _workflow(self, case_id: int, version: int, blob: bytes,
                  definition: ProcessDefinition) -> BpmnWorkflow:
        cached = self._workflows.get(case_id)
        if cached is not None and cached[0] == version:
            self._workflows.move_to_end(case_id)
            return cached[1]
        return load_state(blob, definition.spec, definition.subprocess_specs, self._script)

    def _remember(self, case_id: int, version: int, workflow: BpmnWorkflow) -> None:
        self._workflows[case_id] = (version, workflow)
        self._workflows.move_to_end(case_id)
        while len(self._workflows) > WORKFLOW_CACHE_SIZE:
            self._workflows.popitem(last=False)

    # ------------------------------------------------------------------ commands
    def start(self, matter: str | os.PathLike[str], data: dict[str, Any] | None = None, *,
              actor: str = SYSTEM_ACTOR, department: str | None = None) -> CaseView:
        """Open a case of `matter` with its data; runs until the case first waits."""
        _check_name(actor, "actor")
        _check_name(department, "department", required=False)
        version_id = self._resolve_process(matter)
        definition = self.definition(version_id)
        data = _check_form(data, f"start {definition.code}")
        initial = definition.role_defaults()
        initial.update(data)
        now = self.clock.now()
        with self.transaction() as conn:
            case_id = conn.execute(insert(store.cases).values(
                number=uuid.uuid4().hex[:32], process_version_id=version_id, code=definition.code,
                status="open", version=0, state=b"", summary={}, created_at=now, updated_at=now,
            )).inserted_primary_key[0]
            number = f"YJS{now:%Y%m%d}{case_id:06d}"
            workflow = BpmnWorkflow(definition.spec, definition.subprocess_specs,
                                    script_engine=self._script)
            _tasks(workflow, TaskState.READY)[0].data.update(copy.deepcopy(initial))
            cmd = _Command(case_id, number, definition, actor, department)
            cmd.log("start", matter=definition.code, data=data)
            self._advance(cmd, workflow)
            view = self._save(conn, cmd, workflow, version=0, existing={}, created_at=now,
                              number=number)
            if self._tx is not None:
                self._tx.touched.add(case_id)
            self._after(lambda: self._after_commit(cmd))
        return view

    def claim(self, task_id: str, *, actor: str, department: str) -> WorkItem:
        """Take a work item for `actor`, so no colleague completes it at the same time."""
        _check_name(actor, "actor")
        _check_name(department, "department")
        with self.transaction() as conn:
            row = conn.execute(_ITEM_CLAIM, {"item_id": task_id, "owner": department,
                                             "actor": actor}).first()
            if row is None:
                self._refuse_claim(conn, task_id, actor=actor, department=department)
            number, code = self._case_ident(conn, row.case_id)
            conn.execute(_INSERT_EVENTS, [dict(
                case_id=row.case_id, at=self.clock.now(), actor=actor, department=department,
                action="claim", element=row.element, task_id=task_id, detail={})])
        return WorkItem(id=row.id, case=number, matter=code, element=row.element, name=row.name,
                        department=row.department, role=row.role, status=row.status,
                        claimed_by=row.claimed_by, created_at=store.utc(row.created_at))

    def _refuse_claim(self, conn: Connection, task_id: str, *, actor: str,
                      department: str) -> None:
        """Why a claim did not take: raise the error that says so."""
        row = self._item_row(conn, task_id)
        self._check_owner(row, department)
        if row.status == "claimed" and row.claimed_by != actor:
            raise TaskNotReady(task_id, row.number, "claimed", f"by {row.claimed_by}")
        raise TaskNotReady(task_id, row.number, row.status)

    def _case_ident(self, conn: Connection, case_id: int) -> tuple[str, str]:
        """A case's number and matter code: they never change, so they are remembered."""
        ident = self._idents.get(case_id)
        if ident is None:
            found = conn.execute(_CASE_IDENT, {"case_id": case_id}).first()
            if found is None:
                raise CaseNotFound(str(case_id))
            if len(self._idents) >= CASE_IDENT_CACHE_SIZE:
                self._idents.clear()
            ident = self._idents[case_id] = (found.number, found.code)
        return ident

    def complete(self, task_id: str, *, actor: str, department: str,
                 data: dict[str, Any] | None = None) -> CaseView:
        """Finish a user task with form data; the case then runs until it waits again."""
        _check_name(actor, "actor")
        _check_name(department, "department")
        form = _check_form(data, f"task {task_id}")
        found: dict[str, Any] = {}

        def locate(conn: Connection) -> _CaseRef:
            # Read inside the command's own transaction: one round trip for the item and its
            # case, and no window between the ownership check and the write.
            row = found["row"] = conn.execute(_ITEM_WITH_CASE, {"task_id": task_id}).first()
            if row is None:
                raise TaskNotFound(task_id)
            self._check_owner(row, department)
            if row.status not in OPEN_ITEM:
                raise TaskNotReady(task_id, row.number, row.status)
            if row.status == "claimed" and row.claimed_by != actor:
                raise TaskNotReady(task_id, row.number, "claimed", f"by {row.claimed_by}")
            return _CaseRef(id=row.case_id, number=row.number, version=row.case_version,
                            state=row.case_state, process_version_id=row.process_version_id,
                            created_at=row.case_created_at)

        def apply(cmd: _Command, workflow: BpmnWorkflow) -> None:
            row = found["row"]
            task = _find_task(workflow, UUID(task_id))
            if task is None or task.state != TaskState.READY:
                raise TaskNotReady(task_id, row.number, "no longer ready")
            changed = sorted(k for k, v in form.items() if task.data.get(k, object()) != v)
            task.data.update(copy.deepcopy(form))
            if row.role in ("collaborators", "item") and form:
                # Parallel instances merge their data into the case and the last one would win;
                # keep every department's answer under its name as well.
                task.data["contributions"] = {**task.data.get("contributions", {}),
                                              row.department: copy.deepcopy(form)}
            task.run()
            cmd.log("complete", element=row.element, task_id=task_id, name=row.name,
                    data=form, changed=changed)

        return self._command(locate, apply, actor=actor, department=department)

    def retry(self, incident_id: int, *, actor: str = SYSTEM_ACTOR) -> CaseView:
        """Run a failed handler or script again; the incident closes when it succeeds."""
        with self.connect() as conn:
            row = conn.execute(select(store.incidents).where(and_(
                store.incidents.c.id == incident_id, store.incidents.c.status == "open"))).first()
        if row is None:
            raise IncidentNotFound(incident_id)

        def apply(cmd: _Command, workflow: BpmnWorkflow) -> None:
            task = _find_task(workflow, UUID(row.task_id))
            if task is not None and task.state == TaskState.ERROR:
                task._set_state(TaskState.READY)
            cmd.log("retry", element=row.element, task_id=row.task_id, incident=incident_id)

        return self._command(row.case_id, apply, actor=actor, department=None)

    def message(self, number: str, name: str, payload: dict[str, Any] | None = None, *,
                actor: str = SYSTEM_ACTOR, department: str | None = None,
                data: dict[str, Any] | None = None) -> CaseView:
        """Deliver a BPMN message (e.g. a merged report) to a waiting case.

        `data` becomes case data every task still to run sees (e.g. the grown `reporters`
        list), not only the element that catches the message."""
        _check_name(actor, "actor")
        _check_name(department, "department", required=False)
        body = _check_form(payload, f"message {name!r} to case {number}")
        extra = _check_form(data, f"message {name!r} to case {number}")

        def apply(cmd: _Command, workflow: BpmnWorkflow) -> None:
            try:
                workflow.send_event(BpmnEvent(MessageEventDefinition(name), body))
            except SpiffWorkflowException:
                raise OnethingError(f"case {number} is not waiting for message {name!r}") from None
            if extra:
                pending = _tasks(workflow, TaskState.READY | TaskState.WAITING
                                 | TaskState.STARTED)
                # A waiting boundary timer re-reads its parent's data when it is refreshed.
                parents = [t.parent for t in pending
                           if t.state == TaskState.WAITING and t.parent is not None]
                for task in {id(t): t for t in [*pending, *parents]}.values():
                    task.data.update(copy.deepcopy(extra))
            cmd.log("message", name=name, payload=body, **({"data": extra} if extra else {}))

        return self.act(number, apply, actor=actor, department=department)

    def cancel(self, number: str, *, reason: str, actor: str,
               department: str | None = None) -> CaseView:
        """Withdraw an open case (merged into another by hand, filed in error …): its open
        tasks are cancelled, its timers stop, and the reason is audited."""
        _check_name(actor, "actor")
        _check_name(department, "department", required=False)
        if not reason or not reason.strip():
            raise OnethingError(f"case {number}: cancelling needs a reason")

        def apply(cmd: _Command, workflow: BpmnWorkflow) -> None:
            if workflow.completed:
                raise OnethingError(f"case {number} is already finished")
            workflow.cancel()
            cmd.cancelled = True
            cmd.log("cancel", reason=reason.strip())

        return self.act(number, apply, actor=actor, department=department)

    def act(self, number: str, apply: Callable[[Any, BpmnWorkflow], None], *, actor: str,
            department: str | None) -> CaseView:
        """Apply a module's own change to a case's workflow as one audited command.

        `apply(cmd, workflow)` may change the workflow and call `cmd.log(action, **detail)`;
        `cmd.definition` is the case's pinned process version. Built-in modules such as
        time limits use it exactly as a plugin would."""
        return self._command(lambda conn: self._case_row(conn, number).id, apply,
                             actor=actor, department=department)

    def case_id(self, number: str) -> int:
        """The database id of a case (for a module's own rows that point at cases)."""
        with self.connect() as conn:
            return int(self._case_row(conn, number).id)

    def tick(self, now: _dt.datetime | None = None, *, limit: int = 100,
             worker: str | None = None) -> list[str]:
        """Fire every timer due by `now` (default: the engine's clock); the case numbers touched.

        Due cases are leased first (FOR UPDATE SKIP LOCKED on PostgreSQL), so several workers
        on one database never fire one timer twice; a timer overdue after downtime fires once.
        A fired 督办 timer leaves one supervision row per case and stage."""
        from . import leases

        if self._tx is not None:
            # Leases must commit on their own so other workers see them at once.
            raise OnethingError("tick cannot run inside Engine.transaction(): each due case is "
                                "leased and fired in its own transaction")
        now = now or self.clock.now()
        owner = worker or self._tick_owner
        touched = []
        for case_id in leases.claim_due_cases(self.db, now, owner, limit,
                                              now=self.lease_clock.now()):
            def apply(cmd: _Command, workflow: BpmnWorkflow) -> None:
                workflow.refresh_timers()

            try:
                view = self._command(case_id, apply, actor=SYSTEM_ACTOR, department=None)
            except ConcurrencyConflict:
                leases.release(self.db, [case_id], owner)
                continue  # someone else moved the case; its due time is recomputed there
            except OnethingError:
                continue  # keep the lease: the case is tried again when it expires (real time)
            leases.release(self.db, [case_id], owner)
            touched.append(view.number)
        return touched

    @property
    def _tick_owner(self) -> str:
        if not hasattr(self, "_worker_name"):
            from .leases import worker_name

            self._worker_name = worker_name()
        return self._worker_name

    @staticmethod
    def _timer_deadlines(workflow: BpmnWorkflow) -> dict[str, tuple[str, str]]:
        """Waiting timers: task id -> (element, deadline as stored by SpiffWorkflow)."""
        out = {}
        for task in _tasks(workflow, TaskState.WAITING):
            value = task.internal_data.get("event_value")
            if isinstance(value, dict):
                value = value.get("next")
            if hasattr(task.task_spec, "event_definition") and value is not None:
                out[str(task.id)] = (task.task_spec.bpmn_id, str(value))
        return out

    def _log_timer_purposes(self, cmd: _Command, workflow: BpmnWorkflow,
                            deadlines: dict[str, tuple[str, str]], fired: dict[str, str]) -> None:
        """Audit a fired warning (预警) or supervision (督办) timer as such, in the same commit."""
        from .timelimits import is_supervision, is_warning

        timers = {t.id: t for t in cmd.definition.timers}
        for task_id, (element, due) in deadlines.items():
            task = _find_task(workflow, UUID(task_id))
            timer = timers.get(element)
            # A fired timer is ready (fired by the last refresh) or completed; one whose task
            # finished first is cancelled.
            if task is None or timer is None or task.state not in (TaskState.READY,
                                                                   TaskState.COMPLETED):
                continue
            fired[element] = due
            stage = timer.attached_to or element
            if is_supervision(timer):
                cmd.log("supervision", element=element, task_id=task_id, system=True, stage=stage, due=due, name=timer.name)
            elif is_warning(timer):
                cmd.log("warning", element=element, task_id=task_id, system=True, stage=stage, due=due, name=timer.name)
            else:
                cmd.log("timer", element=element, task_id=task_id, system=True, stage=stage, due=due, name=timer.name)

    def next_due(self) -> _dt.datetime | None:
        """When the earliest timer of any open case falls due (None if none waits)."""
        with self.connect() as conn:
            value = conn.execute(select(func.min(store.cases.c.due_at))
                                 .where(store.cases.c.status == "open")).scalar()
        return store.utc(value)

    # ------------------------------------------------------------------ command machinery
    def _check_owner(self, row: Any, department: str) -> None:
        if row.department != department:
            raise WrongDepartment(row.id, row.number, row.department or "no department", department)

    def _command(self, case: int | Callable[[Connection], int | _CaseRef],
                 apply: Callable[[_Command, BpmnWorkflow], None], *,
                 actor: str, department: str | None) -> CaseView:
        with self.transaction() as conn:
            located = case(conn) if callable(case) else case
            if isinstance(located, _CaseRef):
                case = located
            else:
                case = conn.execute(_CASE_BY_ID, {"case_id": located}).first()
                if case is None:
                    raise CaseNotFound(str(located))
            if self._tx is not None:
                self._tx.touched.add(case.id)
            definition = self.definition(case.process_version_id)
            workflow = self._workflow(case.id, case.version, case.state, definition)
            cmd = _Command(case.id, case.number, definition, actor, department)
            # Open incidents exist only where a task sits in ERROR; skip their query otherwise.
            cmd.had_errors = bool(_tasks(workflow, TaskState.ERROR))
            # Any command may fire a due timer (do_engine_steps refreshes them), not only tick:
            # note the waiting ones so a fired 预警/督办 is audited and recorded whoever fired it.
            deadlines = self._timer_deadlines(workflow)
            # Every ready user task has its work-item row (this method keeps them in step), so
            # the rows before the command are known without a query.
            before = _ready_user_tasks(workflow)
            try:
                apply(cmd, workflow)
                self._advance(cmd, workflow)
                if deadlines:
                    self._log_timer_purposes(cmd, workflow, deadlines, cmd.fired)
                existing: dict[str, Any] = dict.fromkeys(before)
                if before & _ready_user_tasks(workflow):
                    # Items still open after the command: their claims are in the rows.
                    existing.update((r.id, r) for r in conn.execute(
                        _OPEN_ITEMS, {"case_id": case.id}) if r.id in existing)
                view = self._save(conn, cmd, workflow, version=case.version, existing=existing,
                                  created_at=case.created_at, number=case.number)
                if cmd.fired:
                    from .timelimits import record_supervisions

                    record_supervisions(conn, cmd.case_id, cmd.definition.timers, cmd.fired,
                                        leader=self._case_data(workflow).get("leader"),
                                        now=self.clock.now())
            except BaseException:
                # The cached object was mutated by a command that did not commit.
                self._workflows.pop(case.id, None)
                raise
            self._after(lambda: self._after_commit(cmd))
        return view

    def _advance(self, cmd: _Command, workflow: BpmnWorkflow) -> None:
        """do_engine_steps; a failing handler or script parks its task as an incident."""
        self._command_ctx = cmd
        self._script.case_number = cmd.number
        self._script.file = cmd.definition.file

        def did_complete(task: Any) -> None:
            spec = task.task_spec
            if hasattr(spec, "operation_name"):
                note = cmd.notes.pop(str(task.id), None)
                cmd.log("handler", element=spec.bpmn_id, task_id=str(task.id), system=True, operator=spec.operation_name, name=spec.bpmn_name, **({"note": note} if note else {}))
            elif type(spec).__name__ == "EndEvent" and task.workflow is workflow:
                cmd.log("end", element=spec.bpmn_id, task_id=str(task.id), system=True, name=spec.bpmn_name)

        try:
            workflow.do_engine_steps(did_complete_task=did_complete)
        except (OnethingError, SpiffWorkflowException, Exception) as exc:
            failed = _tasks(workflow, TaskState.ERROR)
            if not failed:
                if isinstance(exc, OnethingError):
                    raise
                element = getattr(getattr(exc, "task_spec", None), "bpmn_id", None)
                raise OnethingError(f"case {cmd.number}: the process failed"
                                    f"{f' at {element!r}' if element else ''}: {exc}") from None
            for task in failed:
                spec = task.task_spec
                operator = getattr(spec, "operation_name", None)
                message = str(exc.cause if isinstance(exc, HandlerError) else exc)
                if isinstance(exc, HandlerError):
                    message = f"{type(exc.cause).__name__}: {exc.cause}"
                cmd.failures.append((str(task.id), spec.bpmn_id or spec.name, operator, message))
                cmd.log("incident", element=spec.bpmn_id, task_id=str(task.id), system=True, operator=operator, error=message)
        finally:
            self._command_ctx = None

    @staticmethod
    def _case_data(workflow: BpmnWorkflow) -> dict[str, Any]:
        if workflow.completed:
            data = dict(workflow.data)
            if workflow.last_task is not None:
                data = {**workflow.last_task.data, **data}
            return data
        data: dict[str, Any] = {}
        if workflow.last_task is not None:
            data.update(workflow.last_task.data)
        for task in _tasks(workflow, TaskState.READY | TaskState.WAITING):
            data.update(task.data)
        return data

    @staticmethod
    def _due_at(workflow: BpmnWorkflow) -> _dt.datetime | None:
        due = []
        for pending in workflow.waiting_events():
            value = pending.value
            if isinstance(value, dict):
                value = value.get("next")
            if isinstance(value, str):
                try:
                    when = _dt.datetime.fromisoformat(value)
                except ValueError:
                    continue
                due.append(store.utc(when))
        return min(due) if due else None

    def _save(self, conn: Connection, cmd: _Command, workflow: BpmnWorkflow, *, version: int,
              existing: dict[str, Any], created_at: _dt.datetime, number: str) -> CaseView:
        now = self.clock.now()
        data = self._case_data(workflow)
        finished = workflow.completed or cmd.cancelled
        status = "cancelled" if cmd.cancelled else "closed" if workflow.completed else "open"
        due_at = None if finished else self._due_at(workflow)
        summary = {k: data[k] for k in SUMMARY_KEYS if k in data}
        values = dict(state=dump_state(workflow), version=version + 1, status=status,
                      summary=summary, due_at=due_at, updated_at=now, number=number,
                      closed_at=now if finished else None)
        if status == "closed":
            cmd.log("closed", system=True)
        result = conn.execute(_CASE_UPDATE, {"case_id": cmd.case_id, "expected_version": version,
                                             **{f"new_{k}": v for k, v in values.items()}})
        if result.rowcount != 1:
            raise ConcurrencyConflict(number)

        open_items: list[WorkItem] = []
        seen: set[str] = set()
        new_rows = []
        for task in _tasks(workflow, TaskState.READY):
            if not task.task_spec.manual:
                continue
            task_id = str(task.id)
            seen.add(task_id)
            dept, role = self._owner(task)
            if dept is not None and (not isinstance(dept, str) or len(dept) > NAME_LIMIT):
                raise OnethingError(
                    f"case {number}: task {task.task_spec.bpmn_id!r} would go to a department "
                    f"named {str(dept)[:40]!r}…, which is not a usable department name")
            element = task.task_spec.bpmn_id or task.task_spec.name
            name = task.task_spec.bpmn_name or element
            prior = existing.get(task_id)
            item = WorkItem(id=task_id, case=number, matter=cmd.definition.code, element=element,
                            name=name, department=dept, role=role,
                            status=prior.status if prior is not None else "open",
                            claimed_by=prior.claimed_by if prior is not None else None,
                            created_at=now)
            open_items.append(item)
            if task_id not in existing:
                new_rows.append(dict(id=task_id, case_id=cmd.case_id, element=element, name=name,
                                     department=dept, role=role, status="open", created_at=now))
        if new_rows:
            conn.execute(_INSERT_ITEMS, new_rows)
        finished = []
        for task_id in set(existing) - seen:
            task = _find_task(workflow, UUID(task_id))
            final = "done" if task is not None and task.state == TaskState.COMPLETED else "cancelled"
            done = next((e for e in cmd.events if e["task_id"] == task_id
                         and e["action"] == "complete"), None)
            finished.append({"item_id": task_id, "final": final, "at": now,
                             "by": done["actor"] if done else None})
        if finished:
            conn.execute(_ITEM_FINISH, finished)

        incidents = (self._save_incidents(conn, cmd, workflow, now)
                     if cmd.failures or cmd.had_errors else [])
        if cmd.events:
            conn.execute(_INSERT_EVENTS, [
                dict(case_id=cmd.case_id, at=now, **event) for event in cmd.events])
        for message in cmd.outbox:
            exists = conn.execute(select(store.outbox.c.id)
                                  .where(store.outbox.c.key == message["key"])).first()
            if exists is None:
                conn.execute(insert(store.outbox).values(case_id=cmd.case_id, created_at=now,
                                                         **message))
        self._remember(cmd.case_id, version + 1, workflow)
        self._idents[cmd.case_id] = (number, cmd.definition.code)
        return CaseView(
            number=number, matter=cmd.definition.code, matter_name=cmd.definition.name,
            process_version=self._version_by_sha.get(cmd.definition.sha256, 0), status=status,
            version=version + 1, data=data, created_at=store.utc(created_at), updated_at=now,
            closed_at=now if finished else None, due_at=due_at,
            open_tasks=open_items, incidents=incidents,
        )

    def _save_incidents(self, conn: Connection, cmd: _Command, workflow: BpmnWorkflow,
                        now: _dt.datetime) -> list[Incident]:
        rows = {r.task_id: r for r in conn.execute(select(store.incidents).where(and_(
            store.incidents.c.case_id == cmd.case_id, store.incidents.c.status == "open")))}
        for task_id, row in rows.items():
            task = _find_task(workflow, UUID(task_id))
            if task is None or task.state != TaskState.ERROR:
                conn.execute(update(store.incidents).where(store.incidents.c.id == row.id)
                             .values(status="resolved", updated_at=now))
        out = []
        for task_id, element, operator, error in cmd.failures:
            if task_id in rows:
                attempts = rows[task_id].attempts + 1
                conn.execute(update(store.incidents).where(store.incidents.c.id == rows[task_id].id)
                             .values(status="open", error=error, attempts=attempts, updated_at=now))
                incident_id, created = rows[task_id].id, store.utc(rows[task_id].created_at)
            else:
                attempts = 1
                incident_id = conn.execute(insert(store.incidents).values(
                    case_id=cmd.case_id, task_id=task_id, element=element, operator=operator,
                    error=error, attempts=1, status="open", created_at=now, updated_at=now,
                )).inserted_primary_key[0]
                created = now
            out.append(Incident(id=incident_id, case=cmd.number, task_id=task_id, element=element,
                                operator=operator, error=error, attempts=attempts, status="open",
                                created_at=created, updated_at=now))
        return out

    def _after_commit(self, cmd: _Command) -> None:
        hook = self.plugins.hook.onething_event
        if not hook.get_hookimpls():
            return
        for event in cmd.events:
            hook(event={"case": cmd.number, **event})

    # ------------------------------------------------------------------ queries
    def _case_row(self, conn: Connection, number: str) -> Any:
        row = conn.execute(select(store.cases).where(store.cases.c.number == number)).first()
        if row is None:
            raise CaseNotFound(number)
        return row

    def _item_row(self, conn: Connection, task_id: str) -> Any:
        row = conn.execute(_ITEM_ROW, {"task_id": task_id}).first()
        if row is None:
            raise TaskNotFound(task_id)
        return row

    @staticmethod
    def _to_item(row: Any) -> WorkItem:
        return WorkItem(id=row.id, case=row.number, matter=row.code, element=row.element,
                        name=row.name, department=row.department, role=row.role, status=row.status,
                        claimed_by=row.claimed_by, created_at=store.utc(row.created_at),
                        completed_by=row.completed_by, completed_at=store.utc(row.completed_at))

    def tasks(self, department: str | None = None, *, case: str | None = None,
              status: str | Iterable[str] = OPEN_ITEM, limit: int | None = None) -> list[WorkItem]:
        """Work items by department and/or case: an indexed query, no workflow is loaded."""
        statuses = [status] if isinstance(status, str) else list(status)
        query = (select(store.work_items, store.cases.c.number, store.cases.c.code)
                 .join(store.cases, store.cases.c.id == store.work_items.c.case_id)
                 .where(store.work_items.c.status.in_(statuses)))
        if department is not None:
            query = query.where(store.work_items.c.department == department)
        if case is not None:
            query = query.where(store.cases.c.number == case)
        query = query.order_by(store.work_items.c.created_at, store.work_items.c.id)
        if limit:
            query = query.limit(limit)
        with self.connect() as conn:
            if case is not None:
                self._case_row(conn, case)
            return [self._to_item(r) for r in conn.execute(query)]

    def case(self, number: str) -> CaseView:
        """A case's state, data, open tasks and open incidents."""
        with self.connect() as conn:
            row = self._case_row(conn, number)
        definition = self.definition(row.process_version_id)
        workflow = self._workflow(row.id, row.version, row.state, definition)
        return CaseView(
            number=row.number, matter=row.code, matter_name=definition.name,
            process_version=row.process_version_id, status=row.status, version=row.version,
            data=self._case_data(workflow), created_at=store.utc(row.created_at),
            updated_at=store.utc(row.updated_at), closed_at=store.utc(row.closed_at),
            due_at=store.utc(row.due_at), open_tasks=self.tasks(case=number),
            incidents=self.incidents(case=number),
        )

    def cases(self, *, status: str | None = None, matter: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
        query = select(store.cases.c.number, store.cases.c.code, store.cases.c.status,
                       store.cases.c.summary, store.cases.c.created_at, store.cases.c.closed_at)
        if status:
            query = query.where(store.cases.c.status == status)
        if matter:
            query = query.where(store.cases.c.code == matter)
        query = query.order_by(store.cases.c.id.desc()).limit(limit)
        with self.connect() as conn:
            return [dict(number=r.number, matter=r.code, status=r.status, **(r.summary or {}),
                         created_at=store.utc(r.created_at), closed_at=store.utc(r.closed_at))
                    for r in conn.execute(query)]

    def history(self, number: str) -> list[Event]:
        """The case's audit log, oldest first."""
        with self.connect() as conn:
            row = self._case_row(conn, number)
            rows = conn.execute(select(store.events).where(store.events.c.case_id == row.id)
                                .order_by(store.events.c.id)).all()
        return [Event(id=r.id, case=number, at=store.utc(r.at), actor=r.actor,
                      department=r.department, action=r.action, element=r.element,
                      task_id=r.task_id, detail=r.detail or {}) for r in rows]

    def incidents(self, *, case: str | None = None, status: str = "open") -> list[Incident]:
        query = (select(store.incidents, store.cases.c.number)
                 .join(store.cases, store.cases.c.id == store.incidents.c.case_id))
        if status != "all":
            query = query.where(store.incidents.c.status == status)
        if case is not None:
            query = query.where(store.cases.c.number == case)
        with self.connect() as conn:
            if case is not None:
                self._case_row(conn, case)
            return [Incident(id=r.id, case=r.number, task_id=r.task_id, element=r.element,
                             operator=r.operator, error=r.error, attempts=r.attempts,
                             status=r.status, created_at=store.utc(r.created_at),
                             updated_at=store.utc(r.updated_at))
                    for r in conn.execute(query.order_by(store.incidents.c.id))]

    def outbox(self, *, case: str | None = None) -> list[dict[str, Any]]:
        """Messages handlers queued (replies to reporters …), oldest first."""
        query = (select(store.outbox, store.cases.c.number)
                 .join(store.cases, store.cases.c.id == store.outbox.c.case_id))
        if case is not None:
            query = query.where(store.cases.c.number == case)
        with self.connect() as conn:
            return [dict(id=r.id, case=r.number, kind=r.kind, key=r.key, payload=r.payload,
                         created_at=store.utc(r.created_at), sent_at=store.utc(r.sent_at))
                    for r in conn.execute(query.order_by(store.outbox.c.id))]

