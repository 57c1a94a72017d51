#!/usr/bin/env python3
"""Regenerate the PNG previews of the formal documents under docs/previews/.

Builds a throw-away database with the demo organisation, walks a complaint and its
penalty through the real services (fixed dates, so the previews are stable), then
prints the first page of each PDF with pdftoppm (poppler-utils):

    python scripts/render_previews.py            # writes docs/previews/*.png (and keeps the PDFs with --pdf)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, ROOT)

from app.complaints import intake
from app.discipline import notices
from app.documents import record_form
from app.timeutil import LOCAL_TZ

OUT = os.path.join(ROOT, "docs", "previews")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=LOCAL_TZ)


def build(workdir: str) -> dict[str, bytes]:
    from bench.bench_documents import build_app

    app = build_app("sqlite:///" + os.path.join(workdir, "previews.db"))
    with app.app_context():
        from app import db, settings
        from app.complaints import steps as services
        from app.discipline import cases as discipline
        from app.models import (
            Category,
            Channel,
            Commendation,
            Level,
            PenaltyRule,
            Staff,
        )
        from app.views.security import principal_for_user

        settings.put(db.session, "company.name", "阳光物业服务有限公司")
        db.session.commit()
        sm = app.appbuilder.sm
        who = {u: principal_for_user(sm.find_user(username=u)) for u in ("kefu", "renshi", "zhuguan_a", "zhuguan_b",
                                                                         "zongjingli")}
        staff = {s.name: s for s in db.session.query(Staff)}
        one = lambda model, code: db.session.query(model).filter_by(code=code).one()
        complaint = intake.register_complaint(db.session, who["kefu"].user_id, {
            "received_at": at(16, 9, 42),
            "channel": one(Channel, "phone"),
            "customer_name": "陈桂英",
            "customer_phone": "13903712468",
            "customer_address": "翠湖苑7号楼2单元1502室",
            "content": "7号楼电梯连续三天停运，报修后维修师傅上门时态度敷衍，说“这种问题等厂家来修”，"
                       "没有检查就离开了。家里老人上下楼十分困难。",
            "customer_demand": "要求立即修复电梯，维修人员当面道歉",
            "category": one(Category, "attitude"),
            "level": one(Level, "important"),
            "department": staff["张建国"].department,
            "staff": [staff["刘强"]],
        }, now=at(16, 9, 45))
        db.session.commit()
        steps = [
            ("judge_valid", "renshi", at(16, 10, 5), {"validity_reason": "经电话核实，电梯停运及维修人员态度问题属实。",
                                                      "reasonable": True}),
            ("dispatch", "renshi", at(16, 10, 8), {}),
            ("start_investigation", "zhuguan_a", at(16, 11, 0), {}),
            ("propose_plan", "zhuguan_a", at(16, 16, 30), {
                "findings": "经查，电梯维保工刘强11月14日接单后未按规程排查故障，向业主推诿称需等厂家处理，服务态度冷淡。",
                "responsible_staff": str(staff["刘强"].id),
                "resolution_plan": "当日联系厂家更换控制板修复电梯；部门主管带刘强上门致歉；按制度提报处罚。"}),
            ("reply", "zhuguan_a", at(17, 10, 20), {"reply_text": "电梯已于11月17日上午修复，我部主管已上门致歉，"
                                                                  "并对责任人按制度处理。"}),
            ("feed_back", "zhuguan_a", at(17, 11, 0), {"feedback_note": "电梯已修复，客户接受道歉，对处理表示认可。"}),
            ("follow_up", "renshi", at(18, 15, 10), {"satisfaction": "satisfied",
                                                      "follow_up_note": "电话回访陈女士，电梯运行正常，对处理结果满意。"}),
            ("close", "renshi", at(18, 15, 30), {"close_note": "处理及时，客户满意。责任人已按第六条第2款A提报处罚，予以结案。",
                                                     "customer_informed": "phone"}),
            ("archive", "renshi", at(19, 9, 0), {}),
        ]
        for action, by, when, values in steps:
            services.take_transition(db.session, complaint, action, who[by], values, now=when)
            db.session.commit()
        rule = lambda clause: db.session.query(PenaltyRule).filter_by(clause=clause).one()

        def penalty(name: str, head: str, clause: str, facts: str, day: int, **extra: object):
            p = discipline.open_case(db.session, who[head], {
                "staff": staff[name], "rule": rule(clause), "facts": facts, "incident_date": date(2026, 11, day - 2),
                **extra}, now=at(day, 9))
            for action, by, hour in (("propose", head, 10), ("review", "renshi", 14), ("approve", "zongjingli", 16)):
                discipline.take_step(db.session, p, action, who[by], {}, now=at(day, hour))
            discipline.take_step(db.session, p, "issue_notice", who["renshi"], {}, now=at(day + 1, 9))
            db.session.commit()
            return p

        notice_case = penalty(
            "刘强", "zhuguan_a", "第六条第2款A",
            "你于2026年11月14日接到翠湖苑7号楼电梯故障报修后，未按维保规程排查故障，向业主推诿称需等厂家处理，"
            "接待态度冷淡，导致电梯停运三天并引发客户投诉。", 18, complaint=complaint)
        penalty("吴刚", "zhuguan_b", "第六条第1款C", "在东门值岗时对来访业主亲友言语粗鲁，拒绝按规定登记放行。", 10,
                fine_amount=80)
        penalty("郑伟", "zhuguan_b", "第六条第4款B", "接到夜间噪音投诉后未及时处置，延误处理时机，致使投诉升级至12345热线。", 12)
        for name, day, source, text in (
            ("孙海", 9, "letter", "雨夜冒雨抢修12号楼主水管，保障了整栋楼正常供水，业主送来表扬信。"),
            ("马桂芳", 21, "call", "拾到业主遗失的钱包并及时归还，业主来电表扬。"),
        ):
            db.session.add(Commendation(staff=staff[name], department_id=staff[name].department_id,
                                        commended_on=date(2026, 11, day), source=source, content=text,
                                        recorded_by_id=who["renshi"].user_id))
        db.session.commit()
        # Tier 2 calls for a 通报: issuing the notice drafted it; 人事行政经理 issues it.
        penalty_circular = notices.issue_penalty_circular(db.session, notice_case, who["renshi"], now=at(20, 10))
        db.session.commit()
        circular = notices.issue_monthly_circular(db.session, date(2026, 11, 1), who["renshi"], now=at(27, 10))
        db.session.commit()
        record, _stored = record_form.record_form_pdf(db.session, complaint, who["renshi"].user_id)
        # November's report and grading, as the jobs make them on Tuesday 12-01 at 08:00;
        # the grades are confirmed after the five working days of 公示 (12-02..12-08).
        from app.quality import assessment, reports
        from app.quality.analytics import period_containing

        november = period_containing("month", date(2026, 11, 1))
        first_working_day = datetime(2026, 12, 1, 8, 0, tzinfo=LOCAL_TZ)
        report = reports.generate(db.session, november, now=first_working_day)
        run = assessment.open_run(db.session, november, now=first_working_day)
        assessment.confirm(db.session, run, who["zongjingli"], now=datetime(2026, 12, 9, 10, 0, tzinfo=LOCAL_TZ))
        db.session.commit()
        return {
            "penalty_notice": notices.current_notice(db.session, notice_case).content,
            "penalty_circular": penalty_circular.content,
            "circular": circular.content,
            "record_form": record,
            "analysis": report.document.content,
            "grading_circular": run.circular.content,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", action="store_true", help="also keep the PDFs next to the PNGs")
    args = parser.parse_args()
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm not found: install poppler-utils (scripts/ensure-system-packages.sh)")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="previews-") as workdir:
        for name, pdf in build(workdir).items():
            path = os.path.join(workdir, f"{name}.pdf")
            with open(path, "wb") as fh:
                fh.write(pdf)
            subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", path, os.path.join(OUT, name)], check=True)
            if args.pdf:
                shutil.copy(path, os.path.join(OUT, f"{name}.pdf"))
            print(os.path.relpath(os.path.join(OUT, f"{name}.png"), ROOT))


if __name__ == "__main__":
    main()
