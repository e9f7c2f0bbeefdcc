"""Lifecycle benchmark: N cases of the 12345 appeal, bare SpiffWorkflow vs onething.

(a) bare SpiffWorkflow, in memory: the BPMN is parsed once; each case runs start→end,
    completing the user tasks with the scenario's happy-path form data, and is
    serialized once, at its end, with SpiffWorkflow's own BpmnWorkflowSerializer (JSON).
(b) onething's Engine on a SQLite file in a temp dir: `start`, then for every user task
    `claim` and `complete` through the public API; every one of these is its own
    committed transaction (`--no-claim` leaves the claims out).

Both take the same path through the diagram: dispatch (lead 县住建局, one collaborator
县水务局) → sign (accepted) → handle ‖ collaborate ×1 → close → reply (service task
notify_reporter) → evaluate (满意) → end. No timer fires (P5D / P7D boundary timers on
`handle` are armed and cancelled). Cases run one after the other in one thread.

    python bench/lifecycle.py --cases 200

prints cases/s and time per case for each path, `ratio: X` (time per case (b) / (a),
target ≤ 2.0), the stored bytes per completed case, and peak RSS. `--profile` runs
path (b) once more under cProfile and prints where its time goes (ms per case).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import gc
import io
import json
import os
import pstats
import re
import resource
import sqlite3
import sys
import tempfile
import time
import tomllib
import tracemalloc
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BPMN = ROOT / "onething" / "processes" / "appeal_12345.bpmn"
BPMN = DEFAULT_BPMN
SCENARIO = ROOT / "examples" / "appeal_12345.toml"
MATTER = "appeal_12345"
REPEATS = 3


# ---------------------------------------------------------------------------- the path
def happy_path() -> tuple[dict[str, Any], list[tuple[str, str, str, dict[str, Any]]]]:
    """Start data and (element, department, actor, form) steps from the scenario file.

    The scenario itself is the unhappy path (a return, a reassignment, an overdue timer);
    the happy path takes the last dispatch trimmed to one collaborator, the accepting
    sign, that collaborator's opinion, handle, close and a satisfied evaluation.
    """
    raw = tomllib.loads(SCENARIO.read_text(encoding="utf-8"))
    steps = [s for s in raw["steps"] if "task" in s]
    last = {s["task"]: s for s in steps}                     # the last step of each task
    dispatch = dict(last["dispatch"]["data"])
    collaborator = dispatch["collaborators"][0]
    dispatch["collaborators"] = [collaborator]
    lead = dispatch["lead_department"]
    sign = next(s for s in steps if s["task"] == "sign" and s["data"].get("accepted"))
    collab = next(s for s in steps if s["task"] == "collaborate" and s["as"] == collaborator)
    ev = last["evaluate"]
    assert ev["data"]["satisfaction"] == "满意"
    path = [
        ("dispatch", last["dispatch"]["as"], last["dispatch"]["actor"], dispatch),
        ("sign", lead, sign["actor"], dict(sign["data"])),
        ("handle", lead, last["handle"]["actor"], dict(last["handle"]["data"])),
        ("collaborate", collaborator, collab["actor"], dict(collab["data"])),
        ("close", lead, last["close"]["actor"], dict(last["close"]["data"])),
        ("evaluate", ev["as"], ev["actor"], dict(ev["data"])),
    ]
    return dict(raw["case"]), path


# ---------------------------------------------------------------------------- (a) bare
_ISO = re.compile(r"^(R\d*/)?P(?!$)[\dYMWD.]*(T[\dHMS.]+)?$|^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-][\d:]+)?)?$")


class BareScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's own (unrestricted, plain eval/exec) engine, taught the two things
    the diagram needs: a timer written as a plain ISO literal (`P5D`) is that string, and
    a service task returns a JSON string. The service calls the same department action
    onething registers for the operator (`notify_reporter` …) as a plain function, so both
    paths do the same work; nothing of onething's restricted evaluator is used."""

    def __init__(self) -> None:
        super().__init__()
        from onething.plugins import collect_handlers, make_plugin_manager

        self.handlers = collect_handlers(make_plugin_manager(load_entry_points=False))

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        if _ISO.match(expression.strip()):
            return expression.strip()
        return super().evaluate(task, expression, external_context)

    def call_service(self, task: Any, operation_name: str = "", operation_params: Any = None,
                     **kwargs: Any) -> str:
        from onething.plugins import HandlerContext

        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        ctx = HandlerContext(case_number="bench", element=task.task_spec.bpmn_id,
                             task_id=str(task.id), data=task.data,
                             now=_dt.datetime.now(_dt.timezone.utc))
        result = self.handlers[operation_name](ctx, **params)
        return json.dumps(result, ensure_ascii=False, default=str)


