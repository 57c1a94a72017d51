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
    # Who approves more time (超时需经…批准): a role; None keeps the rank rule (重要 and up: 总经理).
    extension_approver: Optional[str] = None
    # The most contacts with the customer the level allows (对应次数); after the last the case escalates.
    max_contacts: Optional[int] = None


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
    # The average the scheme promises (平均…), in the same unit; ``amount`` is then the maximum (最长).
    average_amount: Optional[int] = None


@dataclass(frozen=True)
class Preset:
    code: str
    name: str
    source: str
    description: Any
    levels: tuple[LevelSpec, ...]
    rules: tuple[RuleSpec, ...] = field(default_factory=tuple)
    # Where the numbers come from: the seed file and its clause, e.g. "seed 001 篇9 第6条".
    citation: str = ""
    # The clause's own words (Chinese original), shown beside the citation.
    clause: str = ""


def _four_level_rules() -> tuple[RuleSpec, ...]:
    # 第六条: 初次对应 30/20/10/10 分钟, 二次对应 24 小时, 超时扣罚 20/30/50/80 元;
    # 第五条(二): the 《协调工作单》 reaches the department's manager within 10 minutes (签收).
    rules: list[RuleSpec] = []
    for code, first, fine in (
        ("fl_unsatisfied", 30, 20),
        ("fl_very", 20, 30),
        ("fl_major", 10, 50),
        ("fl_crisis", 10, 80),
    ):
        rules += [
            RuleSpec(
                code, "first_response", first, "minutes", 0.7, "first_responder", HR_MANAGER, 10, fine, "初次对应"
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
                "二次对应",
            ),
            RuleSpec(
                code,
                "sign_in",
                10,
                "minutes",
                0.7,
                "department_head",
                HR_MANAGER,
                10,
                None,
                "《协调工作单》10 分钟内提交",
            ),
        ]
    return tuple(rules)


def _property_sop_rules() -> tuple[RuleSpec, ...]:
    # 4.(4)9) 投诉的处理时效 counts 日 (calendar days), not 工作日.
    head = "department_head"
    rules = [
        RuleSpec(
            "ps_major", "report_gm", 4, "working_hours", 0.5, HR_MANAGER, GENERAL_MANAGER, 1, None, "当天呈送公司总经理"
        ),
        RuleSpec("ps_major", "reply", 2, "natural_days", 0.8, head, GENERAL_MANAGER, 1, None, "2 日内给客户明确答复"),
        RuleSpec(
            "ps_major", "resolve", 10, "natural_days", 0.8, head, GENERAL_MANAGER, 1, None, "解决时间不超过 10 日"
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
            "接待后 1 小时内转呈主管经理",
        ),
        # 重要/轻微: one limit for the case's handling (处置/处理完毕), the department's reply.
        RuleSpec(
            "ps_important",
            "reply",
            3,
            "natural_days",
            0.8,
            head,
            GENERAL_MANAGER,
            1,
            None,
            "3 日内处置完毕，超时需经公司总经理批准",
        ),
        RuleSpec(
            "ps_minor",
            "reply",
            2,
            "natural_days",
            0.8,
            head,
            HR_MANAGER,
            1,
            None,
            "2 日内处理完毕，超时需经物业部经理批准",
        ),
    ]
    for level in ("ps_major", "ps_important", "ps_minor"):
        rules.append(
            RuleSpec(level, "sign_in", 10, "minutes", 0.7, head, HR_MANAGER, 10, None, "10 分钟内送达被投诉部门并签收")
        )
    for level in ("ps_important", "ps_minor"):
        # 2)① c. 有效投诉在一个月内得不到合理解决的投诉 is a 重大 complaint: raised by the deadline scan.
        rules.append(
            RuleSpec(
                level,
                "raise_level",
                1,
                "natural_months",
                0,
                HR_MANAGER,
                None,
                0,
                None,
                "有效投诉一个月内未解决升为重大投诉",
            )
        )
    return tuple(rules)


def _window_rules() -> tuple[RuleSpec, ...]:
    rules = []
    for level, days in (("ws_simple", 3), ("ws_complex", 10)):
        rules += [
            RuleSpec(
                level,
                "first_response",
                3,
                "working_days",
                0.8,
                "first_responder",
                HR_MANAGER,
                1,
                None,
                "三个工作日内作出受理答复",
            ),
            RuleSpec(
                level,
                "resolve",
                days,
                "working_days",
                0.8,
                "department_head",
                HR_MANAGER,
                1,
                None,
                f"自决定受理之日起 {days} 个工作日内办理完毕",
            ),
            RuleSpec(
                level,
                "inform",
                3,
                "working_days",
                0.8,
                "first_responder",
                HR_MANAGER,
                1,
                None,
                "办理完毕 3 个工作日内告知投诉者",
            ),
        ]
    return tuple(rules)


