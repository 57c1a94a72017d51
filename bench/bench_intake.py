"""Intake through the REST API with gunicorn: goal >= 150 registrations/s with no errors.

Starts gunicorn (sync workers, no scheduler) on BENCH_DATABASE_URL, then client
processes post complaints with JWTs for a fixed time, each with its own caller phone.
Client and server share this machine's cores, as a real load test on one box does.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_1m python -m bench.bench_intake [seconds] [clients]
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import BENCH_DATABASE_URL, machine

ROOT = Path(__file__).resolve().parent.parent
GOAL = 150.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(port: int, seconds: float, seed: int, queue: Any) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/api/v1/security/login",
        json.dumps({"username": "kefu", "password": "demo123", "provider": "db"}),
        {"Content-Type": "application/json"},
    )
    token = json.loads(conn.getresponse().read())["access_token"]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: dict[int, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        body = json.dumps(
            {
                "content": "压力测试：电梯停运，要求尽快维修",
                "customer_name": "压测客户",
                "customer_phone": "1" + rng.choice("3589") + f"{rng.randrange(10**9):09d}",
                "channel": 1,
                "category": rng.randint(1, 7),
                "level": 1,
                "department": rng.randint(1, 5),
            }
        )
        started = time.monotonic()
        try:
            conn.request("POST", "/api/v1/complaint/", body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = -1
        latencies.append(time.monotonic() - started)
        if status != 201:
            errors[status] = errors.get(status, 0) + 1
    queue.put({"latencies": latencies, "errors": errors})


def run(url: str = BENCH_DATABASE_URL, seconds: float = 20.0, clients: int = 8, workers: int = 0) -> dict[str, Any]:
    port = _free_port()
    workers = workers or (os.cpu_count() or 2) * 2
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SCHEDULER_ENABLED": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": "1",
        "GUNICORN_ACCESSLOG": "/dev/null",
        "RATELIMIT_ENABLED": "0",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.3)
        queue: Any = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_client, args=(port, seconds, i, queue)) for i in range(clients)]
        started = time.monotonic()
        for p in procs:
            p.start()
        results = [queue.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    latencies = sorted(x for r in results for x in r["latencies"])
    errors: dict[int, int] = {}
    for r in results:
        for status, n in r["errors"].items():
            errors[status] = errors.get(status, 0) + n
    done = len(latencies) - sum(errors.values())
    rate = done / elapsed
    p50 = statistics.median(latencies) if latencies else 0
    p95 = latencies[int(len(latencies) * 0.95)] if latencies else 0
    print(f"machine: {machine()}")
    print(
        f"gunicorn: {workers} sync workers; {clients} client processes for {seconds:.0f} s on {url.rsplit('@', 1)[-1]}"
    )
    print(f"registrations: {done:,} in {elapsed:.1f} s = {rate:.0f}/s (goal >= {GOAL:.0f}/s, {rate / GOAL:.2f}×)")
    print(f"latency: median {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; errors: {errors or 'none'}")
    return {"rate": rate, "errors": errors, "p50": p50, "p95": p95}


if __name__ == "__main__":
    args = sys.argv[1:]
    run(seconds=float(args[0]) if args else 20.0, clients=int(args[1]) if len(args) > 1 else 8)