class Bare:
    def __init__(self, initial: dict[str, Any], path: list[tuple[str, str, str, dict]]) -> None:
        parser = SpiffBpmnParser()
        parser.add_bpmn_str(BPMN.read_bytes(), filename=str(BPMN))  # noqa: F821 (set in main)
        self.spec = parser.get_spec(MATTER)
        self.subprocess_specs = parser.get_subprocess_specs(MATTER)
        self.script = BareScriptEngine()
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.initial = initial
        self.forms = {element: form for element, _dept, _actor, form in path}
        self.order = [element for element, *_ in path]

    def run_case(self) -> tuple[str, list[str]]:
        wf = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script)
        wf.get_tasks(state=TaskState.READY)[0].data.update(json.loads(json.dumps(self.initial)))
        wf.do_engine_steps()
        done = []
        while not wf.completed:
            ready = wf.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                raise RuntimeError(f"bare: stuck, waiting {[t.task_spec.name for t in wf.get_tasks(state=TaskState.WAITING)]}")
            task = min(ready, key=lambda t: self.order.index(t.task_spec.bpmn_id))
            task.data.update(json.loads(json.dumps(self.forms[task.task_spec.bpmn_id])))
            task.run()
            done.append(task.task_spec.bpmn_id)
            wf.do_engine_steps()
        return self.serializer.serialize_json(wf), done


def spec_share(bare: Bare) -> int:
    """Bytes of SpiffWorkflow's JSON that are the embedded spec (one case, outside timing)."""
    blob, _ = bare.run_case()
    dct = json.loads(blob)
    return len(json.dumps({k: dct[k] for k in ("spec", "subprocess_specs") if k in dct}))


def run_bare(bare: Bare, n: int) -> tuple[float, int, list[str]]:
    t0 = time.perf_counter()
    size = 0
    done: list[str] = []
    for _ in range(n):
        blob, done = bare.run_case()
        size = len(blob.encode("utf-8"))
    return time.perf_counter() - t0, size, done


# ---------------------------------------------------------------------------- (b) onething
def make_engine(db_path: Path) -> Any:
    from onething import Engine

    engine = Engine(str(db_path), load_entry_points=False)
    engine.deploy(BPMN)   # a process version is stored once
    return engine


def onething_case(engine: Any, initial: dict[str, Any], path: list, claim: bool) -> list[str]:
    view = engine.start(str(BPMN), initial, actor="话务员")
    done = []
    for element, dept, actor, form in path:
        item = next(t for t in view.open_tasks if t.element == element and t.department == dept)
        if claim:
            engine.claim(item.id, actor=actor, department=dept)
        view = engine.complete(item.id, actor=actor, department=dept, data=form)
        done.append(element)
    if view.status != "closed":
        raise RuntimeError(f"onething: case {view.number} ended {view.status}")
    return done


def run_onething(engine: Any, n: int, initial: dict[str, Any], path: list,
                 claim: bool) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    done: list[str] = []
    for _ in range(n):
        done = onething_case(engine, initial, path, claim)
    return time.perf_counter() - t0, done


