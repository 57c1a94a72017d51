"""Department grading runs (考核定级): compute, 公示, objections, confirmation and the 通报.

Applies :mod:`app.grading` to each department's figures of a period (from
:mod:`app.analytics`), inside the caller's transaction (the caller commits). A run
opens in 公示 for a number of working days (default 5, seed 004) during which a
department head may object to its department's grade with a reason; afterwards
总经理 may set a different final grade (with a reason) and confirms the run, which
publishes the grades in a 通报 and keeps them as history.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import labels, settings
from app.access import scope
from app.complaints import grievances
from app.discipline import penalties
from app.documents import render as documents
from app.i18n import _l
from app.lifecycle import TransitionError, ValidationFailed
from app.messages import notify
from app.models import Complaint, Department, DepartmentGrade, GradingRun, Level
from app.quality import analytics, grading, stats
from app.quality.analytics import Period, Totals
from app.time_limits import sla
from app.timeutil import LOCAL_TZ, format_local, local_date, utcnow

PUBLICITY = "publicity"
CONFIRMED = "confirmed"
STATUS_LABELS = {PUBLICITY: _l("In publicity"), CONFIRMED: _l("Confirmed")}


# --- Figures ---------------------------------------------------------------------------------


# Stage names as printed in the 通报 (Simplified Chinese).
def _printed_stages() -> dict[str, str]:
    return {code: labels.printed(labels.STAGE, code) for code in labels.STAGE}


def department_figures(
    session: Session, period: Period, departments: list[int], now: Optional[datetime] = None
) -> dict[int, grading.Figures]:
    """What each department did in the period, as the grading formula reads it."""
    stats.refresh(session, now=now or utcnow())
    include_basic = bool(settings.get(session, "kpi.satisfaction_includes_basic"))
    totals = analytics.department_totals(session, period, departments)
    levels = analytics.valid_by_level(session, period, departments)
    tiers = analytics.penalty_tiers(session, period, departments)
    praise = analytics.commendation_counts(session, period, departments)
    start, end = period.bounds()
    recomplaints = {
        r["department_id"]: r["count"]
        for r in grievances.recomplaint_counts(session, start, end, Complaint.department_id.in_(departments))[
            "by_department"
        ]
    }
    result = {}
    for dep in departments:
        t = totals.get(dep, Totals())
        commendations, offsetting = praise.get(dep, (0, 0))
        satisfaction = analytics.kpis(t, include_basic)["satisfaction_rate"]
        result[dep] = grading.Figures(
            received=t.received,
            customers=analytics.customers_served(session, [dep], period),
            stages={stage: (int(v[0]), int(v[1])) for stage, v in t.stages.items()},
            followups=satisfaction["denominator"],
            satisfied=satisfaction["numerator"],
            valid=t.valid,
            valid_by_level=levels.get(dep, {}),
            penalty_tiers=tuple(tiers.get(dep, [])),
            commendations=commendations,
            offsetting_commendations=offsetting,
            re_complaints=recomplaints.get(dep, 0),
        )
    return result


def publicity_end(session: Session, opened: datetime, working_days: int) -> datetime:
    """公示 runs for ``working_days`` full working days after the day it opens; it ends at midnight after the last."""
    cal = sla.load_calendar(session)
    day = local_date(opened)
    for _ in range(max(1, working_days)):
        day = cal.next_workday(day)
    return datetime.combine(day + timedelta(days=1), time(0, 0), LOCAL_TZ)


# --- Opening a run ------------------------------------------------------------------------------


def find_run(session: Session, period: Period) -> Optional[GradingRun]:
    return session.scalars(
        select(GradingRun).where(GradingRun.period_kind == period.kind, GradingRun.period_start == period.start)
    ).first()


def open_run(session: Session, period: Period, now: Optional[datetime] = None) -> GradingRun:
    """Grade every active department for the period and open the 公示; notify heads, HR and GM."""
    now = now or utcnow()
    if find_run(session, period) is not None:
        raise TransitionError("state", str(_l("The grades of %(period)s exist already.", period=period.label)))
    formula = grading.load_formula(settings.get(session, "grading.formula"))
    departments = list(
        session.scalars(select(Department).where(Department.active.is_(True)).order_by(Department.sort, Department.id))
    )
    figures = department_figures(session, period, [d.id for d in departments], now)
    days = int(settings.get(session, "grading.publicity_working_days") or 5)
    run = GradingRun(
        period_kind=period.kind,
        period_start=period.start,
        period_end=period.end,
        label=period.label,
        status=PUBLICITY,
        formula=formula,
        opened_at=now,
        publicity_until=publicity_end(session, now, days),
    )
    session.add(run)
    for department in departments:
        result = grading.grade(figures[department.id], formula)
        details = result.as_dict()
        session.add(
            DepartmentGrade(
                run=run,
                department_id=department.id,
                score=result.score,
                components={
                    "components": details["components"],
                    "figures": figures[department.id].as_dict(),
                    "weighted": details["weighted"],
                    "bonus": details["bonus"],
                    "offsets": details["offsets"],
                    "score_grade": details["score_grade"],
                },
                grade=result.grade,
                capped_by=details["capped_by"],
            )
        )
    session.flush()
    _notify_opened(session, run, now)
    return run


def _notify_opened(session: Session, run: GradingRun, now: datetime) -> None:
    until = format_local(run.publicity_until - timedelta(minutes=1), "%Y-%m-%d")
    for g in run.grades:
        heads = notify.department_heads(session, g.department_id)
        notify.notify(
            session,
            heads,
            "grading",
            str(
                _l(
                    "Grade of %(department)s for %(period)s: %(score).1f, %(grade)s (publicity until %(until)s)",
                    department=g.department.name,
                    period=run.label,
                    score=g.score,
                    grade=grading.grade_label(g.grade),
                    until=until,
                )
            ),
            str(_l("You may object with a reason until the end of the publicity period.")),
            dedup_key=f"grading:{run.id}:opened:{g.department_id}",
            now=now,
            link=f"/departmentgradeview/show/{g.id}",
        )
    notify.notify(
        session,
        notify.users_for(session, penalties.HR) + notify.users_for(session, penalties.GM),
        "grading",
        str(_l("Department grades for %(period)s are in publicity until %(until)s", period=run.label, until=until)),
        dedup_key=f"grading:{run.id}:opened",
        now=now,
        link=f"/gradingrunview/show/{run.id}",
    )


# --- Publicity, objections, confirmation ------------------------------------------------------------


def in_publicity(run: GradingRun, now: datetime) -> bool:
    return run.status == PUBLICITY and now < run.publicity_until


def can_object(grade: DepartmentGrade, principal: scope.Principal, now: datetime) -> bool:
    return (
        principal.is_department_head
        and grade.department_id in principal.acting_department_ids
        and in_publicity(grade.run, now)
    )


def object_to(
    session: Session, grade: DepartmentGrade, principal: scope.Principal, reason: Any, now: Optional[datetime] = None
) -> DepartmentGrade:
    """A department head objects to its department's grade during the 公示 (a new objection replaces the old)."""
    now = now or utcnow()
    if not (principal.is_department_head and grade.department_id in principal.acting_department_ids):
        raise TransitionError("role", str(_l("Only the head of the department may object to its grade.")))
    if not in_publicity(grade.run, now):
        raise TransitionError("state", str(_l("The publicity period is over: objections are closed.")))
    text = (reason or "").strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed({"reason": [str(_l("Please give the reason of the objection."))]})
    grade.objection = text
    grade.objected_by_id = principal.user_id
    grade.objected_at = now
    session.flush()
    notify.notify(
        session,
        notify.users_for(session, penalties.GM) + notify.users_for(session, penalties.HR),
        "grading",
        str(
            _l(
                "Objection to the grade of %(department)s for %(period)s",
                department=grade.department.name,
                period=grade.run.label,
            )
        ),
        text,
        now=now,
        link=f"/departmentgradeview/show/{grade.id}",
    )
    return grade


