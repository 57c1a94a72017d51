"""Where the CPU of a load test went: gunicorn's processes, PostgreSQL's backends, idle time.

Read from ``/proc`` (Linux); elsewhere every figure is 0. A load test on one box is
bounded by the sum of these, so they say what a change saved better than requests/s,
which moves with whatever else the machine is doing.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on


def _cpu(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()] if os.path.isdir("/proc") else []


def process_tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its direct children (gunicorn's master and workers)."""
    total = 0.0
    for pid in _pids():
        try:
            if pid == root or int(_stat(pid)[1]) == root:
                total += _cpu(pid)
        except (OSError, ValueError, IndexError):
            continue
    return total


def backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (by its process title)."""
    found: dict[int, float] = {}
    for pid in _pids():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database} " in title:
                found[pid] = _cpu(pid)
        except (OSError, ValueError, IndexError):
            continue
    return found


def idle_seconds() -> float:
    """Idle CPU seconds of the whole machine since boot (all cores)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / TICK  # idle + iowait


class Meter:
    """CPU of a gunicorn process tree and of its database's backends between start() and stop()."""

    def __init__(self, server_pid: int, database: str):
        self.server_pid, self.database = server_pid, database

    def start(self) -> None:
        self._server = process_tree_cpu(self.server_pid)
        self._backends = backends_cpu(self.database)
        self._idle = idle_seconds()

    def stop(self) -> dict[str, float]:
        server = process_tree_cpu(self.server_pid) - self._server
        now = backends_cpu(self.database)
        database = sum(cpu - self._backends.get(pid, 0.0) for pid, cpu in now.items())
        return {"server": server, "database": database, "idle": idle_seconds() - self._idle}
