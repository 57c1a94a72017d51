"""Default reference data from the policy texts, loaded into any installation.

Idempotent: rows are matched by their natural key (code, scenario) and only missing
ones are inserted, so administrators' edits are never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.discipline.overtime import OVERTIME_CLAUSE
from app.models import Category, Channel, Level, PenaltyRule, PhraseKind, ReplyScript, Sanction, ServicePhrase
from app.time_limits import presets

CHANNELS = [
    ("电话", "phone", False),
    ("邮箱", "email", False),
    ("来访", "visit", False),
    ("来函", "letter", False),
    ("网站", "web", False),
    ("微信", "wechat", False),
    ("监管转办 12345", "regulator_12345", True),
    ("监管转办 12315", "regulator_12315", True),
]

# 服务投诉管理制度: 服务态度, 专业素质, 服务效率, 其他; plus the after-sales kinds of 003/004.
CATEGORIES = [
    ("服务态度", "attitude", "接待冷淡、言语不当、推诿刁难等服务态度问题"),
    ("专业素质", "competence", "业务不熟练、解答错误、操作不规范"),
    ("服务效率", "efficiency", "办理拖延、等待时间长、未按时处理"),
    ("设备故障", "equipment", "设施设备损坏、维修不及时"),
    ("产品质量", "quality", "产品或工程质量缺陷"),
    ("收费", "fees", "收费标准、账单、退费争议"),
    ("其他", "other", "其他类型的投诉"),
]

LEVELS = [
    ("一般", "normal", 1, False, "轻微投诉，按正常时限处理"),
    ("重要", "important", 2, False, "影响较大，需部门经理关注"),
    ("重大", "major", 3, True, "重大投诉，3/5/10 分钟通知与上报链，24 小时内书面报告"),
    ("紧急", "urgent", 4, True, "紧急事件，立即通知并上报总经理"),
]

# 投诉处置制度与流程 (bank lobby): the six scenarios with action, standard reply and tone.
REPLY_SCRIPTS = [
    (
        "投诉预兆",
        "巡视中发现个别客户表情沉郁，有明显抱怨倾向",
        "寻找借口，与客户搭讪，进行引导和解释",
        "“您好，请问我能帮您什么？”",
        "语气亲切，语调轻缓，面带微笑",
    ),
    (
        "柜台争吵",
        "客户与柜员发生争议，争吵声音较大",
        "较快步速赶到柜台前，询问情况",
        "“您好，我是大堂经理，请问有什么可以帮到您？”",
        "语气坚决，语调稍高，面带微笑",
    ),
    (
        "客户现场抱怨",
        "客户在大厅内喧闹抱怨，并尽力引起其他顾客声援",
        "正面朝向客户，并将客户隔离",
        "“您好，我可以帮您解决这个问题，请跟我来。”",
        "态度诚恳，语调适中，配合引导手势",
    ),
    (
        "客户投诉服务不好",
        "客户在大厅或柜台前，对工作人员有不满情绪",
        "第一时间关注客户反应，了解事由经过，如有必要，将客户引领至VIP室优先办理，或客户经理室安抚情绪、解决投诉",
        "“我马上安排您优先办理。”“请您随我来，我马上为您解决……”“给您带来了不便，很抱歉。”",
        "态度诚恳，语调轻缓，语速稍慢，音量稍低",
    ),
    (
        "客户投诉设备故障",
        "客户在使用自助设备时出现故障，提出投诉",
        "尽快赶到现场，及时为客户排除故障，并请客户到休息区休息，送上茶水",
        "“非常抱歉我们的设备使用故障给您带来不便，我们马上修理，请您先在休息区休息一下。”",
        "态度诚恳，语调轻缓，语速稍慢，音量稍低",
    ),
    (
        "客户投诉跟踪与反馈",
        "客户在提出投诉后，对客户的反馈与跟踪",
        "面带亲切微笑，目光柔和，注视客户，身体前倾，用纸笔记录客户意见",
        "“我们会在×小时以内与您联系。”“您对我们的解决方式满意吗？”“感谢您对我们提出的宝贵意见。”",
        "态度真诚，语调轻柔，语速平缓",
    ),
]


# 服务投诉管理制度 第六条: five tiers, one rule per lettered item.
# (tier, item, description, sanction, fine_min, fine_max, points, withhold pay, circular, legal referral)
_TIERS = {
    1: ("fine", 30, 100, 0, False, False, False),
    2: ("warning", 200, 200, 5, False, True, False),
    3: ("reprimand", 300, 300, 10, False, True, False),
    4: ("major_demerit", 1000, 1000, 0, True, True, False),
    # Tier 5 (辞退/开除) says nothing of a 通报 in the seed; tiers 2–4 say "并通报全公司".
    5: ("dismissal", 0, 0, 0, False, False, True),
}
_ITEMS = [
    (1, "A", "服务态度不佳，服务效率低下"),
    (1, "B", "对业务工作不熟悉，无法提供专业服务"),
    (1, "C", "不尊重客户，讥笑、议论客户，在客户面前指手画脚、交头接耳"),
    (2, "A", "接待客户态度冷淡，擅自减少服务流程"),
    (2, "B", "利用职务之便，故意刁难客户"),
    (2, "C", "不尊重客户，与客户发生争执"),
    (3, "A", "对投诉事实拒不承认"),
    (3, "B", "主管管理不力，不能有效监督服务工作及解决投诉"),
    (4, "A", "接到投诉或预见可能发生的投诉，隐瞒不报"),
    (4, "B", "不配合解决客户投诉，延误处理时机，使投诉进一步恶化"),
    (5, "A", "辱骂、殴打客户"),
    (5, "B", "对投诉客户进行打击报复"),
    (5, "C", "因未能妥善处理客户投诉，对公司或发展商声誉造成重大损失"),
    (5, "D", "对客户给予不实之承诺，导致公司或发展商受损失"),
]
PENALTY_RULES = [(tier, f"第六条第{tier}款{item}", description, *_TIERS[tier]) for tier, item, description in _ITEMS]
# 超时扣罚: the rule an overdue clock's fine is drafted under (amount from the time-limit rule).
PENALTY_RULES.append(
    (
        1,
        OVERTIME_CLAUSE,
        "未在规定时限内完成投诉处理环节（超时扣罚，金额见时限规则）",
        "fine",
        0,
        500,
        0,
        False,
        False,
        False,
    )
)

# 事故等级划分及扣分标准 (seed 004): points with chained liability (连带扣分) from the
# department head, the direct superior and the superior's superior.
# (clause, description, responsible, head, superior, superior's superior)
INCIDENT_RULES = [
    (
        "事故标准一级",
        "一级事故（最严重）：部门责任人扣15分、负责人扣10分，直接上级连带扣8分，上上级连带扣5分",
        15,
        10,
        8,
        5,
    ),
    (
        "事故标准二级",
        "二级事故（中等）：部门责任人扣10分、负责人扣8分，直接上级连带扣5分，上上级连带扣3分",
        10,
        8,
        5,
        3,
    ),
    ("事故标准三级", "三级事故（轻微）：部门责任人扣5分、负责人扣3分，直接上级连带扣2分，上上级不连带扣分", 5, 3, 2, 0),
    (
        "质量事故（超出内控标准）",
        "经验证投诉产品操作性能差且产品指标不在内控标准范围内：直接责任人扣10分、部门负责人扣5分、直接上级连带扣3分、上上级连带扣2分",
        10,
        5,
        3,
        2,
    ),
    (
        "质量事故（同批次两家投诉）",
        "产品符合内控标准但同一批次在两家终端用户产生类似投诉：直接责任人扣5分、部门负责人扣3分、直接上级连带扣2分、上上级不连带扣分",
        5,
        3,
        2,
        0,
    ),
    (
        "质量事故（异物）",
        "产品内部出现异物或因异物对客户造成损失：直接责任人扣10分、部门负责人扣5分、直接上级连带扣2分、上上级不连带扣分",
        10,
        5,
        2,
        0,
    ),
    (
        "质量事故（斤称短缺）",
        "斤称短缺造成的投诉：直接责任人扣10分、部门负责人扣5分、直接上级连带扣2分、上上级不连带扣分",
        10,
        5,
        2,
        0,
    ),
]


# 顾客投诉服务标准 (seed 000, articles 7 and 8): 服务忌语, 29 items, as listed.
# (number, phrase, category, suggested civil alternative, policy wording when the phrase was cut from it)
_INSULT = "带有蔑视性、侮辱性的称谓,如:老头、老太婆、神经病等等"
FORBIDDEN_PHRASES = [
    (1, "老头、老太婆、神经病", "蔑视性、侮辱性称谓", "因人称呼：老伯、大妈、师傅、先生、女士", _INSULT),
    (2, "喂,干什么", "不礼貌的招呼", "您好，请问有什么可以帮您？", None),
    (3, "喊什么,等一会儿", "不耐烦", "请稍等，我马上为您办理。", None),
    (4, "少啰嗦,快点讲", "不耐烦", "请不要着急，您慢慢讲，我听着。", None),
    (5, "你管不着(你少管闲事)", "顶撞客户", "请问有什么需要我为您解释的吗？", None),
    (6, "喂,叫你呢", "不礼貌的招呼", "您好，请问……", None),
    (7, "不关我的事", "推诿", "我帮您联系负责的同事，请稍等。", None),
    (8, "急什么,还没上班呢", "不耐烦", "请稍等，我们马上开始为您办理。", None),
    (9, "找别人去,我管不着", "推诿", "我帮您联系负责的同事来处理。", None),
    (10, "墙上贴着,自己看", "推诿", "请您先看一下须知，有不懂的地方您尽管问。", None),
    (11, "就你急,怎么不早来", "指责客户", "请不要着急，我会尽量帮助您。", None),
    (12, "给你讲过几遍了,怎么还拎不清", "指责客户", "没关系，我再为您详细说明一遍。", None),
    (13, "急什么,没看我正忙着吗?", "不耐烦", "对不起，请稍等，我马上为您服务。", None),
    (14, "你能怎么样(你看着办)", "顶撞客户", "请放心，我们会认真处理您的问题。", None),
    (15, "没看快下班了吗,早干什么了", "指责客户", "请不要着急，我为您办好再下班。", None),
    (16, "烦不烦", "不耐烦", "请问还有什么需要我帮忙的吗？", None),
    (17, "这么晚了明天来", "推诿", "很抱歉让您久等了，我尽快为您办理。", None),
    (18, "你问我,我问谁?", "推诿", "这个问题我帮您问清楚后答复您。", None),
    (19, "这事我管不了,你去找我们领导。", "推诿", "我会把您的情况报告负责人，并在约定时间内答复您。", None),
    (20, "你这人是不是有毛病?", "蔑视性、侮辱性称谓", "请问您还有什么需求，请告诉我。", None),
    (21, "你这人真啰嗦。", "不耐烦", "我理解您的心情，请您慢慢讲。", None),
    (
        22,
        "你找谁,他不在,跟你说过了,他不在,你耳聋啦?",
        "蔑视性、侮辱性称谓",
        "对不起，他暂时不在，请您留下联系方式，我请他尽快回复您。",
        None,
    ),
    (23, "有意见,找领导。", "顶撞客户", "请留下宝贵意见，我们会认真改进。", None),
    (24, "我就这态度。有本事你告去", "顶撞客户", "对不起，是我态度不好，请您原谅。", None),
    (25, "叫什么,等一下。", "不耐烦", "请稍等，我马上为您服务。", None),
    (26, "我就这种态度,怎么啦?", "顶撞客户", "对不起，请您原谅。", None),
    (27, "不是我管,我不晓得。", "推诿", "我帮您了解清楚后答复您。", None),
    (28, "不知道,你问我,我问谁。", "推诿", "这个问题我帮您问清楚后答复您。", None),
]
# Compound words in which a forbidden phrase is harmless (a product name, a medical field);
# administrators extend them beside each phrase.
FORBIDDEN_EXCEPTIONS = {1: "老头乐、神经病学、神经病学科"}
FORBIDDEN_GUIDELINE = (29, "对待业主(使用人)不应用任何使其不知所措的语言")

# 文明用语, 32 items, as listed (the typos 很报歉, 等侯, 保贵 are the policy's own).
_ADDRESS = "因人称呼(如老伯、大妈、同志、师傅、女士、小姐、小朋友)"
CIVIL_PHRASES = [
    (1, "老伯、大妈、同志、师傅、女士、小姐、小朋友", "称呼", _ADDRESS),
    (2, "您好", "问候", None),
    (3, "请进、请坐、请讲、请问", "请求", None),
    (4, "请稍等", "请求", None),
    (5, "谢谢", "致谢", None),
    (6, "对不起", "致歉", None),
    (7, "请原谅", "致歉", None),
    (8, "很报歉", "致歉", None),
    (9, "没关系", "安抚", None),
    (10, "不客气", "致谢", None),
    (11, "请您排队等侯", "请求", None),
    (12, "请不要着急", "安抚", None),
    (13, "很高兴能为您服务", "服务", None),
    (14, "请您先看一下须知", "请求", None),
    (15, "您有什么愿望,请告诉我", "服务", None),
    (16, "对不起,请注意保持环境(室内)卫生(请您不要吸烟)", "请求", None),
    (17, "请把您的需求告诉我", "服务", None),
    (18, "我能为您提供什么帮助吗?", "服务", None),
    (19, "我理解您的心情", "安抚", None),
    (20, "我会尽量帮助您", "服务", None),
    (21, "请您按规定填写表格", "请求", None),
    (22, "有不懂的地方您尽管问", "服务", None),
    (23, "很抱歉,让您久等了", "致歉", None),
    (24, "不用谢", "致谢", None),
    (25, "请放心", "安抚", None),
    (26, "我们帮您办", "服务", None),
    (27, "请留下保贵意见", "请求", None),
    (28, "您慢走", "送别", None),
    (29, "请走好,再见", "送别", None),
    (30, "为您服务是我应该做的!", "服务", None),
    (31, "您的需求就是我的职责", "服务", None),
]
CIVIL_GUIDELINE = (32, "对待业主(使用人)语言应该表达恰当、声调温和、亲切自然")


def _phrase_rows() -> list[dict[str, Any]]:
    """Every row of both lists, guidelines included, in the policy's order."""
    rows: list[dict[str, Any]] = []
    for number, phrase, category, suggestion, note in FORBIDDEN_PHRASES:
        rows.append(
            dict(
                kind=PhraseKind.forbidden,
                number=number,
                phrase=phrase,
                category=category,
                suggestion=suggestion,
                note=note,
                exceptions=FORBIDDEN_EXCEPTIONS.get(number),
            )
        )
    rows.append(
        dict(kind=PhraseKind.forbidden, number=FORBIDDEN_GUIDELINE[0], phrase=FORBIDDEN_GUIDELINE[1], is_guideline=True)
    )
    for number, phrase, category, note in CIVIL_PHRASES:
        rows.append(dict(kind=PhraseKind.civil, number=number, phrase=phrase, category=category, note=note))
    rows.append(dict(kind=PhraseKind.civil, number=CIVIL_GUIDELINE[0], phrase=CIVIL_GUIDELINE[1], is_guideline=True))
    return rows