def sizes(db_path: Path, n: int, empty_bytes: int) -> dict[str, float]:
    con = sqlite3.connect(db_path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        state = con.execute("select avg(length(state)), max(length(state)) from cases "
                            "where status = 'closed'").fetchone()
        closed = con.execute("select count(*) from cases where status='closed'").fetchone()[0]
        tables = {}
        for table in ("cases", "work_items", "events", "outbox"):
            tables[table] = con.execute(f"select count(*) from {table}").fetchone()[0] / max(n, 1)
    finally:
        con.close()
    file_bytes = db_path.stat().st_size
    return dict(state_avg=state[0] or 0, state_max=state[1] or 0, closed=closed,
                file_bytes=file_bytes, per_case_total=(file_bytes - empty_bytes) / max(n, 1),
                rows=tables)


# ---------------------------------------------------------------------------- main
def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def profile_onething(tmp: Path, n: int, initial: dict, path: list, claim: bool, top: int) -> None:
    engine = make_engine(tmp / "profile.db")
    onething_case(engine, initial, path, claim)   # warm
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        onething_case(engine, initial, path, claim)
    prof.disable()
    engine.close()
    stats = pstats.Stats(prof)
    total = sum(v[3] for k, v in stats.stats.items() if k[2] == "onething_case") / n  # type: ignore[attr-defined]
    print(f"\nprofile of (b), {n} cases under cProfile: {total * 1000:.2f} ms per case "
          "(cProfile inflates it); cumulative ms per case:")
    rows = []
    for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((ct / n * 1000, tt / n * 1000, nc / n, f"{_short(file)}:{line}({func})"))
    rows.sort(reverse=True)
    print(f"  {'cum ms':>8} {'self ms':>8} {'calls':>8}  function")
    for cum, own, calls, name in rows[:top]:
        print(f"  {cum:8.3f} {own:8.3f} {calls:8.1f}  {name}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    print("\n  by self time (all cases):")
    print("\n".join("  " + line for line in out.getvalue().splitlines()[6:30]))


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="cases per run (default 200)")
    ap.add_argument("--repeat", type=int, default=REPEATS, help="runs of each path; best counts")
    ap.add_argument("--no-claim", action="store_true", help="complete without claiming first")
    ap.add_argument("--tracemalloc", action="store_true", help="also measure peak Python heap")
    ap.add_argument("--profile", action="store_true", help="profile path (b) with cProfile")
    ap.add_argument("--bpmn", type=Path, default=DEFAULT_BPMN,
                    help="the 12345 diagram to run (default: the shipped appeal_12345.bpmn)")
    ap.add_argument("--top", type=int, default=40, help="profile rows to print")
    args = ap.parse_args(argv)
    n, claim = max(1, args.cases), not args.no_claim
    global BPMN
    BPMN = args.bpmn.resolve()

    initial, path = happy_path()
    bare = Bare(initial, path)
    with tempfile.TemporaryDirectory(prefix="onething-bench-") as tmpname:
        tmp = Path(tmpname)
        # Warm up both: imports, parse caches, compiled expressions, SQLAlchemy statement cache.
        warm = make_engine(tmp / "warm.db")
        for _ in range(5):
            _, done_a = bare.run_case()
            done_b = onething_case(warm, initial, path, claim)
        warm.close()
        if sorted(done_a) != sorted(done_b):
            raise SystemExit(f"the two paths differ: bare {done_a}, onething {done_b}")

        best_a = best_b = float("inf")
        spiff_bytes = 0
        measure: dict[str, float] = {}
        peak_heap = {}
        for rep in range(args.repeat):
            # (a) then (b), interleaved per repetition, each run in a fresh state.
            gc.collect()
            if args.tracemalloc:
                tracemalloc.start()
            elapsed_a, spiff_bytes, _ = run_bare(bare, n)
            if args.tracemalloc:
                peak_heap["a"] = max(peak_heap.get("a", 0), tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            best_a = min(best_a, elapsed_a)

            db_path = tmp / f"run{rep}.db"
            engine = make_engine(db_path)
            con = sqlite3.connect(db_path)
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            empty = db_path.stat().st_size
            gc.collect()
            if args.tracemalloc:
                tracemalloc.start()
            elapsed, _ = run_onething(engine, n, initial, path, claim)
            if args.tracemalloc:
                peak_heap["b"] = max(peak_heap.get("b", 0), tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            engine.close()
            best_b = min(best_b, elapsed)
            measure = sizes(db_path, n, empty)
            print(f"run {rep + 1}/{args.repeat}: (a) {fmt_ms(elapsed_a / n)} per case, "
                  f"(b) {fmt_ms(elapsed / n)} per case", file=sys.stderr)
        per_a, per_b = best_a / n, best_b / n
        steps = 1 + len(path) * (2 if claim else 1)

        print(f"lifecycle: {n} cases of {MATTER}, happy path {' → '.join(done_b)}; "
              f"best of {args.repeat}")
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
              f"SQLite {sqlite3.sqlite_version}")
        print(f"(a) bare SpiffWorkflow, in memory: {n / best_a:8.1f} cases/s  "
              f"{fmt_ms(per_a)} per case")
        print(f"(b) onething on SQLite:            {n / best_b:8.1f} cases/s  "
              f"{fmt_ms(per_b)} per case ({steps} transactions: start"
              f"{' + claim' if claim else ''} + complete per user task; "
              f"{fmt_ms(per_b / steps)} per transaction)")
        print(f"ratio: {per_b / per_a:.2f}")
        print(f"stored bytes per completed case (onething cases.state, zlib JSON without spec): "
              f"{measure['state_avg']:.0f} B (max {measure['state_max']:.0f} B; target <= 4096)")
        print(f"total database bytes per case (file after checkpoint, minus the empty "
              f"database; state + work items + audit events + outbox + indexes): "
              f"{measure['per_case_total']:.0f} B")
        rows = ", ".join(f"{k} {v:g}" for k, v in measure["rows"].items())
        print(f"rows per case: {rows}")
        print(f"SpiffWorkflow's own JSON per completed case (BpmnWorkflowSerializer, spec "
              f"embedded): {spiff_bytes} B, of which the spec {spec_share(bare)} B")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if args.tracemalloc:
            print(f"peak traced Python heap during a run: (a) {peak_heap['a'] / 2**20:.1f} MiB, "
                  f"(b) {peak_heap['b'] / 2**20:.1f} MiB")
        if args.profile:
            profile_onething(tmp, n, initial, path, claim, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
