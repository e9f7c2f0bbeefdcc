"""The SQL schema (SQLAlchemy Core), database opening and migrations."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy import Table as _Table
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.pool import NullPool

__all__ = [
    "metadata", "process_versions", "cases", "work_items", "events", "incidents", "outbox",
    "reports", "attachment_blobs", "attachments", "case_links",
    "extensions", "supervisions",
    "open_database", "database_url", "utc", "DEFAULT_DB", "PG_URL_ENV",
]

DEFAULT_DB = "./onething.db"
PG_URL_ENV = "ONETHING_TEST_PG"

metadata = MetaData()


class UtcDateTime(DateTime):
    """DateTime that always comes back timezone-aware in UTC (SQLite forgets the zone)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)


def utc(value: _dt.datetime | None) -> _dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


process_versions = _Table(
    "process_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(100), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("bpmn", LargeBinary, nullable=False),
    Column("file", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

cases = _Table(
    "cases", metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("process_version_id", Integer, ForeignKey("process_versions.id"), nullable=False),
    Column("code", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    # The workflow's task tree without its spec, JSON compressed with zlib.
    Column("state", LargeBinary, nullable=False),
    # A small summary for listings (reporter, channel, region, description, departments).
    Column("summary", JSON, nullable=False),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    # Which worker has claimed the case's due timers / retries, and until when (0003).
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Index("ix_cases_status_due", "status", "due_at"),
    Index("ix_cases_code_status", "code", "status"),
)

work_items = _Table(
    "work_items", metadata,
    Column("id", String(36), primary_key=True),  # the SpiffWorkflow task id
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("element", String(200), nullable=False),
    Column("name", String(400), nullable=False),
    Column("department", String(200), nullable=True),
    Column("role", String(40), nullable=True),
    Column("status", String(20), nullable=False),  # open, claimed, done, cancelled
    Column("claimed_by", String(200), nullable=True),
    Column("completed_by", String(200), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index("ix_work_items_department_status", "department", "status"),
    Index("ix_work_items_case_status", "case_id", "status"),
)

events = _Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("department", String(200), nullable=True),
    Column("action", String(40), nullable=False),
    Column("element", String(200), nullable=True),
    Column("task_id", String(36), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_events_case", "case_id", "id"),
)

incidents = _Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("element", String(200), nullable=False),
    Column("operator", String(200), nullable=True),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # open, resolved
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_incidents_status", "status"),
)

outbox = _Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    # case + task + kind: a retried handler cannot send the same message twice.
    Column("key", String(300), nullable=False, unique=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
)


# ---- intake (migration 0002): reports from every channel, attachments, case links

reports = _Table(
    "reports", metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("channel", String(40), nullable=False),
    Column("reporter", String(200), nullable=False),
    Column("phone", String(40), nullable=True),
    Column("text", Text, nullable=False),
    Column("category", String(100), nullable=True),
    Column("region", String(40), nullable=False),  # region code from the directory
    Column("grid", String(40), nullable=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("outcome", String(20), nullable=False),  # dispatched, merged, redirected, queued
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=True),
    Column("rule", String(100), nullable=True),
    Column("redirect_to", String(10), nullable=True),  # 110, 119, 120, 122
    Column("detail", JSON, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_reports_case", "case_id"),
    Index("ix_reports_dedupe", "category", "received_at"),
    Index("ix_reports_outcome", "outcome", "received_at"),
)

attachment_blobs = _Table(
    "attachment_blobs", metadata,
    Column("sha256", String(64), primary_key=True),  # content stored once per hash
    Column("size", Integer, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

attachments = _Table(
    "attachments", metadata,
    Column("id", Integer, primary_key=True),
    Column("report_id", Integer, ForeignKey("reports.id"), nullable=False),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=True),
    Column("sha256", String(64), ForeignKey("attachment_blobs.sha256"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_attachments_case", "case_id"),
    Index("ix_attachments_report", "report_id"),
)

case_links = _Table(
    "case_links", metadata,
    Column("id", Integer, primary_key=True),
    Column("from_case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("to_case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("kind", String(40), nullable=False),  # declared_to_county …
    Column("actor", String(200), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("from_case_id", "to_case_id", "kind", name="uq_case_links"),
    Index("ix_case_links_from", "from_case_id"),
    Index("ix_case_links_to", "to_case_id"),
)


# 延期: a department asks, the command centre approves or rejects; the deadline moves (0003).
extensions = _Table(
    "extensions", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("seconds", Integer, nullable=False),  # how far the deadline moves
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),  # requested, approved, rejected
    Column("requested_by", String(200), nullable=False),
    Column("department", String(200), nullable=True),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("note", Text, nullable=True),
    Column("old_due", UtcDateTime(), nullable=True),
    Column("new_due", UtcDateTime(), nullable=True),
    Index("ix_extensions_case_status", "case_id", "status"),
)

# 督办: at most one per case and stage, whoever fires the timer and however often (0003).
supervisions = _Table(
    "supervisions", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("stage", String(200), nullable=False),
    Column("element", String(200), nullable=False),
    Column("leader", String(200), nullable=True),
    Column("due_at", UtcDateTime(), nullable=True),
    Column("opened_at", UtcDateTime(), nullable=False),
    UniqueConstraint("case_id", "stage", name="uq_supervisions_case_stage"),
)


def database_url(db: str | None = None) -> str:
    """A SQLAlchemy URL from --db / ONETHING_DB: a URL as is, anything else a SQLite path."""
    db = db or os.environ.get("ONETHING_DB") or DEFAULT_DB
    if "://" in db:
        if db.startswith("postgresql://"):
            return "postgresql+psycopg://" + db[len("postgresql://"):]
        if db.startswith("postgres://"):
            return "postgresql+psycopg://" + db[len("postgres://"):]
        return db
    return f"sqlite:///{Path(db).expanduser()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with NORMAL is durable across application crashes; a power cut may lose the
    # last commits but never corrupts the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_database(url: str) -> SqlEngine:
    """Create the SQLAlchemy engine and bring the schema to the newest migration."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool if path == ":memory:" else None)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take the write lock at the start
        # of every transaction so two writers queue instead of failing mid-command.
        # Straight to the driver: the statement needs none of SQLAlchemy's execution machinery.
        event.listen(engine, "begin",
                     lambda conn: conn.connection.driver_connection.execute("BEGIN IMMEDIATE"))

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
    else:
        engine = create_engine(url, pool_pre_ping=True)
    from .migrate import upgrade

    upgrade(engine)
    return engine
