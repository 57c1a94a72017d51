"""`make run` and `make serve` install what running the portal needs; the test tools come with `make test`.

A production host gets the runtime packages, the CJK fonts, HarfBuzz and Pango, and no browser,
pytest or Playwright. Checked on what make would run (``make -n -B``), not on the Makefile's text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ensure-system-packages.sh"
TEST_ONLY_PYTHON = ("requirements-dev.txt", "pytest", "playwright", "schemathesis", "aiosmtpd", "ruff")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str) -> str:
    """The commands `make <target>` would run on a fresh clone (every prerequisite out of date)."""
    result = subprocess.run(
        ["make", "-n", "-B", target, "VENV=/nonexistent-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _system_packages(commands: str) -> set[str]:
    """The Debian packages of every ensure-system-packages.sh call among the commands."""
    packages: set[str] = set()
    calls = re.findall(r"scripts/ensure-system-packages\.sh(?: (\w+))?", commands)
    assert calls, "the target installs no system packages"
    for profile in calls:
        listed = subprocess.run(
            ["bash", str(SCRIPT), profile or "runtime", "--list"], capture_output=True, text=True, check=True
        )
        packages |= set(listed.stdout.split())
    return packages


@pytest.mark.parametrize("target", ["run", "serve"])
def test_run_and_serve_install_runtime_packages_only(target):
    commands = _dry_run(target)
    assert "requirements.txt" in commands
    for tool in TEST_ONLY_PYTHON:
        assert tool not in commands, f"make {target} installs {tool}"
    packages = _system_packages(commands)
    assert {"fonts-noto-cjk", "libharfbuzz-subset0", "libpango-1.0-0", "libpangoft2-1.0-0"} <= packages
    assert not {p for p in packages if "chromium" in p}, f"make {target} installs a browser: {packages}"


@pytest.mark.parametrize("target", ["test", "test-fast", "lint"])
def test_test_targets_install_the_test_tools(target):
    commands = _dry_run(target)
    assert "requirements-dev.txt" in commands
    packages = _system_packages(commands)
    assert "chromium" in packages and "fonts-noto-cjk" in packages
