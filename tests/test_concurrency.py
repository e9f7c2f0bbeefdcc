"""Concurrent writers on one case never lose an update; the loser gets a retryable conflict."""

from __future__ import annotations

import threading

from onething import ConcurrencyConflict, Engine, TaskNotReady

DEPARTMENTS = ["县供电局", "县财政局", "县水务局", "县公安局", "县民政局", "县卫健局"]


def run_together(target, engines: list[Engine], args: list[str]) -> None:
    """Run target(engine, arg) in one thread per engine, wait for all, close the engines."""
    threads = [threading.Thread(target=target, args=pair) for pair in zip(engines, args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for eng in engines:
        eng.close()


def test_parallel_completions_on_one_case_all_land(engine, data_file, db_url, clock):
    case = engine.start(str(data_file("minimal.bpmn")), {"collaborators": DEPARTMENTS})
    tasks = {t.department: t.id for t in case.open_tasks}
    engines = [Engine(db_url, clock=clock, load_entry_points=False) for _ in DEPARTMENTS]
    conflicts = []
    errors = []
    barrier = threading.Barrier(len(DEPARTMENTS))

    def work(eng: Engine, department: str) -> None:
        eng.case(case.number)  # warm this engine's cache so every writer starts from the same version
        barrier.wait()
        for _attempt in range(50):
            try:
                eng.complete(tasks[department], actor=department, department=department,
                             data={f"opinion_{DEPARTMENTS.index(department)}": "同意"})
                return
            except ConcurrencyConflict as exc:
                assert exc.retryable and exc.case == case.number
                conflicts.append(department)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    run_together(work, engines, DEPARTMENTS)
    assert errors == []
    final = engine.case(case.number)
    assert [t.element for t in final.open_tasks] == ["handle"]
    completes = [e for e in engine.history(case.number) if e.action == "complete"]
    assert sorted(e.department for e in completes) == sorted(DEPARTMENTS)
    # Every collaborator's answer survived in the case data: no update was lost.
    for i in range(len(DEPARTMENTS)):
        assert final.data.get(f"opinion_{i}") == "同意"
    assert final.version == case.version + len(DEPARTMENTS)


def test_two_people_claiming_one_task_at_once_get_one_claim(engine, data_file, db_url, clock):
    case = engine.start(str(data_file("minimal.bpmn")), {"collaborators": ["县供电局"]})
    task = case.open_tasks[0]
    people = [f"电工{i}" for i in range(6)]
    engines = [Engine(db_url, clock=clock, load_entry_points=False) for _ in people]
    barrier = threading.Barrier(len(people))
    won, refused, errors = [], [], []

    def grab(eng: Engine, actor: str) -> None:
        barrier.wait()
        try:
            eng.claim(task.id, actor=actor, department="县供电局")
            won.append(actor)
        except TaskNotReady:
            refused.append(actor)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_together(grab, engines, people)
    assert errors == [] and len(won) == 1 and len(refused) == len(people) - 1
    [item] = engine.tasks(case=case.number)
    assert item.claimed_by == won[0]
