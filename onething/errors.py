"""The onething error hierarchy: one base class, subclasses that carry their context."""

from __future__ import annotations

__all__ = [
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
]


class OnethingError(Exception):
    """Base of every error onething raises on purpose; its message is fit for a user."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BpmnError(OnethingError):
    """A BPMN file cannot be read, parsed or accepted."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        element: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.element = element
        self.line = line
        where = file or "<bpmn>"
        if line:
            where += f":{line}"
        if element:
            where += f": element {element!r}"
        super().__init__(f"{where}: {message}")


class ScriptError(BpmnError):
    """An expression or script is refused by, or fails in, the restricted evaluator."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        file: str | None = None,
        element: str | None = None,
        line: int | None = None,
        case: str | None = None,
    ) -> None:
        self.source = source
        self.case = case
        prefix = f"case {case}: " if case else ""
        super().__init__(f"{prefix}{message} in {source!r}", file=file, element=element, line=line)


class ProcessNotFound(OnethingError):
    """No process of that code (or file) is known."""

    def __init__(self, code: str, known: list[str] | None = None) -> None:
        self.code = code
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"no process {code!r} in the catalog{hint}")


class CaseNotFound(OnethingError):
    """No case has that number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no case {number!r}")


class TaskNotFound(OnethingError):
    """No work item has that id."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task {task_id!r}")


class TaskNotReady(OnethingError):
    """The work item exists but can no longer be acted on (done, cancelled, claimed by another)."""

    def __init__(self, task_id: str, case: str, status: str, detail: str = "") -> None:
        self.task_id = task_id
        self.case = case
        self.status = status
        extra = f": {detail}" if detail else ""
        super().__init__(f"task {task_id} of case {case} is {status}{extra}")


class WrongDepartment(OnethingError):
    """A department tried to act on a task that belongs to another department."""

    def __init__(self, task_id: str, case: str, owner: str, department: str) -> None:
        self.task_id = task_id
        self.case = case
        self.owner = owner
        self.department = department
        super().__init__(
            f"task {task_id} of case {case} belongs to {owner}, not to {department}"
        )


class ConcurrencyConflict(OnethingError):
    """Another writer changed the case first; reload and try again."""

    retryable = True

    def __init__(self, case: str) -> None:
        self.case = case
        super().__init__(
            f"case {case} was changed by another writer at the same time; retry the command"
        )


class HandlerError(OnethingError):
    """A department handler raised; the case keeps an incident to retry."""

    def __init__(self, operator: str, case: str, element: str, cause: BaseException) -> None:
        self.operator = operator
        self.case = case
        self.element = element
        self.cause = cause
        super().__init__(
            f"case {case}: handler {operator!r} at {element!r} failed: "
            f"{type(cause).__name__}: {cause}"
        )


class UnknownHandler(BpmnError):
    """A service task names an operator no plugin registered."""

    def __init__(self, operator: str, *, file: str | None = None, element: str | None = None,
                 known: list[str] | None = None) -> None:
        self.operator = operator
        hint = f" (registered: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"no handler registered for operator {operator!r}{hint}",
                         file=file, element=element)


class IncidentNotFound(OnethingError):
    """No open incident has that id."""

    def __init__(self, incident_id: int) -> None:
        self.incident_id = incident_id
        super().__init__(f"no open incident {incident_id}")


class ScenarioError(OnethingError):
    """A scenario file is malformed or its case did not go as it expects."""

    def __init__(self, message: str, *, file: str, step: int | None = None) -> None:
        self.file = file
        self.step = step
        self.reason = message
        where = f"{file}, step {step}" if step is not None else file
        super().__init__(f"{where}: {message}")


class UnknownTimeTier(OnethingError):
    """A time tier (办理时限档次) is not in the tiers file, or the file is unreadable."""


class ExtensionError(OnethingError):
    """An extension request (延期) cannot be made or decided as asked."""


class ReportRefused(OnethingError):
    """A report cannot be taken as it is (no text, unknown channel, bad attachment …)."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"report refused: {reason}")


class UnknownRegion(ReportRefused):
    """No region of the directory has that code or name."""

    def __init__(self, region: str, hint: list[str] | None = None) -> None:
        self.region = region
        more = f" (did you mean: {', '.join(hint)}?)" if hint else ""
        super().__init__(f"unknown region {region!r}{more}", field="region")


class AttachmentRefused(ReportRefused):
    """An attachment is too large, of a type not accepted, or one too many."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(f"attachment {name!r}: {reason}", field="attachments")


class DirectoryError(OnethingError):
    """The directory or routing-rules data file is malformed."""

    def __init__(self, message: str, *, file: str) -> None:
        self.file = file
        super().__init__(f"{file}: {message}")


class ReportNotFound(OnethingError):
    """No report or case has that number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no report or case {number!r}")


class DispatchRefused(OnethingError):
    """A dispatch-queue, merge, return or declare command cannot be done now."""

    def __init__(self, case: str, reason: str) -> None:
        self.case = case
        self.reason = reason
        super().__init__(f"case {case}: {reason}")


class DatabaseError(OnethingError):
    """The database cannot be opened or used: missing folder, not a database, unreachable
    server, missing driver, a schema newer than this onething, a corrupted file."""

    def __init__(self, message: str, *, database: str) -> None:
        self.database = database
        self.reason = message
        super().__init__(f"database error: {database}: {message}")
