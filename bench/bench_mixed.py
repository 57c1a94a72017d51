"""Mixed load on loopback: goal >= 80 requests/s, p95 <= 250 ms, 0 errors, every write kept.

gunicorn serves BENCH_DATABASE_URL; client processes, each signed in as the four demo roles
(总经理 zongjingli, 部门主管 zhuguan_a, 客服 kefu, 人事行政经理 renshi; by session cookie for
the screens, by JWT for REST), send for a fixed time a mix of 80% reads — home page,
complaint list page, case page, REST list, REST show, dashboard data — and 20% writes:
registrations (客服) and workflow steps through ``POST /api/v1/complaint/<id>/transition``
(人事行政经理 judges and dispatches, 部门主管 starts the investigation), each client on cases
of its own so that no two clients step on the same case. Afterwards every write that was
answered as successful is looked up in the database.

Usage: BENCH_DATABASE_URL=postgresql://…/bench_100k_copy python -m bench.bench_mixed [seconds] [clients] [workers] [threads]
It writes: point it at a copy of a bench database (createdb -T bench_100k <name>).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench import loadtest
from bench.bench_intake import registration
from bench.common import BENCH_DATABASE_URL, machine
from bench.loadtest import Http, Window, gunicorn, percentile
from bench.procstat import Meter

GOAL_RATE, GOAL_P95 = 80.0, 0.250
WARMUP = 5.0
ROLES = ("zongjingli", "zhuguan_a", "kefu", "renshi")
HEAD = "zhuguan_a"
# kind -> weight (percent of requests); reads 80, writes 20.
MIX = {
    "home page": 12,
    "complaint list page": 16,
    "case page": 16,
    "REST list": 14,
    "REST show": 14,
    "dashboard data": 8,
    "registration": 10,
    "step": 10,
}
# Steps: action, who takes it, the status the case must be in, the fields sent.
STEPS = {
    "judge_valid": ("renshi", "registered", {"note": "压测：投诉成立"}),
    "dispatch": ("renshi", "judged", {}),
    "start_investigation": (HEAD, "dispatched", {}),
}
POOL = 400  # cases read per role


def _plan(url: str, clients: int) -> dict[str, Any]:
    """Case ids each role may read, and each client's own cases for each step (disjoint)."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as c:
        users = dict(
            c.execute(text("SELECT username, id FROM ab_user WHERE username = ANY(:u)"), {"u": list(ROLES)}).all()
        )
        departments = [
            row[0]
            for row in c.execute(
                text(
                    "SELECT d.id FROM department d JOIN staff s ON s.id = d.head_id "
                    "JOIN ab_user u ON u.id = s.user_id WHERE u.username = :head"
                ),
                {"head": HEAD},
            )
        ]

        def sample(where: str, **params: Any) -> list[int]:
            # Every n-th case: spread over the years, cheap at 1M.
            ids = [
                r[0] for r in c.execute(text(f"SELECT id FROM complaint WHERE {where} LIMIT :n"), {"n": POOL, **params})
            ]
            random.Random(1).shuffle(ids)
            return ids

        reads = {
            "zongjingli": sample("id % 97 = 0"),
            "renshi": sample("id % 89 = 0"),
            HEAD: sample("department_id = ANY(:d) AND id % 7 = 0", d=departments),
            "kefu": sample("first_responder_id = :k AND id % 5 = 0", k=users["kefu"]),
        }
        steps: dict[str, list[list[int]]] = {}
        for action, (actor, status, _) in STEPS.items():
            # Not the actor's own cases (complained about: recused), not paused ones.
            where = (
                "status = :s AND paused_since IS NULL AND NOT EXISTS (SELECT 1 FROM complaint_staff cs "
                "JOIN staff s ON s.id = cs.staff_id WHERE cs.complaint_id = complaint.id AND s.user_id = :actor)"
            )
            if action == "start_investigation":
                where += " AND department_id = ANY(:d)"
            params = {"s": status, "d": departments, "actor": users[actor]}
            ids = [r[0] for r in c.execute(text(f"SELECT id FROM complaint WHERE {where} ORDER BY id"), params)]
            steps[action] = [ids[i::clients] for i in range(clients)]
    engine.dispose()
    if not all(reads.values()):
        raise RuntimeError(f"no cases to read for some role: { {k: len(v) for k, v in reads.items()} }")
    return {"reads": reads, "steps": steps}