def _require_gm(principal: scope.Principal) -> None:
    if not principal.has_role(penalties.GM):
        raise TransitionError("role", str(_l("Only the general manager confirms grades.")))


def decide(
    session: Session,
    grade: DepartmentGrade,
    principal: scope.Principal,
    final_grade: Any,
    note: Any = None,
    now: Optional[datetime] = None,
) -> DepartmentGrade:
    """总经理 sets a department's final grade before confirming (a change needs a reason)."""
    now = now or utcnow()
    _require_gm(principal)
    if grade.run.status != PUBLICITY:
        raise TransitionError("state", str(_l("These grades are confirmed already.")))
    errors: dict[str, list[str]] = {}
    if final_grade not in grading.GRADES:
        errors["grade"] = [str(_l("Please choose one of: %(known)s.", known=", ".join(grading.GRADES)))]
    text = note.strip() if isinstance(note, str) else ""
    if final_grade != grade.grade and not text:
        errors["note"] = [str(_l("Please give the reason for changing the computed grade."))]
    if errors:
        raise ValidationFailed(errors)
    grade.final_grade = final_grade
    grade.note = text or None
    grade.decided_by_id = principal.user_id
    grade.decided_at = now
    session.flush()
    return grade


def confirm(
    session: Session, run: GradingRun, principal: scope.Principal, now: Optional[datetime] = None
) -> GradingRun:
    """总经理 confirms a run after its 公示: final grades fixed, the 通报 issued, heads told."""
    now = now or utcnow()
    _require_gm(principal)
    if run.status != PUBLICITY:
        raise TransitionError("state", str(_l("These grades are confirmed already.")))
    if now < run.publicity_until:
        raise TransitionError(
            "state",
            str(
                _l(
                    "The publicity period runs until %(until)s; grades are confirmed after it.",
                    until=format_local(run.publicity_until - timedelta(minutes=1), "%Y-%m-%d"),
                )
            ),
        )
    for g in run.grades:
        if g.final_grade is None:
            g.final_grade = g.grade
            g.decided_by_id, g.decided_at = principal.user_id, now
    run.status = CONFIRMED
    run.confirmed_by_id = principal.user_id
    run.confirmed_at = now
    run.circular = issue_circular(session, run, principal.user_id, now)
    session.flush()
    recipients = notify.users_for(session, penalties.HR)
    for g in run.grades:
        recipients += notify.department_heads(session, g.department_id)
    notify.notify(
        session,
        recipients,
        "grading",
        str(_l("Department grades for %(period)s confirmed", period=run.label)),
        dedup_key=f"grading:{run.id}:confirmed",
        now=now,
        link=f"/gradingrunview/show/{run.id}",
    )
    return run


