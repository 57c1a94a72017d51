"""Shared helpers of the benchmarks: the app on the bench database, timing, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_1m")


def make_app(url: str = BENCH_DATABASE_URL) -> Any:
    os.environ.setdefault("SCHEDULER_ENABLED", "0")
    from app import create_app

    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER_ENABLED": False, "LOG_LEVEL": "WARNING", "WTF_CSRF_ENABLED": False}
    )


@contextmanager
def scratch_copy(url: str, suffix: str) -> Iterator[str]:
    """A throw-away copy ``<database>_<suffix>`` of the database at ``url`` (PostgreSQL), dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    source = make_url(url)
    copy = source.set(database=f"{source.database}_{suffix}")
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{copy.database}" WITH (FORCE)'))
        # A template must have no other session: the earlier benchmarks' idle pooled connections
        # to the source are closed (their pools reconnect: pool_pre_ping).
        c.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": source.database},
        )
        c.execute(text(f'CREATE DATABASE "{copy.database}" TEMPLATE "{source.database}"'))
    try:
        yield copy.render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{copy.database}" WITH (FORCE)'))
        admin.dispose()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo", encoding="utf-8")
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg = "psql not found"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {pg}"


@contextmanager
def timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


def measure(fn: Callable[[], Any], repeat: int = 7, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
