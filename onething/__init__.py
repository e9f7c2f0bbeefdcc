"""onething: county "一件事" (one-matter) cases as BPMN diagrams on SpiffWorkflow."""

from .clock import Clock, SystemClock, VirtualClock
from .errors import (
    BpmnError,
    CaseNotFound,
    ConcurrencyConflict,
    DatabaseError,
    HandlerError,
    IncidentNotFound,
    OnethingError,
    ProcessNotFound,
    AttachmentRefused,
    DirectoryError,
    DispatchRefused,
    ReportNotFound,
    ReportRefused,
    ScenarioError,
    ScriptError,
    TaskNotFound,
    TaskNotReady,
    UnknownHandler,
    UnknownRegion,
    UnknownTimeTier,
    ExtensionError,
    WrongDepartment,
)
from .hookspecs import hookimpl
from .plugins import HandlerContext
from .views import CaseView, Event, Incident, Matter, WorkItem
from .engine import Engine  # noqa: E402  (after the names the built-in handlers import)
from .intake import Intake, IntakeResult, Report  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "CaseView",
    "WorkItem",
    "Event",
    "Incident",
    "Matter",
    "HandlerContext",
    "hookimpl",
    "Clock",
    "SystemClock",
    "VirtualClock",
    "OnethingError",
    "BpmnError",
    "ScriptError",
    "ProcessNotFound",
    "CaseNotFound",
    "TaskNotFound",
    "TaskNotReady",
    "WrongDepartment",
    "ConcurrencyConflict",
    "HandlerError",
    "UnknownHandler",
    "IncidentNotFound",
    "ScenarioError",
    "UnknownTimeTier",
    "ExtensionError",
    "DatabaseError",
    "Intake",
    "IntakeResult",
    "Report",
    "ReportRefused",
    "UnknownRegion",
    "AttachmentRefused",
    "DirectoryError",
    "ReportNotFound",
    "DispatchRefused",
    "__version__",
]