def seed_phrases(session: Session) -> int:
    """Insert the policy's phrase-list items that are missing (matched by kind and item number)."""
    existing = set(session.execute(select(ServicePhrase.kind, ServicePhrase.number)).all())
    existing = {(getattr(k, "value", k), n) for k, n in existing}
    added = 0
    for row in _phrase_rows():
        if (row["kind"].value, row["number"]) in existing:
            continue
        session.add(ServicePhrase(sort=row["number"], **row))
        added += 1
    return added


def _missing(session: Session, model: type, key: str, values: Iterable[Any]) -> set[Any]:
    existing = set(session.scalars(select(getattr(model, key))))
    return {v for v in values if v not in existing}


def seed_defaults(session: Session) -> dict[str, int]:
    """Insert the default channels, categories, levels and reply scripts that are missing."""
    added = {
        "channel": _seed_channels(session),
        "category": _seed_categories(session),
        "level": _seed_levels(session),
        "reply_script": _seed_reply_scripts(session),
        "penalty_rule": _seed_penalty_rules(session),
        "service_phrase": seed_phrases(session),
    }
    session.flush()
    added["sla_rule"] = presets.ensure_default_rules(session)
    return added


def _seed_channels(session: Session) -> int:
    missing = _missing(session, Channel, "code", [c[1] for c in CHANNELS])
    for i, (name, code, regulator) in enumerate(CHANNELS):
        if code in missing:
            session.add(Channel(name=name, code=code, is_regulator=regulator, sort=i))
    return len(missing)