def _telecom_si_rules() -> tuple[RuleSpec, ...]:
    head = "department_head"
    return (
        RuleSpec("si_general", "reply", 12, "natural_hours", 0.8, head, GENERAL_MANAGER, 2, None, "12 小时内给予回复"),
        RuleSpec(
            "si_general", "resolve", 24, "natural_hours", 0.8, head, GENERAL_MANAGER, 2, None, "24 小时内给予解决"
        ),
        RuleSpec(
            "si_urgent", "reply", 24, "natural_hours", 0.8, head, GENERAL_MANAGER, 2, None, "紧急投诉 24 小时内给予回复"
        ),
        RuleSpec(
            "si_difficult",
            "reply",
            72,
            "natural_hours",
            0.8,
            head,
            GENERAL_MANAGER,
            4,
            None,
            "疑难问题最长不超过 72 小时回复",
        ),
        RuleSpec(
            "si_fault_general",
            "resolve",
            12,
            "natural_hours",
            0.8,
            head,
            GENERAL_MANAGER,
            2,
            None,
            "一般性问题 12 小时内解决",
        ),
        RuleSpec(
            "si_fault_important",
            "resolve",
            4,
            "natural_hours",
            0.75,
            head,
            GENERAL_MANAGER,
            1,
            None,
            "重要问题 4 小时内解决",
        ),
        RuleSpec(
            "si_fault_serious",
            "resolve",
            2,
            "natural_hours",
            0.75,
            head,
            GENERAL_MANAGER,
            1,
            None,
            "严重问题 2 小时内解决",
        ),
    )


def _etc_rules() -> tuple[RuleSpec, ...]:
    head = "department_head"
    return (
        RuleSpec(
            "etc_general",
            "reply",
            24,
            "natural_hours",
            0.8,
            head,
            GENERAL_MANAGER,
            2,
            None,
            "即时答复，最长不超过 24 小时",
        ),
        # Warned at the average: half-way to the maximum.
        RuleSpec(
            "etc_provincial",
            "reply",
            48,
            "natural_hours",
            0.5,
            head,
            GENERAL_MANAGER,
            2,
            None,
            "平均 24 小时答复，最长不超过 48 小时",
            24,
        ),
        RuleSpec(
            "etc_national",
            "reply",
            72,
            "natural_hours",
            2 / 3,
            head,
            GENERAL_MANAGER,
            2,
            None,
            "平均 48 小时答复，最长不超过 72 小时",
            48,
        ),
        RuleSpec(
            "etc_upgrade_fixed",
            "resolve",
            7,
            "working_days",
            0.8,
            head,
            GENERAL_MANAGER,
            1,
            None,
            "固网升级投诉 7 个工作日内完成",
        ),
        RuleSpec(
            "etc_upgrade_mobile",
            "resolve",
            3,
            "working_days",
            0.8,
            head,
            GENERAL_MANAGER,
            1,
            None,
            "移动升级投诉 3 个工作日内完成",
        ),
    )


def _three_day_rules() -> tuple[RuleSpec, ...]:
    return (
        RuleSpec(
            "td_normal",
            "resolve",
            3,
            "working_days",
            0.8,
            "department_head",
            GENERAL_MANAGER,
            1,
            None,
            "处理期限不超过 3 个工作日",
        ),
        RuleSpec(
            "td_special",
            "resolve",
            5,
            "working_days",
            0.8,
            "department_head",
            GENERAL_MANAGER,
            1,
            None,
            "特殊状况不超过 5 个工作日",
        ),
    )