def _csrf_login(http: Http, username: str) -> None:
    status, page = http.request("GET", "/login/")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        rb'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    form = {"username": username, "password": os.environ.get("DEMO_PASSWORD", "demo123")}
    if token:
        form["csrf_token"] = token.group(1).decode()
    status, _ = http.request("POST", "/login/", form, form=True)
    if status not in (200, 302):
        raise RuntimeError(f"web login of {username} failed: {status}")


class _Client:
    """One simulated desk: a web session and a JWT per role, its own cases to step on."""

    def __init__(self, port: int, plan: dict[str, Any], index: int):
        self.rng = random.Random(f"{time.time_ns()}-{index}")  # new callers on every run (see bench_intake)
        self.web = {role: Http(port) for role in ROLES}
        self.api = {role: Http(port) for role in ROLES}
        for role in ROLES:
            _csrf_login(self.web[role], role)
            self.api[role].login_api(role)
        self.reads = plan["reads"]
        self.steps = {action: list(ids[index]) for action, ids in plan["steps"].items()}
        self.written: dict[str, list[Any]] = {"complaints": [], "events": []}
        self.kinds: list[str] = [k for k, w in MIX.items() for _ in range(w)]

    def _case(self, role: str) -> int:
        return self.rng.choice(self.reads[role])

    def request(self, kind: str) -> tuple[str, Callable[[], tuple[int, bytes]], int]:
        """(kind, the request, the status that means success)."""
        role = self.rng.choice(ROLES)
        web, api = self.web[role], self.api[role]
        if kind == "home page":
            return kind, lambda: web.request("GET", "/"), 200
        if kind == "complaint list page":
            return kind, lambda: web.request("GET", "/complaintview/list/"), 200
        if kind == "case page":
            case = self._case(role)
            return kind, lambda: web.request("GET", f"/complaintview/show/{case}"), 200
        if kind == "REST list":
            return kind, lambda: api.request("GET", "/api/v1/complaint/"), 200
        if kind == "REST show":
            case = self._case(role)
            return kind, lambda: api.request("GET", f"/api/v1/complaint/{case}"), 200
        if kind == "dashboard data":
            who = self.api[self.rng.choice(("zongjingli", HEAD))]
            return kind, lambda: who.request("GET", "/api/v1/dashboard/data?period=month"), 200
        if kind == "step":
            ready = [a for a, ids in self.steps.items() if ids]
            if ready:
                action = self.rng.choice(ready)
                case = self.steps[action].pop()
                actor, _, fields = STEPS[action]
                body = {"action": action, **fields}
                return (
                    f"step {action}",
                    lambda: self.api[actor].request("POST", f"/api/v1/complaint/{case}/transition", body),
                    200,
                )
        body = registration(self.rng)  # a registration, also when this client's cases ran out
        return "registration", lambda: self.api["kefu"].request("POST", "/api/v1/complaint/", body), 201

    def remember(self, kind: str, payload: bytes) -> None:
        """Keep what a successful write answered, to look it up in the database at the end."""
        if kind != "registration" and not kind.startswith("step "):
            return
        answer = json.loads(payload)
        if kind == "registration":
            self.written["complaints"].append((answer["id"], answer["result"]["number"]))
        elif kind.startswith("step "):
            self.written["events"].append((answer["event"]["id"], answer["id"], answer["event"]["action"]))


def _client(port: int, plan: dict[str, Any], index: int, ready: Any, queue: Any, seconds: float) -> None:
    client = _Client(port, plan, index)
    ready.wait()  # every client has signed in (password hashing is no part of the mix)
    window = Window(WARMUP, seconds)
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[int, int]] = {}
    cpu_at_begin = None
    while window.open():
        kind, send, ok = client.request(client.rng.choice(client.kinds))
        started = time.monotonic()
        status, payload = send()
        elapsed = time.monotonic() - started
        if status == ok:
            client.remember(kind, payload)
        if not window.counts(started):
            continue
        if cpu_at_begin is None:
            cpu_at_begin = time.process_time()
        latencies.setdefault(kind, []).append(elapsed)
        if status != ok:
            errors.setdefault(kind, {})
            errors[kind][status] = errors[kind].get(status, 0) + 1
    queue.put(
        {
            "latencies": latencies,
            "errors": errors,
            "written": client.written,
            "cpu": time.process_time() - (cpu_at_begin or 0.0),
        }
    )


