"""Time `onething simulate`: 10,000 cases through the fast model, a sample through the real engine."""

from __future__ import annotations

import os
import platform
import sys
import time

from onething.simulate import run_engine_sample, run_model, size_departments, summarise, workload


def main(n: int = 10_000, days: int = 30, seed: int = 1, sample: int = 100) -> None:
    t0 = time.perf_counter()
    cases = workload(n, days, seed)
    staffed = size_departments(cases, days)
    t1 = time.perf_counter()
    par = run_model(cases, "parallel", departments=staffed)
    t2 = time.perf_counter()
    seq = run_model(cases, "sequential", departments=staffed)
    t3 = time.perf_counter()
    picked = [o for o in par[:: max(1, n // sample)] if o.case.matter == "appeal_12345"][:sample]
    figs = run_engine_sample(picked)
    t4 = time.perf_counter()
    p, s = summarise(par)[-1], summarise(seq)[-1]
    print(f"python {platform.python_version()} · {os.cpu_count()} CPU · {n} cases over {days} days")
    print(f"workload            {t1 - t0:6.2f} s")
    print(f"model, one-matter   {t2 - t1:6.2f} s  ({n / (t2 - t1):,.0f} cases/s)")
    print(f"model, sequential   {t3 - t2:6.2f} s")
    print(f"engine sample       {t4 - t3:6.2f} s  ({len(picked)} cases, "
          f"{(t4 - t3) / max(1, len(picked)) * 1000:.0f} ms/case, SQLite)")
    print(f"total               {t4 - t0:6.2f} s")
    print(f"median h  one-matter {p.median_hours}  sequential {s.median_hours}  "
          f"→ {100 * (1 - p.median_hours / s.median_hours):.1f}% shorter")
    print(f"P90 h     one-matter {p.p90_hours}  sequential {s.p90_hours}  "
          f"→ {100 * (1 - p.p90_hours / s.p90_hours):.1f}% shorter")
    print(f"on time   one-matter {p.on_time_rate}  sequential {s.on_time_rate}; "
          f"engine sample on time {figs[-1].on_time_rate if figs else None}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
