"""The restricted evaluator for BPMN expressions and scripts, and service-task dispatch."""

from __future__ import annotations

import ast
import datetime as _dt
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from .errors import HandlerError, OnethingError, ScriptError, UnknownHandler

__all__ = ["RestrictedScriptEngine", "check_source", "ISO_LITERAL", "SAFE_BUILTINS"]

# Names a designer's expression may never reach, even though some would merely fail at run
# time: refusing them at load tells the designer before any case runs.
FORBIDDEN_NAMES = frozenset({
    "__import__", "open", "eval", "exec", "compile", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "input", "breakpoint", "help", "memoryview",
    "exit", "quit", "type", "object", "super", "dir", "classmethod", "staticmethod",
    "property",
})

SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(__builtins__, name) if not isinstance(__builtins__, dict) else __builtins__[name]
    for name in (
        "len", "min", "max", "sum", "abs", "round", "sorted", "any", "all", "int", "float",
        "str", "bool", "list", "dict", "set", "tuple", "range", "enumerate", "zip",
        "isinstance", "reversed", "divmod", "frozenset",
    )
}
SAFE_BUILTINS.update({"True": True, "False": False, "None": None})

# A timer written the way every modeler writes it (PT2H, P7D, R3/PT1H, 2026-12-04T10:00)
# is a literal, not a Python name.
ISO_LITERAL = re.compile(
    r"^(R\d*/)?(P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?"
    r"|\d{4}-\d{2}-\d{2}(T[\d:.]+([+-]\d{2}:?\d{2}|Z)?)?)$"
)


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "+=": lambda a, b: a + b, "-=": lambda a, b: a - b, "*=": lambda a, b: a * b,
        "/=": lambda a, b: a / b, "//=": lambda a, b: a // b, "%=": lambda a, b: a % b,
    }
    if op not in ops:
        raise SyntaxError(f"operator {op} is not allowed")
    return ops[op](x, y)


_GUARDS: dict[str, Any] = {
    "__builtins__": SAFE_BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_write_": full_write_guard,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar,
}


def _policy_errors(source: str, mode: str) -> list[str]:
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        return [f"syntax error: {exc.msg} (line {exc.lineno})"]
    errors = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            errors.append(f"imports are not allowed (line {node.lineno})")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            errors.append(f"{node.id!r} is not allowed (line {node.lineno})")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            errors.append(f"attribute {node.attr!r} is not allowed (line {node.lineno})")
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            errors.append(f"name {node.id!r} is not allowed (line {node.lineno})")
    return errors


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> tuple[Any, tuple[str, ...]]:
    """Compile once per distinct source; returns (code, errors)."""
    errors = _policy_errors(source, mode)
    if errors:
        return None, tuple(errors)
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    if result.errors:
        return None, tuple(result.errors)
    return result.code, ()


def check_source(source: str, mode: str = "eval") -> list[str]:
    """Return why the restricted evaluator refuses `source` (empty when it accepts it)."""
    if mode == "eval" and ISO_LITERAL.match(source.strip()):
        return []
    return list(_compile(source.strip() if mode == "eval" else source, mode)[1])


def _is_plain(value: Any) -> bool:
    return not callable(value) and not isinstance(value, type(ast))


ServiceCaller = Callable[[Any, str, dict[str, Any]], Any]


class RestrictedScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine, with every expression and script run restricted.

    `context` names the case and file in error messages; `call_handler` dispatches
    service tasks (set by the engine per command).
    """

    def __init__(self, call_handler: ServiceCaller | None = None) -> None:
        super().__init__()
        self.call_handler = call_handler
        self.case_number: str | None = None
        self.file: str | None = None

    # -- expressions ---------------------------------------------------------------------
    def validate(self, expression: str) -> None:
        errors = check_source(expression, "eval")
        if errors:
            raise ScriptError("; ".join(errors), source=expression, file=self.file)

    def _run(self, task: Any, source: str, mode: str,
             external_context: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Compile (cached) and run `source` over the task's data; (result, scope)."""
        element = task.task_spec.bpmn_id or task.task_spec.name
        code, errors = _compile(source, mode)
        if errors:
            raise ScriptError("refused by the restricted evaluator: " + "; ".join(errors),
                              source=source, file=self.file, element=element,
                              case=self.case_number)
        scope = dict(_GUARDS)
        if external_context:
            scope.update(external_context)
        scope.update(task.data)
        scope.setdefault("now", self._now)
        try:
            # Both compiled by RestrictedPython above, with guarded builtins only.
            result = eval(code, scope) if mode == "eval" else exec(code, scope)  # noqa: S102,S307
        except OnethingError:
            raise
        except Exception as exc:
            raise ScriptError(f"{type(exc).__name__}: {exc}", source=source, file=self.file,
                              element=element, case=self.case_number) from None
        return result, scope

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        source = expression.strip()
        if ISO_LITERAL.match(source):
            return source
        return self._run(task, source, "eval", external_context)[0]

    def execute(self, task: Any, script: str, external_context: Mapping[str, Any] | None = None) -> bool:
        _result, scope = self._run(task, script, "exec", external_context)
        for key, value in scope.items():
            if key in _GUARDS or key == "now" or key.startswith("_"):
                continue
            if external_context and key in external_context:
                continue
            if _is_plain(value):
                task.data[key] = value
        return True

    @staticmethod
    def _now() -> str:
        from .clock import current_clock

        return current_clock().now().isoformat()

    # -- service tasks -------------------------------------------------------------------
    def call_service(self, task: Any, operation_name: str = "", operation_params: dict | None = None,
                     **kwargs: Any) -> str:
        # SpiffWorkflow 3.2.0's own error path here raises NameError; every failure is
        # turned into a HandlerError before it can reach it.
        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        if self.call_handler is None:
            raise UnknownHandler(operation_name, file=self.file, element=task.task_spec.bpmn_id)
        try:
            result = self.call_handler(task, operation_name, params)
            return json.dumps(result, ensure_ascii=False, default=_json_default)
        except (HandlerError, UnknownHandler):
            raise
        except Exception as exc:
            raise HandlerError(operation_name, self.case_number or "?",
                               task.task_spec.bpmn_id or task.task_spec.name, exc) from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"handler returned a value that is not JSON: {type(value).__name__}")