PRESETS: dict[str, Preset] = {
    p.code: p
    for p in (
        Preset(
            "property_sop",
            "物业服务投诉处理 SOP（重大/重要/轻微）",
            "物业投诉接待服务 · 客户投诉处理标准作业程序",
            _l(
                "重大: to the general manager the same day, a clear answer within 2 days and resolution within "
                "10 days; 重要: to the manager within 1 hour, done within 3 days, overtime approved by the "
                "general manager; 轻微: done within 2 days, overtime approved by the manager (人事行政经理). "
                "Days are calendar days. The complaint form reaches the department within 10 minutes and is "
                "signed for; a valid complaint still unresolved after a month becomes 重大."
            ),
            (
                LevelSpec("ps_major", "重大投诉", 3, True, "涉及人身财产安全、群体性或媒体关注的投诉", GENERAL_MANAGER),
                LevelSpec(
                    "ps_important", "重要投诉", 2, False, "因管理服务工作不到位、有过失而引起的投诉", GENERAL_MANAGER
                ),
                LevelSpec("ps_minor", "轻微投诉", 1, False, "设施设备和管理水平有限造成的轻微不便", HR_MANAGER),
            ),
            _property_sop_rules(),
            "seed 000 第5篇 4.(4) 2)①c、3)②、4)、9)",
            "重大投诉包括……c.有效投诉在一个月内得不到合理解决的投诉。……客户服务中心接待员根据投诉内容10分钟内将"
            "《客户投诉意见表》发送到被投诉部门,领表人在《投诉处置记录表》签收记录。……9)投诉的处理时效。"
            "轻微投诉一般在2日内处理完毕,超时需经物业部经理批准;重要投诉一般在3日内处置完毕,超时需经公司总经理批准;"
            "重大投诉应当在2日内给投诉的客户明确答复,解决时间不宜超过10日。",
        ),
        Preset(
            "four_level",
            "四级响应（不满意/十分不满意/重大投诉/危机事件）",
            "客户投诉处理管理制度 篇4（服务公司）",
            _l(
                "First response in 30/20/10/10 minutes, second response within 24 hours, sign-in of the "
                "dispatched case within 10 minutes; a missed deadline drafts an overtime fine of "
                "20/30/50/80 yuan for review. At most 2 contacts (不满意, 十分不满意, 重大投诉): after the "
                "second the case escalates to the general manager."
            ),
            (
                LevelSpec("fl_unsatisfied", "不满意", 1, False, "客户表示不满", max_contacts=2),
                LevelSpec("fl_very", "十分不满意", 2, False, "客户情绪激动、强烈不满", max_contacts=2),
                LevelSpec("fl_major", "重大投诉", 3, True, "可能造成较大影响的投诉", max_contacts=2),
                LevelSpec("fl_crisis", "危机事件", 4, True, "可能引发媒体、监管关注或群体性事件"),
            ),
            _four_level_rules(),
            "seed 001 篇4 第五条(二)、第六条",
            "第六条各类客户投诉处理均有对应时间和次数上限规定如下。投诉级别 不满意 十分不满意 重大投诉 危机事件 "
            "对应次数 2次 2次 2次 视情形而定 初次对应状况 30分钟 20分钟 10分钟 10分钟 二次对应状况 24小时 24小时 "
            "24小时 24小时 超时扣罚 20元 30元 50元 80元",
        ),
        Preset(
            "effective_communicative",
            "有效投诉与沟通性投诉（求助型/咨询型/发泄型）",
            "物业投诉接待服务 · 投诉的分类",
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
            "seed 000 第5篇 3.(1)（时限：seed 000 第1篇 服务投诉管理制度）",
            "按投诉的性质 分为有效投诉和沟通性投诉。……沟通性投诉有求助型投诉、咨询型投诉和发泄型投诉。……"
            "沟通性的投诉若处理不当,会变成有效投诉,所以必须认真处理沟通性投诉。",
        ),
        Preset(
            "window_service",
            "窗口服务投诉（简单/复杂事项）",
            "窗口服务投诉制度",
            _l(
                "The acceptance is answered on the spot or within 3 working days; simple cases are done within "
                "3 working days of acceptance, complex ones within 10; the result is told to the complainant "
                "within 3 working days after."
            ),
            (
                LevelSpec("ws_simple", "简单投诉事项", 1, False, "事实清楚、情节简单的投诉事项"),
                LevelSpec("ws_complex", "复杂投诉事项", 2, False, "情节复杂的投诉事项"),
            ),
            _window_rules(),
            "seed 000 第4篇 三、四",
            "能够当场答复是否受理的,应当场答复;不能当场答复的,应在三个工作日内向投诉者作出受理答复。……"
            "(一)事实清楚、情节简单的投诉事项,自决定受理之日起3个工作日内办理完毕。(二)情节复杂的投诉事项,"
            "自决定受理之日起10个工作日内办理完毕。投诉事项办理完毕3个工作日内,将办理结果书面或电话告知投诉者",
        ),
        Preset(
            "telecom_si",
            "电信 SI 客户服务（一般/紧急/疑难投诉，一般/重要/严重故障）",
            "第十章 客户服务及投诉处理（湖南移动 SI）",
            _l(
                "A complaint is answered within 12 hours and resolved within 24; emergencies are answered within "
                "24 hours, difficult problems within 72 at most. Faults: general 12 hours, important 4 hours, "
                "serious 2 hours."
            ),
            (
                LevelSpec("si_general", "SI一般投诉", 1, False, "SI 可直接处理的业务问题、客户直接向 SI 发起的投诉"),
                LevelSpec("si_urgent", "SI紧急投诉", 3, True, "移动公司派单的紧急投诉"),
                LevelSpec("si_difficult", "SI疑难问题", 2, False, "移动公司派单的疑难问题"),
                LevelSpec("si_fault_general", "一般性问题（故障）", 1, False, "不影响系统正常提供业务的一般性 BUG"),
                LevelSpec("si_fault_important", "重要问题（故障）", 2, False, "影响用户正常业务使用的系统 BUG"),
                LevelSpec("si_fault_serious", "严重问题（故障）", 3, True, "系统停止了正常的对外服务"),
            ),
            _telecom_si_rules(),
            "seed 000 第16篇 (1) a)–c)、(2)",
            "a)……紧急投诉24小时内给予回复,疑难问题最长不得超过72小时给予回复; b)属于SI可直接处理的业务问题:"
            "12小时内给予回复,24小时内给予解决; c)客户直接向SI发起的投诉:SI应于12小时内给予回复,24小时内给予解决。"
            "……一般性问题……在发现问题12小时内解决,重要问题……在4小时内解决,严重问题……在2小时内解决",
        ),
        Preset(
            "etc_promise",
            "ETC/电信对外承诺时限（一般/省级/全国级，升级投诉）",
            "售后服务投诉分析 第一篇 2.4.1、3.4",
            _l(
                "General complaints: answered at once, at most 24 hours; provincial: 24 hours on average, 48 at "
                "most; national: 48 hours on average, 72 at most. Upgraded complaints are done within 7 working "
                "days (fixed line) or 3 (mobile)."
            ),
            (
                LevelSpec(
                    "etc_general", "一般投诉（即时答复）", 1, False, "能够在服务渠道或省级投诉处理中心妥善处理的投诉"
                ),
                LevelSpec("etc_provincial", "省级投诉", 2, False, "在归属地分公司得到妥善处理的投诉"),
                LevelSpec("etc_national", "全国级投诉", 3, False, "需总部或其他省分公司协调处理的投诉、跨省投诉"),
                LevelSpec("etc_upgrade_fixed", "升级投诉（固网）", 4, True, "集团受理、派单至省的固网业务升级投诉"),
                LevelSpec("etc_upgrade_mobile", "升级投诉（移动）", 4, True, "集团受理、派单至省的移动业务升级投诉"),
            ),
            _etc_rules(),
            "seed 003 第一篇 2.4.1、3.4",
            "对外承诺的内部要求时限 一般投诉:即时答复,最长不超过24小时; 省级投诉:平均24小时答复,最长不超过48小时; "
            "全国级投诉:平均48小时答复,最长不超过72小时。……3.4 升级投诉处理时限 固网业务处理过程需在7个工作日内完成。"
            " 移动业务处理过程需3个工作日。",
        ),
        Preset(
            "three_working_days",
            "3 个工作日处理（特殊状况 5 个工作日）",
            "客户投诉处理管理制度 篇9",
            _l("A complaint is dealt with within 3 working days; in special circumstances within 5."),
            (
                LevelSpec("td_normal", "一般状况", 1, False, "按 3 个工作日期限处理"),
                LevelSpec("td_special", "特殊状况", 2, False, "特殊状况，期限不超过 5 个工作日"),
            ),
            _three_day_rules(),
            "seed 001 篇9 6、投诉处理期限要求",
            "客户投诉处理期限不能超过3个工作日,特殊状况不能超过5个工作日。",
        ),
    )
}


class PresetError(Exception):
    pass


def _free_name(by_code: dict[str, Level], spec: LevelSpec, preset: Preset) -> str:
    """The level's seed name, or with its scheme added when another scheme's level has it
    (物业 SOP and 四级响应 both say 重大投诉; level names are unique)."""
    taken = {lv.name for c, lv in by_code.items() if c != spec.code}
    return spec.name if spec.name not in taken else f"{spec.name}（{preset.name.split('（')[0]}）"


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
        name = _free_name(by_code, spec, preset)
        if level is None:
            level = Level(code=spec.code, name=name, rank=spec.rank, is_major=spec.major)
            session.add(level)
            by_code[spec.code] = level
            added += 1
        level.name, level.rank, level.is_major, level.active = name, spec.rank, spec.major, True
        level.description = spec.description or level.description
        level.extension_approver, level.max_contacts = spec.extension_approver, spec.max_contacts
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
                average_amount=spec.average_amount,
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
