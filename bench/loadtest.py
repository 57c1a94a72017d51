"""Load tests on loopback: gunicorn on a database, HTTP clients in processes, phases and figures.

Used by ``bench_intake`` and ``bench_mixed``. Each client warms up first (every gunicorn
worker has loaded the app, compiled its statements and filled its caches by then), then
measures between two instants shared by all clients, so boot and warm-up cost stays out
of both the rate and the CPU figures.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = os.environ.get("DEMO_PASSWORD", "demo123")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(url: str, workers: int, threads: int = 1, preload: bool = False) -> Iterator[tuple[int, int]]:
    """Serve the portal on ``url`` (no scheduler, no rate limits); yields (port, master pid)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SCHEDULER_ENABLED": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_ACCESSLOG": "/dev/null",
        "RATELIMIT_ENABLED": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    if preload:
        command.append("--preload")
    server = subprocess.Popen(
        [*command, "app:create_app()"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.3)
        yield port, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def default_workers() -> int:
    """One sync worker per core, the setup the issue measured (gunicorn with 2 workers on 2 cores).

    Measured here on 2026-12-06, four workers on two cores cost more CPU per request (context
    switches) and served less: the mixed load 70.7 against 77.7 requests/s, intake 80 against 95
    registrations/s. ``make serve`` keeps its own setting (GUNICORN_WORKERS)."""
    return os.cpu_count() or 2


class Http:
    """One keep-alive connection that reconnects after an error; JWT or session-cookie auth."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers: dict[str, str] = {}
        self.used = 0.0

    def request(self, method: str, path: str, body: Any = None, form: bool = False) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data: Optional[str] = None
        if body is not None and form:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if time.monotonic() - self.used > 1.0:
            # gunicorn's threaded workers drop a keep-alive connection idle for 2 s (``keepalive``):
            # open a new one rather than send on a connection the server may be closing.
            self.conn.close()
        self.used = time.monotonic()
        try:
            self.conn.request(method, path, data, headers)
            response = self.conn.getresponse()
            payload = response.read()
            if "Set-Cookie" in response.headers:
                self._keep_cookie(response.headers.get_all("Set-Cookie") or [])
            return response.status, payload
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return -1, b""

    def _keep_cookie(self, cookies: list[str]) -> None:
        jar = dict(c.split("=", 1) for c in self.headers.get("Cookie", "").split("; ") if "=" in c)
        for cookie in cookies:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            jar[name.strip()] = value
        self.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())

    def login_api(self, username: str) -> None:
        status, body = self.request(
            "POST", "/api/v1/security/login", {"username": username, "password": PASSWORD, "provider": "db"}
        )
        if status != 200:
            raise RuntimeError(f"JWT login of {username} failed: {status}")
        self.headers["Authorization"] = f"Bearer {json.loads(body)['access_token']}"

    def login_web(self, username: str) -> None:
        status, _ = self.request("POST", "/login/", {"username": username, "password": PASSWORD}, form=True)
        if status not in (200, 302):
            raise RuntimeError(f"web login of {username} failed: {status}")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


class Window:
    """The measured window shared by all client processes (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self, warmup: float, seconds: float):
        self.begin = time.monotonic() + warmup
        self.end = self.begin + seconds

    def open(self) -> bool:
        return time.monotonic() < self.end

    def counts(self, started: float) -> bool:
        return started >= self.begin

    def wait_begin(self) -> None:
        time.sleep(max(0.0, self.begin - time.monotonic()))


def main(run: Callable[..., Any], seconds: float) -> None:
    """A load benchmark's command line: ``[seconds] [clients] [workers] [threads]`` (defaults:
    ``seconds``, 8 clients, one worker per core, 1 thread)."""
    args = sys.argv[1:]
    run(
        seconds=float(args[0]) if args else seconds,
        clients=int(args[1]) if len(args) > 1 else 8,
        workers=int(args[2]) if len(args) > 2 else 0,
        threads=int(args[3]) if len(args) > 3 else 1,
    )
