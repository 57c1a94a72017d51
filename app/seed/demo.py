"""Demo data: a property-management company with its departments, users and cases.

Loaded only into an empty database and only in demo mode (``make run`` turns it on).
Cases are driven through the real lifecycle (``services.take_transition``) with
their own clock, so every status, event and deadline is one the portal could have
produced itself.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.access import roles, scope
from app.access.roles import GENERAL_MANAGER, HR_MANAGER
from app.complaints import intake
from app.complaints import steps as services
from app.discipline import cases as discipline
from app.models import (
    Category,
    Channel,
    Commendation,
    Complaint,
    Department,
    DepartmentMeasure,
    Level,
    Notification,
    PenaltyRule,
    Staff,
    Unit,
    UnitKind,
)
from app.quality import assessment, reports, stats
from app.quality.analytics import period_containing
from app.time_limits import sla
from app.timeutil import LOCAL_TZ, UTC, utcnow

log = logging.getLogger(__name__)

# (name, code, head employee, head login or None, [(employee, position)])
DEPARTMENTS = [
    (
        "客服部",
        "KF",
        ("林晓雯", "客服部经理"),
        "zhuguan_c",
        [("王小红", "客服专员"), ("陈静", "客服专员"), ("赵丽", "前台接待")],
    ),
    (
        "工程部",
        "GC",
        ("张建国", "工程部经理"),
        "zhuguan_a",
        [("刘强", "电梯维保工"), ("孙海", "水电工"), ("周斌", "维修工")],
    ),
    (
        "保安部",
        "BA",
        ("李卫东", "保安部经理"),
        "zhuguan_b",
        [("吴刚", "门岗保安"), ("郑伟", "巡逻保安"), ("冯磊", "监控员")],
    ),
    (
        "保洁部",
        "BJ",
        ("何秀英", "保洁部主管"),
        "zhuguan_d",
        [("马桂芳", "保洁员"), ("朱玉兰", "保洁员"), ("胡春梅", "绿化工")],
    ),
    ("财务部", "CW", ("高明", "财务部经理"), "zhuguan_e", [("罗佳", "收费员"), ("梁晨", "会计")]),
    ("人事行政部", "RX", ("宋雅琴", HR_MANAGER), None, [("唐宁", "行政专员")]),
    ("总经理办公室", "ZJ", ("钱志远", GENERAL_MANAGER), None, [("许婷", "总经理助理")]),
]

# The company unit holding the departments above (the head office), headed by the general manager.
COMPANY_UNIT = ("阳光物业服务有限公司", "HQ", "钱志远")
# A 网点 below the company with one department, loaded with the full demo (``demo load``):
# (unit name, unit code, department name, department code, head, head position, login, [(employee, position)])
OUTLET = ("滨江一号网点", "WD01", "滨江一号服务中心", "WD1", "邓丽华", "网点主任", "wangdian", [("蒋涛", "客服专员")])

# login, staff name (must exist above), role
USERS = [
    ("kefu", "王小红", roles.CUSTOMER_SERVICE),
    ("zhuguan_a", "张建国", roles.DEPARTMENT_HEAD),
    ("zhuguan_b", "李卫东", roles.DEPARTMENT_HEAD),
    ("zhuguan_c", "林晓雯", roles.DEPARTMENT_HEAD),
    ("zhuguan_d", "何秀英", roles.DEPARTMENT_HEAD),
    ("zhuguan_e", "高明", roles.DEPARTMENT_HEAD),
    ("renshi", "宋雅琴", roles.HR_MANAGER),
    ("zongjingli", "钱志远", roles.GENERAL_MANAGER),
]

ESTATES = ["阳光花园", "翠湖苑", "金桂园", "锦绣华庭", "滨江一号"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "志强",
    "海燕",
    "晓东",
    "雪梅",
    "国庆",
    "文博",
    "子涵",
]

# department code -> [(category code, content, demand)]
STORIES: dict[str, list[tuple[str, str, str]]] = {
    "GC": [
        (
            "equipment",
            "{estate}{building}号楼电梯连续{n}天停运，业主多次报修，维修人员迟迟不到场，老人上下楼十分困难。",
            "要求立即修复电梯并说明故障原因",
        ),
        (
            "efficiency",
            "{building}号楼{unit}室卫生间漏水报修已{n}天，工程部一直说排期，楼下住户天花板已经发霉。",
            "要求三日内上门维修并赔偿楼下损失",
        ),
        ("quality", "小区地下车库照明灯有{n}盏不亮，夜间停车存在安全隐患，此前反映过仍未处理。", "要求尽快更换照明灯"),
        ("attitude", "维修师傅上门时态度敷衍，说“这种问题自己处理就行”，没有检查就离开了。", "要求更换维修人员并道歉"),
        ("competence", "水电工更换水表后家中水压明显变小，询问原因时解释前后矛盾。", "要求重新检查并给出书面说明"),
    ],
    "BA": [
        ("attitude", "{estate}东门保安对来访亲友态度恶劣，言语粗鲁，还拒绝登记后放行。", "要求保安当面道歉并加强培训"),
        ("efficiency", "夜间小区内有人大声喧哗至凌晨，拨打值班电话{n}次均无人前来处理。", "要求夜间巡逻到位"),
        ("competence", "外卖和快递人员可随意进入{building}号楼，门禁形同虚设，业主担心安全。", "要求加强门禁管理"),
        ("attitude", "保安在停车场指挥时与业主发生争吵，并用手推搡业主。", "要求严肃处理涉事保安"),
    ],
    "BJ": [
        ("efficiency", "{building}号楼楼道垃圾{n}天未清运，气味难闻，招来蚊虫。", "要求每日按时清运"),
        ("quality", "小区绿化带修剪后枝叶堆放在人行道上{n}天无人清理，影响通行。", "要求尽快清理"),
        ("attitude", "保洁员在电梯内大声斥责业主孩子，言语不当。", "要求保洁员道歉"),
        ("efficiency", "地下车库积水清扫不及时，业主车辆被溅污。", "要求及时清扫并改进排水"),
    ],
    "CW": [
        ("fees", "物业费账单重复收取停车费{amt}元，多次到前台反映仍未退还。", "要求退还多收费用"),
        ("fees", "水电公摊费用比上月高出{n}倍，收费员无法说明计算方法。", "要求公示公摊明细"),
        ("attitude", "到财务窗口缴费时收费员一直看手机，催促后才不耐烦地办理。", "要求改进服务态度"),
        ("competence", "开具的物业费发票抬头错误，重开需等待{n}天。", "要求当天重开发票"),
    ],
    "KF": [
        ("competence", "客服人员对装修审批流程的解答前后不一致，导致业主白跑{n}趟。", "要求明确告知流程并书面答复"),
        ("attitude", "拨打客服电话反映问题，接线员语气冷淡，没听完就挂断电话。", "要求客服道歉"),
        ("efficiency", "报事后客服承诺当天回电，但{n}天过去仍无任何回复。", "要求尽快回复处理进度"),
        ("other", "小区公告栏信息长期不更新，停水停电通知未提前告知。", "要求提前发布通知"),
    ],
}

# Where open demo cases stop.
OPEN_STOPS = [
    "registered",
    "judged",
    "dispatched",
    "investigating",
    "planned",
    "replied",
    "fed_back",
    "followed_up",
]


@dataclass
class Cast:
    """The demo's people, as scope principals, for acting through the lifecycle."""

    hr: scope.Principal
    heads: dict[int, scope.Principal]  # department id -> head
    kefu: scope.Principal
    gm: Optional[scope.Principal] = None


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Department)) and not session.scalar(
        select(func.count()).select_from(Complaint)
    )


