"""Intake through the REST API with gunicorn: goal >= 150 registrations/s with no errors.

Starts gunicorn (sync workers, no scheduler) on BENCH_DATABASE_URL, then client
processes post complaints with JWTs: a warm-up, then a measured window, each request
with its own caller phone. Client and server share this machine's cores, as a real
load test on one box does. Besides the rate it prints the CPU each registration cost in
gunicorn, in PostgreSQL and in the clients, and how idle the machine was.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_intake [seconds] [clients] [workers] [threads]
It writes complaints: point it at a copy of a bench database.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import time
from typing import Any

from bench import loadtest
from bench.common import BENCH_DATABASE_URL, machine
from bench.loadtest import Http, Window, gunicorn, percentile
from bench.procstat import Meter

GOAL = 150.0
WARMUP = 5.0


def registration(rng: random.Random) -> dict[str, Any]:
    """A complaint as the intake desk posts it, from a new caller."""
    return {
        "content": "压力测试：电梯停运，要求尽快维修",
        "customer_name": "压测客户",
        "customer_phone": "1" + rng.choice("3589") + f"{rng.randrange(10**9):09d}",
        "channel": 1,
        "category": rng.randint(1, 7),
        "level": 1,
        "department": rng.randint(1, 5),
    }


def _client(port: int, window: Window, seed: int, queue: Any) -> None:
    # Each run its own callers: seeded by the client alone, a second run on the same copy of a
    # database registered the first run's callers again, and each then went through the repeat
    # check's text similarity (a new caller's registration costs a fraction of a returning one's).
    rng = random.Random(f"{time.time_ns()}-{seed}")
    http = Http(port)
    http.login_api("kefu")
    latencies: list[float] = []
    errors: dict[int, int] = {}
    cpu_at_begin = None
    while window.open():
        started = time.monotonic()
        status, _ = http.request("POST", "/api/v1/complaint/", registration(rng))
        if not window.counts(started):
            continue
        if cpu_at_begin is None:
            cpu_at_begin = time.process_time()
        latencies.append(time.monotonic() - started)
        if status != 201:
            errors[status] = errors.get(status, 0) + 1
    queue.put({"latencies": latencies, "errors": errors, "cpu": time.process_time() - (cpu_at_begin or 0.0)})


def run(
    url: str = BENCH_DATABASE_URL,
    seconds: float = 20.0,
    clients: int = 8,
    workers: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    workers = workers or loadtest.default_workers()
    with gunicorn(url, workers, threads) as (port, pid):
        queue: Any = multiprocessing.Queue()
        window = Window(WARMUP, seconds)
        procs = [multiprocessing.Process(target=_client, args=(port, window, i, queue)) for i in range(clients)]
        for p in procs:
            p.start()
        meter = Meter(pid, url.rsplit("/", 1)[-1].split("?")[0])
        window.wait_begin()
        meter.start()
        results = [queue.get(timeout=WARMUP + seconds + 120) for _ in procs]
        cpu = meter.stop()
        for p in procs:
            p.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: dict[int, int] = {}
    for r in results:
        for status, n in r["errors"].items():
            errors[status] = errors.get(status, 0) + n
    done = len(latencies) - sum(errors.values())
    rate = done / seconds
    p50 = statistics.median(latencies) if latencies else 0
    p95 = percentile(latencies, 0.95)
    cpu["clients"] = sum(r["cpu"] for r in results)
    per = {k: v / max(done, 1) * 1000 for k, v in cpu.items() if k != "idle"}
    print(f"machine: {machine()}")
    print(
        f"gunicorn: {workers} sync workers × {threads} threads; {clients} client processes for {seconds:.0f} s "
        f"(after {WARMUP:.0f} s warm-up) on {url.rsplit('@', 1)[-1]}"
    )
    print(f"registrations: {done:,} in {seconds:.1f} s = {rate:.0f}/s (goal >= {GOAL:.0f}/s, {rate / GOAL:.2f}×)")
    print(f"latency: median {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; errors: {errors or 'none'}")
    print(
        f"CPU per registration: gunicorn {per['server']:.1f} ms, PostgreSQL {per['database']:.1f} ms, "
        f"clients {per['clients']:.1f} ms; machine idle {cpu['idle'] / seconds / (os.cpu_count() or 1):.0%}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    return {"rate": rate, "errors": errors, "p50": p50, "p95": p95, "cpu_ms": per}


if __name__ == "__main__":
    loadtest.main(run, seconds=20.0)
