"""End-to-end support: a real server on a fresh database, and Chromium driven by Playwright.

The server is set up the way `make run` does it (migrate, init, demo data) and serves
with ``python run.py``; one server serves every browser test of the session. Pages
are opened in a context that lets requests reach the portal only (intranets reach no
CDN) and records console errors. The fixtures are registered once, in tests/conftest.py,
so that every module shares the one server and the one browser.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BROWSER_MARKS = [
    pytest.mark.browser,
    # One xdist worker runs every browser test: one server and one Chromium for all of them.
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flask(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the assertion below shows the output
    )
    assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def server(tmp_path_factory: Any) -> Iterator[str]:
    """The portal on a fresh SQLite database with demo data, at http://127.0.0.1:<port>."""
    workdir = tmp_path_factory.mktemp("portal")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")},
        "DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
        "SCHEDULER_ENABLED": "0",
        "DEMO_MODE": "1",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    _flask(env, "db", "upgrade")
    _flask(env, "init")
    loaded = json.loads(_flask(env, "demo", "load", "--complaints", "40").strip().splitlines()[-1])
    assert loaded["loaded"] is True, loaded

    log_path = workdir / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A browser context that reaches the portal only, with one page whose errors are recorded."""

    def __init__(self, browser: Any):
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_the_portal)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _only_the_portal(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def login(self, server: str, username: str, password: str = "demo123") -> None:
        page = self.page
        page.goto(server + "/login/")
        page.fill("#username", username)
        page.fill("#password", password)
        with page.expect_navigation():
            page.press("#password", "Enter")
        assert "/login" not in page.url, f"{username} could not log in"

    def close(self) -> None:
        self.context.close()