def _seed_categories(session: Session) -> int:
    missing = _missing(session, Category, "code", [c[1] for c in CATEGORIES])
    for i, (name, code, description) in enumerate(CATEGORIES):
        if code in missing:
            session.add(Category(name=name, code=code, description=description, sort=i))
    return len(missing)


def _seed_levels(session: Session) -> int:
    missing = _missing(session, Level, "code", [c[1] for c in LEVELS])
    for name, code, rank, major, description in LEVELS:
        if code in missing:
            session.add(Level(name=name, code=code, rank=rank, is_major=major, description=description))
    return len(missing)


def _seed_reply_scripts(session: Session) -> int:
    missing = _missing(session, ReplyScript, "scenario", [r[0] for r in REPLY_SCRIPTS])
    for i, (scenario, description, action, reply, tone) in enumerate(REPLY_SCRIPTS):
        if scenario in missing:
            session.add(
                ReplyScript(
                    scenario=scenario,
                    description=description,
                    action=action,
                    standard_reply=reply,
                    tone=tone,
                    sort=i,
                )
            )
    return len(missing)


def _seed_penalty_rules(session: Session) -> int:
    """The rules of 第六条 (tiers 1–5), then the incident rules with their chained points."""
    missing = _missing(session, PenaltyRule, "clause", [r[1] for r in PENALTY_RULES])
    for i, (tier, clause, description, sanction, fine_min, fine_max, points, withhold, circular, legal) in enumerate(
        PENALTY_RULES
    ):
        if clause in missing:
            session.add(
                PenaltyRule(
                    tier=tier,
                    clause=clause,
                    description=description,
                    sanction=Sanction(sanction),
                    fine_min=fine_min,
                    fine_max=fine_max,
                    score_deduction=points,
                    withhold_performance_pay=withhold,
                    circular_required=circular,
                    legal_referral=legal,
                    sort=i,
                )
            )
    incidents = _missing(session, PenaltyRule, "clause", [r[0] for r in INCIDENT_RULES])
    for i, (clause, description, points, head, superior, superior2) in enumerate(INCIDENT_RULES):
        if clause in incidents:
            session.add(
                PenaltyRule(
                    tier=1,
                    clause=clause,
                    description=description,
                    sanction=Sanction.fine,
                    fine_min=0,
                    fine_max=0,
                    score_deduction=points,
                    chain_head_points=head,
                    chain_superior_points=superior,
                    chain_superior2_points=superior2,
                    sort=len(PENALTY_RULES) + i,
                )
            )
    return len(missing) + len(incidents)
