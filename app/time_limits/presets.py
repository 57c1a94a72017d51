"""The seed policies' level schemes as presets an administrator loads from the UI.

A preset is data: complaint levels (name, code, rank, major) and, per level, its chain
of time-limit rules (stage, amount, unit, warning, who is reminded, who escalates, and
the overtime fine 超时扣罚). Loading a preset activates its levels, deactivates the
others (intake then offers only the company's own scheme; old cases keep theirs),
replaces the level-specific rules of its levels and recomputes the open cases' clocks.
Loading is idempotent: loading the same preset twice leaves the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import settings
from app.access.roles import GENERAL_MANAGER, HR_MANAGER
from app.i18n import _l
from app.models import Level, SlaRule
from app.time_limits import sla


@dataclass(frozen=True)
class LevelSpec:
    code: str
    name: str
    rank: int
    major: bool = False
    description: str = ""


@dataclass(frozen=True)
class RuleSpec:
    level: str  # LevelSpec.code
    stage: str
    amount: int
    unit: str
    warn_ratio: float = 0.8
    remind_roles: Optional[str] = None
    escalate_role: Optional[str] = None
    escalate_after: int = 1
    overtime_fine: Optional[int] = None
    description: str = ""


@dataclass(frozen=True)
class Preset:
    code: str
    name: str
    source: str
    description: Any
    levels: tuple[LevelSpec, ...]
    rules: tuple[RuleSpec, ...] = field(default_factory=tuple)


def _four_level_rules() -> tuple[RuleSpec, ...]:
    # First response 30/20/10/10 minutes, second response within 24 hours, overtime fines
    # 20/30/50/80 元; the receiving department signs for a dispatched case within 10 minutes.
    rules: list[RuleSpec] = []
    for code, first, fine in (
        ("fl_unsatisfied", 30, 20),
        ("fl_very", 20, 30),
        ("fl_major", 10, 50),
        ("fl_crisis", 10, 80),
    ):
        rules += [
            RuleSpec(
                code, "first_response", first, "minutes", 0.7, "first_responder", HR_MANAGER, 10, fine, "首次响应"
            ),
            RuleSpec(
                code,
                "second_response",
                24,
                "natural_hours",
                0.8,
                "department_head",
                GENERAL_MANAGER,
                2,
                fine,
                "二次响应",
            ),
            RuleSpec(
                code, "sign_in", 10, "minutes", 0.7, "department_head", HR_MANAGER, 10, None, "签收投诉处置记录表"
            ),
            RuleSpec(
                code,
                "reply",
                2 if code in ("fl_unsatisfied", "fl_very") else 1,
                "working_days",
                0.9,
                "department_head",
                GENERAL_MANAGER,
                1,
                fine,
                "满意答复",
            ),
        ]
    return tuple(rules)


PRESETS: dict[str, Preset] = {
    p.code: p
    for p in (
        Preset(
            "property_sop",
            "物业服务投诉处理 SOP（重大/重要/轻微）",
            "物业管理处投诉处理标准作业程序",
            _l(
                "重大: reported to the general manager the same day; 重要: to the manager within 1 hour; "
                "轻微: solved within 2 working days. Overtime needs the manager's (重要) or the general "
                "manager's (重大) approval."
            ),
            (
                LevelSpec("ps_major", "重大投诉", 3, True, "涉及人身财产安全、群体性或媒体关注的投诉"),
                LevelSpec("ps_important", "重要投诉", 2, False, "影响较大、需管理处经理处理的投诉"),
                LevelSpec("ps_minor", "轻微投诉", 1, False, "一般服务瑕疵，当班即可处理"),
            ),
            (
                RuleSpec(
                    "ps_major",
                    "report_gm",
                    4,
                    "working_hours",
                    0.5,
                    HR_MANAGER,
                    GENERAL_MANAGER,
                    1,
                    None,
                    "当日上报总经理",
                ),
                RuleSpec(
                    "ps_major",
                    "reply",
                    1,
                    "working_days",
                    0.8,
                    "department_head",
                    GENERAL_MANAGER,
                    1,
                    None,
                    "重大投诉答复",
                ),
                RuleSpec(
                    "ps_important",
                    "report_leader",
                    1,
                    "natural_hours",
                    0.5,
                    HR_MANAGER,
                    GENERAL_MANAGER,
                    1,
                    None,
                    "1 小时内报经理",
                ),
                RuleSpec(
                    "ps_important",
                    "reply",
                    2,
                    "working_days",
                    0.9,
                    "department_head",
                    GENERAL_MANAGER,
                    1,
                    None,
                    "重要投诉答复",
                ),
                RuleSpec(
                    "ps_minor",
                    "reply",
                    2,
                    "working_days",
                    0.9,
                    "department_head",
                    HR_MANAGER,
                    1,
                    None,
                    "2 日内解决",
                ),
            ),
        ),
        Preset(
            "four_level",
            "四级响应（不满意/十分不满意/重大投诉/危机事件）",
            "银行网点客户投诉处置制度与流程",
            _l(
                "First response in 30/20/10/10 minutes, second response within 24 hours, sign-in of the "
                "dispatched case within 10 minutes; a missed deadline drafts an overtime fine of "
                "20/30/50/80 yuan for review."
            ),
            (
                LevelSpec("fl_unsatisfied", "不满意", 1, False, "客户表示不满"),
                LevelSpec("fl_very", "十分不满意", 2, False, "客户情绪激动、强烈不满"),
                LevelSpec("fl_major", "重大投诉", 3, True, "可能造成较大影响的投诉"),
                LevelSpec("fl_crisis", "危机事件", 4, True, "可能引发媒体、监管关注或群体性事件"),
            ),
            _four_level_rules(),
        ),
        Preset(
            "effective_communicative",
            "有效投诉与沟通性投诉（求助型/咨询型/发泄型）",
            "ETC 客户服务投诉管理办法",
            _l(
                "有效投诉 run the full chain (reply within 2 working days); 沟通性 complaints (求助型, 咨询型, "
                "发泄型) are answered within 1 working day. A mishandled 沟通性 complaint is turned into an "
                "有效 one with the “Change the complaint level” action, and gets the 有效 chain."
            ),
            (
                LevelSpec("ec_effective", "有效投诉", 2, False, "服务过错造成客户权益受损的投诉"),
                LevelSpec("ec_help", "沟通性投诉-求助型", 1, False, "客户需要帮助解决问题"),
                LevelSpec("ec_consult", "沟通性投诉-咨询型", 1, False, "客户咨询政策、流程"),
                LevelSpec("ec_vent", "沟通性投诉-发泄型", 1, False, "客户宣泄情绪，无明确诉求"),
            ),
            (
                RuleSpec("ec_effective", "investigate", 1, "working_days", 0.9, "department_head", HR_MANAGER),
                RuleSpec("ec_effective", "reply", 2, "working_days", 0.9, "department_head", GENERAL_MANAGER),
                RuleSpec("ec_help", "first_response", 2, "working_hours", 0.8, "first_responder", HR_MANAGER),
                RuleSpec("ec_help", "reply", 1, "working_days", 0.9, "department_head", HR_MANAGER),
                RuleSpec("ec_consult", "first_response", 2, "working_hours", 0.8, "first_responder", HR_MANAGER),
                RuleSpec("ec_consult", "reply", 1, "working_days", 0.9, "department_head", HR_MANAGER),
                RuleSpec("ec_vent", "first_response", 1, "working_hours", 0.8, "first_responder", HR_MANAGER),
                RuleSpec("ec_vent", "reply", 1, "working_days", 0.9, "department_head", HR_MANAGER),
            ),
        ),
    )
}


class PresetError(Exception):
    pass


def load(session: Session, code: str, now: Optional[datetime] = None, actor_id: Optional[int] = None) -> dict[str, Any]:
    """Load a preset (see the module's docstring). The caller commits. Returns what changed."""
    preset = PRESETS.get(code)
    if preset is None:
        raise PresetError(str(_l("There is no policy preset “%(code)s”.", code=code)))
    codes = {spec.code for spec in preset.levels}
    by_code = {lv.code: lv for lv in session.scalars(select(Level))}
    added = 0
    for spec in preset.levels:
        level = by_code.get(spec.code)
        if level is None:
            level = Level(code=spec.code, name=spec.name, rank=spec.rank, is_major=spec.major)
            session.add(level)
            by_code[spec.code] = level
            added += 1
        level.name, level.rank, level.is_major, level.active = spec.name, spec.rank, spec.major, True
        level.description = spec.description or level.description
    deactivated = 0
    for level in by_code.values():
        if level.code not in codes and level.active:
            level.active = False
            deactivated += 1
    session.flush()
    level_ids = [by_code[c].id for c in codes]
    session.execute(delete(SlaRule).where(SlaRule.level_id.in_(level_ids)))
    for spec in preset.rules:
        session.add(
            SlaRule(
                stage=spec.stage,
                level_id=by_code[spec.level].id,
                amount=spec.amount,
                unit=spec.unit,
                warn_ratio=spec.warn_ratio,
                remind_roles=spec.remind_roles,
                escalate_role=spec.escalate_role,
                escalate_after=spec.escalate_after,
                overtime_fine=spec.overtime_fine,
                description=spec.description or None,
                active=True,
            )
        )
    settings.put(session, "policy.preset", code)
    session.flush()
    recomputed = sla.recompute_open(session, str(_l("Policy preset loaded")), now=now, actor_id=actor_id)
    return {
        "preset": code,
        "levels_added": added,
        "levels_deactivated": deactivated,
        "rules": len(preset.rules),
        "recomputed": recomputed,
    }


# --- The default rules (服务投诉管理制度) --------------------------------------------------------

# The three main stages, for every level.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    dict(
        stage="investigate",
        amount=1,
        unit="working_days",
        remind_roles="department_head,人事行政经理",
        escalate_role=GENERAL_MANAGER,
        escalate_after=1,
        description="受理后 1 个工作日内开始调查（服务投诉管理制度）",
    ),
    dict(
        stage="reply",
        amount=2,
        unit="working_days",
        remind_roles="department_head,人事行政经理",
        escalate_role=GENERAL_MANAGER,
        escalate_after=1,
        description="受理后 2 个工作日内给客户满意答复（服务投诉管理制度）",
    ),
    dict(
        stage="follow_up",
        amount=2,
        unit="working_days",
        remind_roles=HR_MANAGER,
        escalate_role=GENERAL_MANAGER,
        escalate_after=1,
        description="答复后 2 个工作日内回访客户",
    ),
)
# The urgent-case chain, for the major and urgent levels.
URGENT_CHAIN_RULES: tuple[dict[str, Any], ...] = (
    dict(
        stage="notify_department",
        amount=3,
        unit="minutes",
        warn_ratio=0.67,
        remind_roles="人事行政经理,客服",
        escalate_role=GENERAL_MANAGER,
        escalate_after=2,
        description="重大/紧急投诉 3 分钟内通知部门",
    ),
    dict(
        stage="report_leader",
        amount=5,
        unit="minutes",
        warn_ratio=0.6,
        remind_roles=HR_MANAGER,
        escalate_role=GENERAL_MANAGER,
        escalate_after=5,
        description="重大/紧急投诉 5 分钟内上报领导",
    ),
    dict(
        stage="report_gm",
        amount=10,
        unit="minutes",
        warn_ratio=0.7,
        remind_roles=HR_MANAGER,
        escalate_role=GENERAL_MANAGER,
        escalate_after=5,
        description="重大/紧急投诉 10 分钟内报告总经理",
    ),
    dict(
        stage="written_report",
        amount=24,
        unit="natural_hours",
        warn_ratio=0.9,
        remind_roles="department_head,人事行政经理",
        escalate_role=GENERAL_MANAGER,
        escalate_after=4,
        description="重大投诉 24 小时内提交书面报告",
    ),
)


def default_rules(level_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The default rule table of 服务投诉管理制度 and the urgent-case chain."""
    rules = [dict(rule) for rule in DEFAULT_RULES]
    for code in ("major", "urgent"):
        level_id = level_ids.get(code)
        if level_id is not None:
            rules += [dict(rule, level_id=level_id) for rule in URGENT_CHAIN_RULES]
    return rules


def ensure_default_rules(session: Session) -> int:
    """Insert the default SLA rules when the rule table is empty."""
    if session.scalar(select(func.count()).select_from(SlaRule)):
        return 0
    level_ids = {code: id_ for id_, code in session.execute(select(Level.id, Level.code))}
    rows = default_rules(level_ids)
    for row in rows:
        session.add(SlaRule(**row))
    session.flush()
    return len(rows)