def load(
    session: Session, complaints: int = 300, seed: int = 20261122, now: Optional[datetime] = None
) -> dict[str, Any]:
    """Load the demo company into an empty database; refuse otherwise."""
    if not is_empty(session):
        return {"loaded": False, "reason": "database not empty"}
    now = now or utcnow()
    rng = random.Random(seed)
    cast = create_organisation(session, current_app.config["DEMO_PASSWORD"])
    create_outlet(session, current_app.config["DEMO_PASSWORD"])
    session.commit()
    created = create_complaints(session, cast, complaints, rng, now)
    penalties_created = create_discipline(session, cast, rng, now)
    quality = create_quality(session, cast, now)

    stats.refresh(session, limit=100000, now=now)
    # Old demo messages are read already; the inbox shows what happened lately.
    session.execute(update(Notification).where(Notification.created_at < now - timedelta(days=2)).values(read_at=now))
    session.commit()
    return {
        "loaded": True,
        "departments": len(DEPARTMENTS) + 1,
        "users": len(USERS) + 2,
        "complaints": created,
        "penalties": penalties_created,
        **quality,
    }


def create_organisation(session: Session, password: str) -> Cast:
    """Departments, their heads and staff, and the demo login users."""
    sm = current_app.appbuilder.sm
    staff_by_name: dict[str, Staff] = {}
    departments: dict[str, Department] = {}
    number = 1000
    for sort, (name, code, (head_name, head_position), _login, members) in enumerate(DEPARTMENTS):
        department = Department(name=name, code=code, sort=sort)
        session.add(department)
        departments[code] = department
        for person, position in [(head_name, head_position), *members]:
            number += 1
            staff = Staff(employee_no=f"E{number}", name=person, department=department, position=position)
            session.add(staff)
            staff_by_name[person] = staff
        session.flush()
        department.head = staff_by_name[head_name]
    session.flush()
    company_name, company_code, company_head = COMPANY_UNIT
    company = Unit(name=company_name, code=company_code, kind=UnitKind.company, head=staff_by_name[company_head])
    session.add(company)
    for department in departments.values():
        department.unit = company
    session.flush()

    hashed = generate_password_hash(password, method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"))
    admin_role = sm.find_role(roles.ADMIN)
    sm.add_user("admin", "系统管理员", "", "admin@example.com", admin_role, hashed_password=hashed)
    principals: dict[str, scope.Principal] = {}
    for login, person, role_name in USERS:
        staff = staff_by_name[person]
        user = sm.add_user(login, person, "", f"{login}@example.com", sm.find_role(role_name), hashed_password=hashed)
        staff.user_id = user.id
        session.flush()
        departments_headed = frozenset(d.id for d in departments.values() if d.head_id == staff.id) or frozenset(
            {staff.department_id}
        )
        principals[login] = scope.Principal(
            user_id=user.id,
            roles=frozenset({role_name}),
            staff_id=staff.id,
            department_ids=departments_headed
            if role_name == roles.DEPARTMENT_HEAD
            else frozenset({staff.department_id}),
        )
    # Every department's supervising leader (分管领导) is the general manager.
    for department in departments.values():
        department.supervisor_id = principals["zongjingli"].user_id
    session.flush()
    heads = {}
    for code, department in departments.items():
        login = next((d[3] for d in DEPARTMENTS if d[1] == code), None)
        if login:
            heads[department.id] = principals[login]
    return Cast(hr=principals["renshi"], heads=heads, kefu=principals["kefu"], gm=principals["zongjingli"])


def create_outlet(session: Session, password: str) -> Unit:
    """A 网点 under the company with one department, whose head heads both (login ``wangdian``)."""
    sm = current_app.appbuilder.sm
    unit_name, unit_code, name, code, head_name, head_position, login, members = OUTLET
    company = session.scalars(select(Unit).where(Unit.kind == UnitKind.company)).first()
    outlet = Unit(name=unit_name, code=unit_code, kind=UnitKind.outlet, parent=company, sort=1)
    gm = sm.find_user(username="zongjingli")
    department = Department(
        name=name, code=code, sort=len(DEPARTMENTS), unit=outlet, supervisor_id=gm.id if gm is not None else None
    )
    session.add_all([outlet, department])
    number = 2000
    people = []
    for person, position in [(head_name, head_position), *members]:
        number += 1
        people.append(Staff(employee_no=f"E{number}", name=person, department=department, position=position))
    session.add_all(people)
    session.flush()
    department.head = outlet.head = people[0]
    hashed = generate_password_hash(password, method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"))
    user = sm.add_user(
        login, head_name, "", f"{login}@example.com", sm.find_role(roles.DEPARTMENT_HEAD), hashed_password=hashed
    )
    people[0].user_id = user.id
    session.flush()
    return outlet


def _customer_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.85:
        return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    return "0371-" + rng.choice("2345678") + "".join(rng.choice("0123456789") for _ in range(7))


def _office_instant(rng: random.Random, day: datetime) -> datetime:
    local = day.astimezone(LOCAL_TZ).replace(
        hour=rng.choice([9, 10, 11, 14, 15, 16, 17]), minute=rng.randrange(60), second=0, microsecond=0
    )
    return local.astimezone(UTC)


def create_complaints(session: Session, cast: Cast, count: int, rng: random.Random, now: datetime) -> int:
    """Register ``count`` demo cases over the last six months and drive each as far as its age says."""
    channels, categories, levels, departments, staff_by_department = _intake_reference(session)
    customers: list[tuple[str, str]] = []
    start = now - timedelta(days=182)
    created = 0
    for _ in range(count):
        received, age_days = _draw_received(rng, now, start)
        code, category_code, text, demand, estate = _draw_story(rng)
        department = departments[code]
        name, phone = _draw_customer(rng, customers)
        subjects = [p for p in staff_by_department[department.id] if p.id != department.head_id]
        staff = [rng.choice(subjects)] if category_code == "attitude" and subjects else []
        level = levels[0] if rng.random() < 0.62 else levels[1] if rng.random() < 0.7 else rng.choice(levels[2:])
        registrar = cast.kefu if rng.random() < 0.8 else cast.hr
        registered_at = received + timedelta(minutes=1 if level.is_major else rng.randint(2, 50))
        channel = rng.choice(channels)
        data = {
            **_channel_fields(rng, received, channel),
            **_customer_fields(rng, name, phone, estate),
            "subject": None,
            "content": text,
            "customer_demand": demand,
            "category": categories[category_code],
            "level": level,
            "department": department,
            "staff": staff,
        }
        complaint = intake.register_complaint(session, registrar.user_id, data, now=registered_at)
        session.flush()
        drive(session, complaint, cast, rng, registered_at, now, age_days)
        session.commit()
        created += 1
    log.info("demo: %d complaints created", created)
    return created


def _intake_reference(
    session: Session,
) -> tuple[list[Channel], dict[str, Category], list[Level], dict[str, Department], dict[int, list[Staff]]]:
    """What intake chooses from: channels, categories and departments by code, levels, staff by department."""
    channels = list(session.scalars(select(Channel).order_by(Channel.sort)))
    categories = {c.code: c for c in session.scalars(select(Category))}
    levels = list(session.scalars(select(Level).order_by(Level.rank)))
    departments = {d.code: d for d in session.scalars(select(Department))}
    staff_by_department: dict[int, list[Staff]] = {}
    for person in session.scalars(select(Staff)):
        staff_by_department.setdefault(person.department_id, []).append(person)
    return channels, categories, levels, departments, staff_by_department


def _draw_received(rng: random.Random, now: datetime, start: datetime) -> tuple[datetime, int]:
    """When a case came in (spread over six months, denser recently) and its age in days."""
    age_days = int(182 * (rng.random() ** 1.6))
    received = _office_instant(rng, now - timedelta(days=age_days))
    if received > now - timedelta(minutes=30):
        received = now - timedelta(hours=2)
    if received < start:
        received = start
    return received, age_days


def _draw_story(rng: random.Random) -> tuple[str, str, str, str, str]:
    """A department's story: (department code, category code, complaint text, demand, estate)."""
    code = rng.choice(list(STORIES))
    category_code, content, demand = rng.choice(STORIES[code])
    estate = rng.choice(ESTATES)
    text = content.format(
        estate=estate,
        building=rng.randint(1, 18),
        unit=f"{rng.randint(1, 30)}0{rng.randint(1, 4)}",
        n=rng.randint(2, 6),
        amt=rng.choice([120, 180, 240, 360]),
    )
    return code, category_code, text, demand, estate


def _draw_customer(rng: random.Random, customers: list[tuple[str, str]]) -> tuple[str, str]:
    """A caller's name and phone: now and then one who called before, else a new one (remembered)."""
    if customers and rng.random() < 0.12:
        return rng.choice(customers)  # a repeat caller
    name, phone = _customer_name(rng), _phone(rng)
    customers.append((name, phone))
    return name, phone


def _channel_fields(rng: random.Random, received: datetime, channel: Channel) -> dict[str, Any]:
    """When and how the case came in; a regulator's transfer carries its reference number (转办单号)."""
    return {
        "received_at": received,
        "channel": channel,
        "regulator_ref": f"{channel.code[-5:]}-{received:%Y%m%d}-{rng.randint(1000, 9999)}"
        if channel.is_regulator
        else None,
    }


def _customer_fields(rng: random.Random, name: str, phone: str, estate: str) -> dict[str, Any]:
    """The caller's name, phone and address (a building of the story's estate)."""
    return {"customer_name": name, "customer_phone": phone, "customer_address": f"{estate}{rng.randint(1, 18)}号楼"}


def _stop_for_age(rng: random.Random, age_days: int) -> str:
    if age_days > 30:
        return rng.choice(["closed"] * 5 + ["archived"] * 4 + ["invalid"])
    if age_days > 7:
        return rng.choice(["closed", "closed", "closed", "invalid", "followed_up", "fed_back", "replied"])
    return rng.choice(OPEN_STOPS + ["invalid", "closed"])


# What each step of a valid demo case writes (the follow-up's satisfaction is drawn per case).
_PLAN_VALUES = {
    "judge_valid": {"validity_reason": "经核实情况属实，投诉成立。", "reasonable": True},
    "propose_plan": {
        "findings": "经调查，问题属实，系相关人员未按规程操作所致。",
        "resolution_plan": "立即整改，向客户致歉，并对责任人进行批评教育。",
    },
    "reply": {"reply_text": "非常抱歉给您带来不便，问题已安排专人处理完毕，今后我们将加强管理。"},
    "feed_back": {"feedback_note": "已与客户沟通并完成整改，客户表示认可。"},
    "close": {"close_note": "处理及时，客户满意，予以结案。", "customer_informed": "phone"},
}
_INVALID_VALUES = {
    "validity_reason": "经核实，所述情况与事实不符，不属于物业服务责任范围。",
    "polite_reply": "感谢您的反馈，经核实该问题不属于物业服务范围，我们已为您联系相关单位协助处理。",
}
_STOP_ORDER = [
    "registered",
    "judged",
    "dispatched",
    "investigating",
    "planned",
    "replied",
    "fed_back",
    "followed_up",
    "closed",
    "archived",
]
Step = tuple[str, Any, dict[str, Any]]  # action, who, values


def drive(
    session: Session, complaint: Complaint, cast: Cast, rng: random.Random, at: datetime, now: datetime, age_days: int
) -> None:
    """Move a demo case along the lifecycle, each step some working hours after the last."""
    stop = _stop_for_age(rng, age_days)
    head = cast.heads.get(complaint.department_id, cast.hr)
    if stop == "invalid":
        steps = [("judge_invalid", cast.hr, dict(_INVALID_VALUES))]
    else:
        steps = _valid_plan(cast, head, rng)[: _STOP_ORDER.index(stop)]
    quick: dict[str, int] = {}  # seconds after the previous step
    if complaint.level.is_major and stop != "invalid":
        steps, quick = _with_major_chain(steps, cast, head)
    for action, who, values in steps:
        at = at + timedelta(
            seconds=quick.get(action) or 60 * rng.choice([15, 20, 30, 40, 60, 60, 90, 120, 180, 240, 1500])
        )
        if at >= now:
            break
        sla.scan(session, at, complaint_id=complaint.id)  # warnings and misses happen on the way
        if action == "follow_up" and values["satisfaction"] == "unsatisfied":
            at = _handle_again(session, complaint, who, head, values, at)
            values = dict(values, satisfaction="satisfied", follow_up_note="二次回访，客户对重新处理的结果满意。")
        services.take_transition(session, complaint, action, who, values, now=at)
    sla.scan(session, now, complaint_id=complaint.id)


def _valid_plan(cast: Cast, head: Any, rng: random.Random) -> list[Step]:
    """Every step of a valid case, from judging to archiving."""
    return [
        ("judge_valid", cast.hr, dict(_PLAN_VALUES["judge_valid"])),
        ("dispatch", cast.hr, {}),
        ("start_investigation", head, {}),
        ("propose_plan", head, dict(_PLAN_VALUES["propose_plan"])),
        ("reply", head, dict(_PLAN_VALUES["reply"])),
        ("feed_back", head, dict(_PLAN_VALUES["feed_back"])),
        (
            "follow_up",
            cast.hr,
            {
                "satisfaction": rng.choice(["satisfied"] * 6 + ["basically_satisfied"] * 3 + ["unsatisfied"]),
                "method": "phone",
                "customer_words": "处理得挺及时，谢谢。",
                "follow_up_note": "电话回访客户，客户对处理结果表示认可。",
            },
        ),
        ("close", cast.hr, dict(_PLAN_VALUES["close"])),
        ("archive", cast.hr, {}),
    ]


def _with_major_chain(steps: list[Step], cast: Cast, head: Any) -> tuple[list[Step], dict[str, int]]:
    """Major cases: judged and dispatched within minutes, reported up the chain, written report."""
    chain = [
        ("report_to_leader", cast.hr, {"note": "已电话报告分管领导"}),
        ("report_to_gm", cast.hr, {"note": "已电话报告总经理"}),
        ("submit_written_report", head, {"report": "事件经过、原因分析及处理措施书面报告。"}),
    ]
    steps = steps[:2] + chain[: max(0, len(steps) - 1)] + steps[2:]
    quick = {
        "judge_valid": 40,
        "dispatch": 40,
        "report_to_leader": 60,
        "report_to_gm": 120,
        "submit_written_report": 4 * 3600,
    }
    return steps, quick


def _handle_again(
    session: Session, complaint: Complaint, who: Any, head: Any, values: dict[str, Any], at: datetime
) -> datetime:
    """An unsatisfied customer: the visit reopens the case, the department plans, replies and reports again."""
    services.take_transition(session, complaint, "follow_up", who, values, now=at)
    at = at + timedelta(hours=4)
    for again in ("propose_plan", "reply", "feed_back"):
        services.take_transition(session, complaint, again, head, dict(_PLAN_VALUES[again]), now=at)
        at = at + timedelta(hours=3)
    return at


# --- Discipline: a few penalty cases at every step, and commendations ---------------------------

PENALTY_STOPS = ["draft", "proposed", "reviewed", "approved", "issued", "served", "served"]
PRAISE = [
    ("letter", "雨夜冒雨抢修主水管，保障了整栋楼正常供水，业主送来表扬信。"),
    ("call", "拾到业主遗失的钱包并及时归还，业主来电表扬。"),
    ("visit", "耐心为老年业主讲解缴费流程并陪同办理，业主到前台当面表扬。"),
    ("letter", "连续加班清理暴雨后的地下车库积水，业主联名致信感谢。"),
]


def create_discipline(session: Session, cast: Cast, rng: random.Random, now: datetime, cases: int = 7) -> int:
    """Penalty cases from closed attitude complaints, driven through the real chain, plus commendations."""
    gm = cast.gm
    if gm is None:
        return 0
    rules = {r.clause: r for r in session.scalars(select(PenaltyRule))}
    closed = session.scalars(
        select(Complaint)
        .join(Category, Category.id == Complaint.category_id)
        .where(
            Category.code == "attitude",
            Complaint.closed_at.is_not(None),
            Complaint.closed_at > now - timedelta(days=60),
        )
        .order_by(Complaint.closed_at)
    ).all()
    created = 0
    for complaint in [c for c in closed if c.staff][:cases]:
        head = cast.heads.get(complaint.department_id)
        if head is None:
            continue
        _penalty_case(session, cast, gm, head, complaint, rules, PENALTY_STOPS[created % len(PENALTY_STOPS)], rng, now)
        created += 1
    created += _head_case(session, cast, rules, now)
    _commendations(session, cast, rng, now)
    return created


def _penalty_case(
    session: Session,
    cast: Cast,
    gm: Any,
    head: Any,
    complaint: Complaint,
    rules: dict[str, PenaltyRule],
    stop: str,
    rng: random.Random,
    now: datetime,
) -> None:
    """A case against the complaint's first named staff member, taken up to ``stop``."""
    at = complaint.closed_at + timedelta(hours=2)
    clause = rng.choice(["第六条第1款A", "第六条第1款C", "第六条第2款A", "第六条第2款C"])
    penalty = discipline.open_case(
        session,
        head,
        {
            "staff": complaint.staff[0],
            "rule": rules[clause],
            "complaint": complaint,
            "facts": f"{complaint.staff[0].name}在处理投诉{complaint.number}所涉事项时{rules[clause].description}，引发客户投诉。",
            "fine_amount": rng.choice([30, 50, 80, 100]) if clause.startswith("第六条第1款") else None,
        },
        now=at,
    )
    chain = [("propose", head), ("review", cast.hr), ("approve", gm), ("issue_notice", cast.hr), ("serve", cast.hr)]
    order = ["draft", "proposed", "reviewed", "approved", "issued", "served"]
    for action, who in chain[: order.index(stop)]:
        at = min(at + timedelta(hours=rng.choice([3, 5, 20, 26])), now - timedelta(minutes=5))
        values = {"served_on": at.astimezone(LOCAL_TZ).date().isoformat()} if action == "serve" else {}
        discipline.take_step(session, penalty, action, who, values, now=at)
    session.commit()


def _head_case(session: Session, cast: Cast, rules: dict[str, PenaltyRule], now: datetime) -> int:
    """A department head who let a case slide: 人事行政经理 proposes, the general manager decides."""
    head_staff = session.scalar(
        select(Staff).join(Department, Department.head_id == Staff.id).where(Department.code == "GC")
    )
    if head_staff is None:
        return 0
    discipline.take_step(
        session,
        discipline.open_case(
            session,
            cast.hr,
            {
                "staff": head_staff,
                "rule": rules["第六条第3款B"],
                "facts": "本月工程部多起投诉未在时限内展开调查，部门主管管理不力，未能有效监督服务工作及解决投诉。",
            },
            now=now - timedelta(days=1),
        ),
        "propose",
        cast.hr,
        {},
        now=now - timedelta(hours=20),
    )
    session.commit()
    return 1


def _commendations(session: Session, cast: Cast, rng: random.Random, now: datetime) -> None:
    staff_pool = session.scalars(select(Staff).where(Staff.active.is_(True))).all()
    for i, (source, content) in enumerate(PRAISE):
        person = rng.choice(staff_pool)
        session.add(
            Commendation(
                staff=person,
                department_id=person.department_id,
                source=source,
                content=content,
                commended_on=(now - timedelta(days=5 + 9 * i)).astimezone(LOCAL_TZ).date(),
                offsets_complaint=i % 2 == 0,
                recorded_by_id=cast.hr.user_id,
            )
        )
    session.commit()


MEASURES = {
    "GC": "电梯、水电报修实行两小时到场承诺，超时由部门经理当日回访致歉；每周二对各小区电梯进行专项巡检。",
    "BA": "门岗岗前培训文明用语，夜间巡逻增加至每两小时一次并签到；对外来车辆登记流程张贴公示。",
    "BJ": "公共区域保洁增加午间一次，垃圾清运时间调整至早七点前；建立保洁质量日检表。",
    "KF": "来电 3 声内接听，工单 10 分钟内转派；每周抽查 20 通录音，点评服务用语。",
    "CW": "账单增加明细说明，收费争议 1 个工作日内答复；收费窗口公示收费标准。",
}


def create_quality(session: Session, cast: Cast, now: datetime) -> dict[str, int]:
    """Improvement measures, the last weekly and monthly reports and four months of grading.

    Done as the scheduled jobs would have done them, at their due time; the grading of
    the months whose 公示 is over is confirmed by 总经理, the last one is left open.
    """
    cal = sla.load_calendar(session)
    today = now.astimezone(LOCAL_TZ).date()

    def due(period: Any) -> datetime:
        day = period.end if cal.is_workday(period.end) else cal.next_workday(period.end)
        return datetime.combine(day, datetime.min.time(), LOCAL_TZ).replace(hour=8)

    last_month = period_containing("month", today).previous()
    for department_id, head in cast.heads.items():
        code = session.scalar(select(Department.code).where(Department.id == department_id))
        if code in MEASURES:
            session.add(
                DepartmentMeasure(
                    department_id=department_id,
                    period_kind="month",
                    period_start=last_month.start,
                    text=MEASURES[code],
                    author_id=head.user_id,
                    updated_at=due(last_month) - timedelta(days=2),
                )
            )
    session.commit()
    runs = 0
    for period in (last_month.shift(3), last_month.shift(2), last_month.shift(1), last_month):
        opened = due(period)
        if opened > now:
            continue
        run = assessment.open_run(session, period, now=opened)
        runs += 1
        confirm_at = run.publicity_until + timedelta(hours=10)
        if period != last_month and cast.gm is not None and confirm_at <= now:
            assessment.confirm(session, run, cast.gm, now=confirm_at)
        session.commit()
    made = 0
    for period in (last_month, period_containing("week", today).previous()):
        if due(period) <= now:
            reports.send(session, reports.generate(session, period, now=due(period)), now=due(period))
            session.commit()
            made += 1
    return {"reports": made, "grading_runs": runs}