def circular_context(session: Session, run: GradingRun) -> dict[str, Any]:
    level_names = dict(session.execute(select(Level.code, Level.name)).all())
    stage_names = _printed_stages()
    rows = []
    for g in sorted(run.grades, key=lambda g: (-g.score, g.department.sort, g.department_id)):
        final = g.final_grade or g.grade
        rows.append(
            {
                "department": g.department.name,
                "score": g.score,
                "grade": grading.GRADE_NAMES_ZH[g.grade],
                "final": grading.GRADE_NAMES_ZH[final],
                "changed": final != g.grade,
                "reasons": [grading.cap_text_zh(c, level_names, stage_names) for c in g.capped_by or []],
                "note": g.note or "",
            }
        )
    formula = run.formula or grading.DEFAULT_FORMULA
    weights = [
        f"{grading.component_name_zh(k, stage_names)}{spec['weight']}" for k, spec in formula["components"].items()
    ]
    counts = {name: sum(1 for r in rows if r["final"] == name) for name in grading.GRADE_NAMES_ZH.values()}
    return {
        "run": {
            "label": run.label,
            "opened_on": local_date(run.opened_at),
            "until": local_date(run.publicity_until - timedelta(minutes=1)),
        },
        "rows": rows,
        "weights": "、".join(weights),
        "thresholds": formula["thresholds"],
        "counts": counts,
    }


def issue_circular(session: Session, run: GradingRun, user_id: Optional[int], now: datetime) -> Any:
    heading = f"关于{run.label}各部门服务质量考核定级结果的通报"
    key = f"grading-{Period(run.period_kind, run.period_start, run.period_end).key}"
    return documents.issue_document(
        session,
        "circular",
        heading,
        {"heading": heading, **circular_context(session, run)},
        template="documents/grading_circular.html",
        period=key[:16],
        supersedes=documents.current_document(session, "circular", period=key[:16]),
        issued_by_id=user_id,
        now=now,
    )


def runs_awaiting_confirmation(session: Session, now: datetime) -> list[GradingRun]:
    """Runs whose 公示 is over and whose confirmation 总经理 has not been asked for yet."""
    return list(
        session.scalars(
            select(GradingRun)
            .where(
                GradingRun.status == PUBLICITY,
                GradingRun.publicity_until <= now,
                GradingRun.gm_notified_at.is_(None),
            )
            .order_by(GradingRun.period_start)
        )
    )


def ask_for_confirmation(session: Session, run: GradingRun, now: datetime) -> int:
    objections = sum(1 for g in run.grades if g.objection)
    sent = notify.notify(
        session,
        notify.users_for(session, penalties.GM),
        "grading",
        str(
            _l(
                "Publicity of the %(period)s grades is over (%(n)d objections): please confirm",
                period=run.label,
                n=objections,
            )
        ),
        dedup_key=f"grading:{run.id}:confirm",
        now=now,
        webhook=False,
        link=f"/gradingrunview/show/{run.id}",
    )
    run.gm_notified_at = now
    return sent