def _verify(url: str, written: dict[str, list[Any]]) -> list[str]:
    """The writes answered as done that the database does not hold (empty when all are there)."""
    missing: list[str] = []
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as c:
        complaints = dict(written["complaints"])
        if complaints:
            found = dict(
                c.execute(
                    text("SELECT id, number FROM complaint WHERE id = ANY(:ids)"), {"ids": list(complaints)}
                ).all()
            )
            missing += [f"complaint {i} {n}" for i, n in complaints.items() if found.get(i) != n]
        events = {e: (case, action) for e, case, action in written["events"]}
        if events:
            found_events = {
                row[0]: (row[1], row[2])
                for row in c.execute(
                    text("SELECT id, complaint_id, action FROM complaint_event WHERE id = ANY(:ids)"),
                    {"ids": list(events)},
                )
            }
            missing += [f"event {e} {v}" for e, v in events.items() if found_events.get(e) != v]
    engine.dispose()
    return missing


def run(
    url: str = BENCH_DATABASE_URL, seconds: float = 60.0, clients: int = 8, workers: int = 0, threads: int = 1
) -> dict[str, Any]:
    workers = workers or loadtest.default_workers()
    plan = _plan(url, clients)
    with gunicorn(url, workers, threads) as (port, pid):
        queue: Any = multiprocessing.Queue()
        ready = multiprocessing.Barrier(clients + 1)
        procs = [
            multiprocessing.Process(target=_client, args=(port, plan, i, ready, queue, seconds)) for i in range(clients)
        ]
        for p in procs:
            p.start()
        meter = Meter(pid, url.rsplit("/", 1)[-1].split("?")[0])
        ready.wait(timeout=300)
        window = Window(WARMUP, seconds)
        window.wait_begin()
        meter.start()
        results = [queue.get(timeout=WARMUP + seconds + 180) for _ in procs]
        cpu = meter.stop()
        for p in procs:
            p.join()
    return _report(url, seconds, clients, workers, threads, results, cpu)


def _report(
    url: str, seconds: float, clients: int, workers: int, threads: int, results: list[Any], cpu: dict[str, float]
) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    errors: dict[str, dict[int, int]] = {}
    written: dict[str, list[Any]] = {"complaints": [], "events": []}
    for r in results:
        for kind, values in r["latencies"].items():
            latencies.setdefault(kind, []).extend(values)
        for kind, counts in r["errors"].items():
            for status, n in counts.items():
                errors.setdefault(kind, {})
                errors[kind][status] = errors[kind].get(status, 0) + n
        for key in written:
            written[key] += r["written"][key]
    every = sorted(x for values in latencies.values() for x in values)
    n_errors = sum(n for counts in errors.values() for n in counts.values())
    rate = len(every) / seconds
    p95 = percentile(every, 0.95)
    print(f"machine: {machine()}")
    print(
        f"gunicorn: {workers} sync workers × {threads} threads; {clients} clients for {seconds:.0f} s "
        f"on {url.rsplit('@', 1)[-1]}"
    )
    print(f"{'kind':<34} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} errors")
    for kind in sorted(latencies, key=lambda k: (k.startswith(("step", "registration")), k)):
        values = sorted(latencies[kind])
        print(
            f"{kind:<34} {len(values):>6} {percentile(values, 0.5) * 1000:>6.0f}ms "
            f"{percentile(values, 0.95) * 1000:>6.0f}ms {percentile(values, 0.99) * 1000:>6.0f}ms "
            f"{errors.get(kind) or ''}"
        )
    reads = sum(len(v) for k, v in latencies.items() if not k.startswith(("step", "registration")))
    print(
        f"all: {len(every):,} requests = {rate:.1f}/s (goal >= {GOAL_RATE:.0f}/s, {rate / GOAL_RATE:.2f}×), "
        f"reads {reads / max(len(every), 1):.0%}; p50 {percentile(every, 0.5) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (goal <= {GOAL_P95 * 1000:.0f} ms), p99 {percentile(every, 0.99) * 1000:.0f} ms; "
        f"errors: {n_errors}"
    )
    per = {k: v / max(len(every), 1) * 1000 for k, v in cpu.items() if k != "idle"}
    per["clients"] = sum(r["cpu"] for r in results) / max(len(every), 1) * 1000
    print(
        f"CPU per request: gunicorn {per['server']:.1f} ms, PostgreSQL {per['database']:.1f} ms, "
        f"clients {per['clients']:.1f} ms; machine idle {cpu['idle'] / seconds / (os.cpu_count() or 1):.0%}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    missing = _verify(url, written)
    print(
        f"writes answered as done: {len(written['complaints'])} registrations, {len(written['events'])} steps; "
        f"missing from the database: {len(missing)} {missing[:5] if missing else ''}"
    )
    return {"rate": rate, "p95": p95, "errors": n_errors, "missing": len(missing)}


if __name__ == "__main__":
    loadtest.main(run, seconds=60.0)
