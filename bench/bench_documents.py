"""Document speed: render and store one 处罚通知书, and print 100 notices as one PDF.

Goals on the reference machine (issue 16): median render+store of one notice <= 0.07 s; a
batch of 100 notices into one PDF <= 3 s. The fonts are the portal's cut fonts of the common
characters (app/documents/fonts.py), built before the first timing. Runs on a throw-away SQLite database unless
BENCH_DOCUMENTS_DATABASE_URL names another (it is emptied and migrated; never the 1M database).

    python -m bench.bench_documents [--runs 20] [--batch 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

from sqlalchemy import select, text

from app.discipline import notices
from app.documents import fonts


def build_app(url: str) -> Any:
    from app import create_app, db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "SCHEDULER_ENABLED": False,
            "DEMO_MODE": True,
            "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE"))
            db.session.execute(text("CREATE SCHEMA public"))
            db.session.commit()
        from flask_migrate import upgrade

        from app.seed import defaults as seed
        from app.seed import demo

        upgrade()
        app.appbuilder.sm.sync_builtin_roles()
        seed.seed_defaults(db.session)
        demo.create_organisation(db.session, "bench-password")
        db.session.commit()
    return app


def approved_penalties(count: int) -> list[Any]:
    """``count`` cases approved by the general manager, ready for their notice."""
    from flask import current_app

    from app import db
    from app.discipline import cases as discipline
    from app.models import PenaltyRule, Staff
    from app.views.security import principal_for_user

    sm = current_app.appbuilder.sm
    hr, gm = (principal_for_user(sm.find_user(username=u)) for u in ("renshi", "zongjingli"))
    rules = db.session.scalars(select(PenaltyRule).where(PenaltyRule.tier < 5).order_by(PenaltyRule.sort)).all()
    staff = db.session.scalars(select(Staff).where(Staff.id != hr.staff_id, Staff.id != gm.staff_id)).all()
    cases = []
    for i in range(count):
        penalty = discipline.open_case(
            db.session,
            hr,
            {
                "staff": staff[i % len(staff)],
                "rule": rules[i % len(rules)],
                "head_failed_to_act": True,
                "facts": f"第{i + 1}号演示案件：接待业主时态度冷淡，未按流程登记报修，经监控核实属实。",
            },
        )
        discipline.take_step(db.session, penalty, "propose", hr, {})
        discipline.take_step(db.session, penalty, "approve", gm, {})
        cases.append(penalty)
    db.session.commit()
    return cases


def run(runs: int = 20, batch: int = 100) -> dict[str, float]:
    from app import db
    from app.discipline import cases as discipline
    from app.documents import render as documents
    from app.views.security import principal_for_user

    # Never BENCH_DATABASE_URL: this benchmark empties its database (the 1M one must survive).
    url = os.environ.get("BENCH_DOCUMENTS_DATABASE_URL", "").strip()
    tmp = None
    if not url:
        tmp = tempfile.mkdtemp(prefix="bench-documents-")
        url = "sqlite:///" + os.path.join(tmp, "bench.db")
    app = build_app(url)
    results: dict[str, float] = {}
    with app.app_context():
        print(f"database: {db.engine.dialect.name}; HarfBuzz subsetting: {documents.harfbuzz_subsetting_available()}")
        print(f"cut document fonts in use: {fonts.ensure()} ({fonts.font_dir()})")
        cases = approved_penalties(runs + 1 + batch)
        hr_user = app.appbuilder.sm.find_user(username="renshi")

        cpu: list[float] = []

        def issue(penalty: Any) -> float:
            start, start_cpu = time.perf_counter(), time.process_time()
            notices.issue_notice(db.session, penalty, hr_user.id, discipline.utcnow())
            db.session.commit()
            cpu.append(time.process_time() - start_cpu)
            return time.perf_counter() - start

        results["first_notice_cold_s"] = issue(cases[0])  # fonts load once per process
        timings = [issue(p) for p in cases[1 : runs + 1]]
        results["notice_median_s"] = statistics.median(timings)
        results["notice_median_cpu_s"] = statistics.median(cpu[1:])
        results["notice_p90_s"] = sorted(timings)[int(len(timings) * 0.9) - 1]
        start = time.perf_counter()
        for penalty in cases[runs + 1 :]:
            notices.issue_notice(db.session, penalty, hr_user.id, discipline.utcnow())
        db.session.commit()
        results[f"issue_{batch}_notices_s"] = time.perf_counter() - start
        principal = principal_for_user(hr_user)
        ids = [p.id for p in cases[runs + 1 :]]
        db.session.expire_all()
        start = time.perf_counter()
        merged = notices.batch_notices(db.session, ids, principal)
        results[f"batch_{batch}_notices_one_pdf_s"] = time.perf_counter() - start
        results["batch_pdf_mb"] = len(merged.pdf) / 1048576
        results["notice_kb"] = (
            statistics.median(d for d in db.session.scalars(select(documents.Document.size).limit(runs))) / 1024
        )
    print(
        f"render+store one notice: median {results['notice_median_s']:.3f} s, p90 {results['notice_p90_s']:.3f} s "
        f"over {runs} runs (goal <= 0.07 s, ratio {results['notice_median_s'] / 0.07:.2f}); CPU median {results['notice_median_cpu_s']:.3f} s; "
        f"first in process {results['first_notice_cold_s']:.3f} s; "
        f"{results['notice_kb']:.0f} KB each"
    )
    print(f"issue {batch} notices one by one: {results[f'issue_{batch}_notices_s']:.2f} s")
    print(
        f"batch print {batch} notices into one PDF: {results[f'batch_{batch}_notices_one_pdf_s']:.2f} s "
        f"(goal <= 3 s, ratio {results[f'batch_{batch}_notices_one_pdf_s'] / 3:.2f}), {results['batch_pdf_mb']:.1f} MB"
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    run(args.runs, args.batch)
