"""Every scheduled job's pass time at scale (goal 9: ≤ 60 s of work per pass).

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_jobs [job …]
Runs each registered job once at the current time, as ``flask jobs run`` does, and
prints its pass time. The jobs COMMIT their work (this is the first run after
generating): the database is changed, e.g. the deadline scan's backlog is consumed.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from bench.common import BENCH_DATABASE_URL, fmt, machine, make_app

GOAL = 60.0


def run(url: str = BENCH_DATABASE_URL, only: list[str] | None = None) -> dict[str, float]:
    from app import jobs
    from app.jobs.registry import REGISTRY

    app = make_app(url)
    print(f"machine: {machine()}; database {url.rsplit('@', 1)[-1]}")
    results: dict[str, float] = {}
    for name in REGISTRY:
        if only and name not in only:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        summary: Any = jobs.run_due(app, None, only=[name])["jobs"].get(name)
        seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        results[name] = seconds
        print(
            f"{name:<28} {fmt(seconds):>10} (CPU {fmt(cpu_s)}, load {os.getloadavg()[0]:.1f}) "
            f"{seconds / GOAL:.2f}× of {GOAL:.0f} s  {str(summary)[:100]}",
            flush=True,
        )
    return results


if __name__ == "__main__":
    run(only=sys.argv[1:] or None)
