"""CPU per registration in-process: cProfile over many POST /api/v1/complaint/ (Flask test client).

Writes the profile (by cumulative and by own time) to a text file and prints, per
registration, the CPU milliseconds, the SQL statements and the Python function calls; the
last two do not move with the machine's load. It writes complaints: run it on a copy of a
bench database.

Usage: BENCH_DATABASE_URL=postgresql://…/intake_100k python -m bench.profile_intake [n] [out.txt]
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import sys
import time
from typing import Any

from sqlalchemy import event

from bench.bench_intake import registration
from bench.common import BENCH_DATABASE_URL, machine, make_app


def run(url: str = BENCH_DATABASE_URL, n: int = 300, out: str = "") -> float:
    app = make_app(url)
    client = app.test_client()
    token = client.post(
        "/api/v1/security/login", json={"username": "kefu", "password": "demo123", "provider": "db"}
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)

    def post() -> None:
        response = client.post("/api/v1/complaint/", json=registration(rng), headers=headers)
        assert response.status_code == 201, (response.status_code, response.get_data(as_text=True)[:300])

    for _ in range(20):  # warm caches, imports and the connection pool
        post()
    from app import db

    with app.app_context():
        engine = db.engine
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        post()
    cpu, wall = (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n
    event.remove(engine, "before_cursor_execute", count)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        post()
    profiler.disable()
    calls = pstats.Stats(profiler).total_calls / n  # type: ignore[attr-defined]
    summary = (
        f"{n} registrations: CPU {cpu * 1000:.1f} ms, wall {wall * 1000:.1f} ms each (unprofiled); "
        f"{statements[0] / n:.1f} SQL statements and {calls:,.0f} Python function calls each; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    text = io.StringIO()
    text.write(f"machine: {machine()}\ndatabase: {url.rsplit('@', 1)[-1]}\n{summary}\n\n")
    for key in ("cumulative", "tottime"):
        text.write(f"==== sorted by {key} ====\n")
        pstats.Stats(profiler, stream=text).sort_stats(key).print_stats(60)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text.getvalue())
    print(summary)
    return cpu


if __name__ == "__main__":
    args = sys.argv[1:]
    run(n=int(args[0]) if args else 300, out=args[1] if len(args) > 1 else "")
