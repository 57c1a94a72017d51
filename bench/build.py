"""Build, or reuse, the benchmark databases at 100k and 1M complaints.

``BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench python -m bench.build`` makes
``bench_100k`` and ``bench_1m`` on that server (schema, demo organisation, generated history,
daily aggregates) and marks each with a ``bench_marker`` row; a database whose marker shows
the right size is reused as it is, any other database of that name is dropped and rebuilt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from bench.common import BENCH_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"100k": (100_000, 10_000), "1m": (1_000_000, 100_000)}


def url_for(size: str, base: str = BENCH_DATABASE_URL) -> URL:
    url = make_url(base)
    return url.set(database=f"{url.database}_{size}")


def _marker(url: URL) -> tuple[int, int] | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            row = c.execute(
                text("SELECT complaints, open_cases FROM bench_marker ORDER BY built_at DESC LIMIT 1")
            ).first()
            return (row[0], row[1]) if row else None
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def generation_seconds(url: URL) -> float | None:
    """How long ``demo generate`` took when the database was built (its marker)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            return c.scalar(text("SELECT seconds FROM bench_marker ORDER BY built_at DESC LIMIT 1"))
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _flask(url: URL, *args: str) -> str:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url.render_as_string(hide_password=False),
        DEMO_MODE="1",
        SCHEDULER_ENABLED="0",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def ensure(size: str, base: str = BENCH_DATABASE_URL) -> URL:
    """The database of ``size`` ("100k" or "1m"), built unless its marker shows it is there."""
    url = url_for(size, base)
    complaints, open_cases = SIZES[size]
    if _marker(url) == (complaints, open_cases):
        print(f"reusing {url.database} ({complaints:,} complaints, {open_cases:,} open)", flush=True)
        _flask(url, "db", "upgrade")  # built by an older schema: brought up to date, as `make run` does
        return url
    print(f"building {url.database}: {complaints:,} complaints, {open_cases:,} open …", flush=True)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    _flask(url, "db", "upgrade")
    _flask(url, "init")
    _flask(url, "demo", "load", "--complaints", "0")
    start = time.monotonic()
    out = _flask(url, "demo", "generate", "--complaints", str(complaints), "--open", str(open_cases))
    seconds = time.monotonic() - start
    print(f"  generated in {seconds:.0f} s (load {os.getloadavg()[0]:.1f}): {out.strip()}", flush=True)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as c:
        c.execute(
            text(
                "CREATE TABLE IF NOT EXISTS bench_marker (complaints integer, open_cases integer, "
                "seconds double precision, built_at timestamptz DEFAULT now())"
            )
        )
        c.execute(
            text("INSERT INTO bench_marker (complaints, open_cases, seconds) VALUES (:c, :o, :s)"),
            {"c": complaints, "o": open_cases, "s": seconds},
        )
    engine.dispose()
    return url


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SIZES):
        ensure(name)
