"""Run every benchmark and print the figures of issue 16's goals with their ratios.

``python -m bench`` (or ``make bench``): with BENCH_DATABASE_URL set, the databases
``<name>_100k`` and ``<name>_1m`` on its server are built or reused (see bench.build) and
the scale benchmarks run on both; without it, on the default bench database only.
``python -m bench --no-jobs`` leaves out the jobs benchmark (it runs each job on a copy of each database).
"""

from __future__ import annotations

import os
import statistics
import sys
from contextlib import nullcontext
from typing import Any

from bench import bench_dashboard, bench_deadline_scan, bench_documents, bench_intake, bench_pages, bench_roles, build
from bench.common import BENCH_DATABASE_URL, scratch_copy

ROWS: list[tuple[str, str, float, float, str]] = []  # goal, size, figure, goal value, unit


def _note(goal: str, size: str, figure: float | None, target: float, unit: str) -> None:
    if figure is not None:
        ROWS.append((goal, size, figure, target, unit))


def _scale(url: str, size: str, jobs: bool) -> None:
    scan = bench_deadline_scan.run(url)
    catch_up = scan.get("catch_up") or {}
    if catch_up.get("clocks"):
        per = catch_up["seconds"] / catch_up["clocks"]
        _note("6 deadline scan per due clock, catch-up", size, per * 1000, 1.0, "ms")
    busy = [p for p in scan["passes"] if p["due"]]
    if busy:
        per = sum(p["seconds"] for p in busy) / sum(p["due"] for p in busy)
        _note("6 deadline scan per due clock, steady", size, per * 1000, 1.0, "ms")
    if len({p["due"] for p in busy}) > 1:
        # A steady pass costs a fixed part (locks, rules, recipients, commit) plus a part per clock.
        fit = statistics.linear_regression([p["due"] for p in busy], [p["seconds"] for p in busy])
        _note("6 deadline scan, steady: each more clock", size, fit.slope * 1000, 1.0, "ms")
        print(f"steady passes: {fit.intercept * 1000:.1f} ms a pass plus {fit.slope * 1000:.2f} ms a clock due")
    if scan["empty"]:
        _note("6 deadline pass, nothing due", size, max(scan["empty"]) * 1000, 20.0, "ms")
    dash = bench_dashboard.run(url)
    for kind in ("month", "year"):
        _note(f"2 dashboard 总经理 {kind}", size, dash["medians"][("zongjingli", kind)] * 1000, 60.0, "ms")
    pages: dict[str, Any] = bench_pages.run(url)
    for name, figures in pages.items():
        bound = max(3 * figures["bare"], figures["bare"] + 0.015) * 1000
        if "list" not in name:
            bound = 20.0
        _note(f"1 {name}", size, figures["portal"] * 1000, bound, "ms")
    for name, figures in bench_roles.run(url, repeat=5).items():
        _note(f"1 {name} ({figures['statements']} stmts)", size, figures["wall"] * 1000, figures["bound"] * 1000, "ms")
        _note(f"1 {name}: database", size, figures["db"] * 1000, 15.0, "ms")
    if jobs:
        from bench import bench_jobs

        # On a copy: the jobs commit (the scan's backlog is consumed), which would change what the
        # pages read in the next run, and each run measures the first pass after generation.
        with scratch_copy(url, "jobs") as copy:
            for name, seconds in bench_jobs.run(copy).items():
                _note(f"9 job {name}", size, seconds, 60.0, "s")


def _summary() -> None:
    print("\n=== issue 16: figure / goal (ratio), and 1M against 100k (goal 7: ≤ 1.5×)")
    load = os.getloadavg()
    print(f"load average now: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    by_goal: dict[str, dict[str, tuple[float, float, str]]] = {}
    for goal, size, figure, target, unit in ROWS:
        by_goal.setdefault(goal, {})[size] = (figure, target, unit)
    for goal, sizes in by_goal.items():
        cells = [f"{size}: {f:,.2f} {u} / {t:,.2f} {u} ({f / t:.2f}×)" for size, (f, t, u) in sizes.items()]
        growth = ""
        if "100k" in sizes and "1m" in sizes and sizes["100k"][0]:
            growth = f"  1M/100k {sizes['1m'][0] / sizes['100k'][0]:.2f}×"
        print(f"{goal:<42} " + "; ".join(cells) + growth)


def _mixed(source: Any) -> dict[str, Any] | None:
    """The mixed load on a throw-away copy of the 100k database (it writes)."""
    if source is None:
        return None
    from bench import bench_mixed

    with scratch_copy(source.render_as_string(hide_password=False), "mixed") as copy:
        return bench_mixed.run(copy, seconds=60.0, clients=8)


def main(argv: list[str]) -> None:
    jobs = "--no-jobs" not in argv
    built: dict[str, Any] = {}
    if os.environ.get("BENCH_DATABASE_URL"):
        built = {size: build.ensure(size) for size in build.SIZES}
        for size, url in built.items():
            print(f"\n===== {size}: {url.database}")
            _scale(url.render_as_string(hide_password=False), size, jobs)
        seconds = build.generation_seconds(built["1m"])
        _note("8 generate 1M complaints", "1m", seconds, 180.0, "s")
        intake_url = built["1m"].render_as_string(hide_password=False)
    else:
        _scale(BENCH_DATABASE_URL, "1m", jobs)
        intake_url = BENCH_DATABASE_URL
    docs = bench_documents.run()
    _note("5 one 处罚通知书", "-", docs["notice_median_s"] * 1000, 70.0, "ms")
    _note("5 100 notices in one PDF", "-", docs["batch_100_notices_one_pdf_s"], 3.0, "s")
    # It registers complaints: on a copy of the built database (the default one is the caller's).
    target = scratch_copy(intake_url, "intake") if built else nullcontext(intake_url)
    with target as copy:
        intake = bench_intake.run(copy, seconds=20.0, clients=4)
    _note("3 intake per second (≥ goal: ratio ≥ 1)", "1m", intake["rate"], 150.0, "/s")
    print(f"intake: {intake['rate']:.0f}/s (goal ≥ 150/s), errors: {intake['errors'] or 'none'}")
    mixed = _mixed(built.get("100k"))
    if mixed:
        _note("4 mixed load requests/s (≥ goal: ratio ≥ 1)", "100k", mixed["rate"], 80.0, "/s")
        _note("4 mixed load p95", "100k", mixed["p95"] * 1000, 250.0, "ms")
        print(f"mixed load: errors {mixed['errors'] or 'none'}, writes missing {mixed['missing'] or 'none'}")
    _summary()


if __name__ == "__main__":
    main(sys.argv[1:])
