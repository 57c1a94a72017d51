"""Administrator-editable settings (the ``setting`` table) with their defaults.

Values are JSON; a key without a row has its default. Environment variables give
deployment defaults for the notification endpoints.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.access.roles import CUSTOMER_SERVICE, DEPARTMENT_HEAD, GENERAL_MANAGER, HR_MANAGER
from app.i18n import _l
from app.models import Setting

# The default grading formula (考核定级, app/quality/grading.py reads and checks it).
DEFAULT_GRADING_FORMULA: dict[str, Any] = {
    "components": {
        # Scores 100 at no complaint, 0 at ``zero_at`` complaints per customer served (1%).
        "complaint_rate": {"weight": 10, "zero_at": 0.01},
        "on_time_reply": {"weight": 20},
        "timeliness": {"weight": 10},
        "satisfaction": {"weight": 25},
        # 100 minus ``points_each`` per valid complaint (after offsets).
        "valid_complaints": {"weight": 20, "points_each": 10},
        # 100 minus the points of each penalty by its tier.
        "penalties": {"weight": 15, "points_by_tier": {"1": 10, "2": 20, "3": 40, "4": 70, "5": 100}},
    },
    # Commendations not used to offset a complaint add points, up to ``max``.
    "commendation_bonus": {"points_each": 1, "max": 5},
    # A commendation flagged "offsets a complaint" cancels one valid complaint.
    "offset_complaints": True,
    "thresholds": {"first": 90, "second": 80, "third": 70},
    # Seed 004: the weighted score *and every part* must reach a grade's score.
    "every_part_counts": False,
    "caps": [
        {"condition": "valid_complaint_level", "levels": ["major", "urgent"], "cap": "second"},
        {"condition": "penalty_tier", "min_tier": 4, "cap": "second"},
        {"condition": "penalty_tier", "min_tier": 5, "cap": "third"},
    ],
}

DEFAULTS: dict[str, tuple[Any, Any]] = {
    "office_hours": (
        [["09:00", "12:00"], ["13:30", "18:00"]],
        _l("Office hours (Asia/Shanghai), list of [start, end] blocks"),
    ),
    "digest_time": ("08:30", _l("Time of the daily digest on working days (HH:MM)")),
    "notify.wecom_webhook": (os.environ.get("WEBHOOK_WECOM_URL", ""), _l("企业微信 group robot webhook URL")),
    "notify.dingtalk_webhook": (os.environ.get("WEBHOOK_DINGTALK_URL", ""), _l("钉钉 group robot webhook URL")),
    "notify.email_enabled": (True, _l("Send notifications by e-mail when an SMTP server is configured")),
    "notify.digest_minutes": (10, _l("Minutes within which a repeat of the same message is merged into the first")),
    "company.name": ("", _l("Company name printed on formal documents")),
    "documents.issuer": ("人事行政部", _l("Issuing office printed on penalty notices and circulars")),
    "documents.number_prefixes": (
        {
            "penalty_notice": "人行罚字",
            "circular": "人行通字",
            "monthly_analysis": "人行析字",
            "weekly_analysis": "人行周析字",
            "regulator_reply": "人行复字",
        },
        _l("Document number (文号) prefix of each document kind"),
    ),
    "penalty.appeal_working_days": (3, _l("Working days after service within which an appeal is accepted")),
    "penalty.chain_documents": (
        "circular",
        _l(
            "How persons liable by chain (连带扣分) are told: circular (a line in the 通报) "
            "or notice (their own 处罚通知书 as well)"
        ),
    ),
    "points.threshold": (
        12,
        _l("Points deducted from one person within the period after which the HR & administration manager is warned"),
    ),
    "points.threshold_period": ("year", _l("Period of the points threshold: year or month")),
    "kpi.satisfaction_includes_basic": (True, _l("Satisfaction rate counts 基本满意 as satisfied")),
    "reports.time": (
        "08:00",
        _l("Time on the first working day of a week or month after which its reports and grading are produced (HH:MM)"),
    ),
    "reports.worst_cases": (10, _l("How many worst cases an analysis report lists")),
    "corrective.temporary_working_hours": (
        8,
        _l("Default time for a temporary countermeasure of a quality complaint (working hours)"),
    ),
    "corrective.permanent_working_days": (
        2,
        _l("Default time for a permanent countermeasure of a quality complaint (working days)"),
    ),
    "corrective.general_working_days": (5, _l("Default time for another corrective action (working days)")),
    "grading.formula": (
        DEFAULT_GRADING_FORMULA,
        _l(
            "Department grading formula: component weights and scoring, commendation bonus and offsets, "
            "grade thresholds, and the caps (disqualifiers) that limit the grade"
        ),
    ),
    "grading.publicity_working_days": (
        5,
        _l("Working days the grades are shown for publicity (公示) before the general manager confirms them"),
    ),
    "extension.notice_working_days": (
        1,
        _l(
            "An extension must be asked at least this many working days before the deadline; "
            "a later request is decided by the general manager"
        ),
    ),
    "pause.cap_working_days": (
        5,
        _l(
            "A pause of a case's clock (暂停计时) longer than this many working days needs the general manager's approval"
        ),
    ),
    "policy.preset": ("", _l("The policy preset (level scheme and time limits) loaded last")),
    "attitude.month_cap": (
        1,
        _l("Most valid service-attitude complaints (服务性投诉) a staff member may have in a month (seed 003: 1)"),
    ),
    "attitude.year_limit": (
        4,
        _l("A staff member must stay below this many valid service-attitude complaints a year (seed 003: 4)"),
    ),
    "security.lockout_attempts": (
        5,
        _l("Consecutive failed sign-ins after which an account is locked"),
    ),
    "security.lockout_minutes": (15, _l("Minutes an account stays locked after too many failed sign-ins")),
    "privacy.reveal_roles": (
        [CUSTOMER_SERVICE, DEPARTMENT_HEAD, HR_MANAGER, GENERAL_MANAGER],
        _l(
            "Roles that may reveal a complainant's full contact details on a case they see "
            "(a department head only for its own departments; every reveal is logged)"
        ),
    ),
    "privacy.retention_days": (
        1095,
        _l("Days after archiving after which a customer whose cases are all archived is anonymised"),
    ),
    "cluster.min_complaints": (
        3,
        _l(
            "A cluster (集中性投诉) is at least this many complaints about the same problem (similar texts) "
            "against one department within a calendar month (seed 004: 3)"
        ),
    ),
    "cluster.similarity_threshold": (
        0.3,
        _l(
            "Text similarity (TF-IDF cosine, 0–1) from which two complaints are about the same problem: "
            "clusters, repeat complaints and the similar open cases shown at intake"
        ),
    ),
    "cluster.serious_per_month": (
        3,
        _l("The same problem this many times in a calendar month is serious: the level of its open cases rises"),
    ),
    "cluster.serious_level": (
        "major",
        _l("Code of the level a serious repeated problem rises to (seed 004: 严重; 重大 = major)"),
    ),
    "cluster.scan_seconds": (
        20,
        _l("Time budget of one pass of the cluster scan in seconds; the next pass resumes where it stopped"),
    ),
    "cluster.scan_months": (
        2,
        _l("Calendar months the cluster scan looks at (the current one and those before it)"),
    ),
    "cluster.group_complainants": (
        5,
        _l("A complaint by at least this many people together (群体性投诉) is at least a major complaint"),
    ),
    "repeat.window_days": (
        30,
        _l(
            "A complaint is a repeat when the same customer complains about the same problem (similar texts) "
            "within this many days"
        ),
    ),
}


# Settings are read on every request and change rarely: each process keeps them for a
# short while; a change made in this process is seen at once, one made by another
# process within TTL seconds.
TTL = 30.0
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def _bind(session: Session) -> str:
    return str(session.get_bind().url)


def get(session: Session, key: str) -> Any:
    """The setting's value (its default when unset)."""
    cache_key = (_bind(session), key)
    hit = _cache.get(cache_key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    row = session.get(Setting, key)
    value = row.value if row is not None and row.value is not None else DEFAULTS.get(key, (None, ""))[0]
    _cache[cache_key] = (time.monotonic() + TTL, value)
    return value


def invalidate() -> None:
    _cache.clear()


@event.listens_for(Session, "after_flush")
def _settings_flushed(session: Session, flush_context: Any) -> None:
    if any(isinstance(obj, Setting) for obj in (*session.new, *session.dirty, *session.deleted)):
        invalidate()
        session.info["settings_changed"] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _settings_settled(session: Session, *args: Any) -> None:
    if session.info.pop("settings_changed", False):
        invalidate()


def put(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value, description=str(DEFAULTS.get(key, (None, ""))[1])))
    else:
        row.value = value
