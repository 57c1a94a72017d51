"""The schema: every table of the portal.

Typed SQLAlchemy 2 declarative models on Flask-AppBuilder's ``Model`` base, so that
foreign keys to FAB's users (``ab_user``) live in the same metadata and Alembic sees
one schema. Times are stored as aware UTC (``UTCDateTime``); closed sets are enums.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any, Optional

from flask_appbuilder.models.sqla import Model
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    exists,
    false,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, Session, deferred, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.timeutil import LOCAL_TZ, UTC, as_utc, to_local, utcnow


class UTCDateTime(TypeDecorator):
    """An instant stored in UTC and read back aware, on SQLite and PostgreSQL alike.

    Values are read back in Asia/Shanghai (same instant, +08:00 offset) so that
    screens and the API show local time; naive values bound to it are wall-clock
    times in Asia/Shanghai (what a user typed). An offset is never dropped.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("UTCDateTime needs a datetime")
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return to_local(value)


def _enum(enum_cls: type[enum.Enum], length: int = 24) -> Enum:
    # Stored as VARCHAR (no native PG enum) so adding a value needs no type migration.
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class ComplaintStatus(str, enum.Enum):
    registered = "registered"
    judged = "judged"
    dispatched = "dispatched"
    investigating = "investigating"
    planned = "planned"
    replied = "replied"
    fed_back = "fed_back"
    followed_up = "followed_up"
    closed = "closed"
    archived = "archived"


OPEN_STATUSES = tuple(s for s in ComplaintStatus if s not in (ComplaintStatus.closed, ComplaintStatus.archived))
# A case whose clock is paused (暂停计时), as SQL for its partial index.
PAUSED = "paused_since IS NOT NULL"
# The same as SQL, for partial indexes (a query's "status IN (…)" of these values uses them).
OPEN_PREDICATE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in OPEN_STATUSES))
# Under 督办 or 上报总部 (written as the 待我处理 query writes it, so that PostgreSQL matches the index).
WATCHED_PREDICATE = "(supervised IS true OR escalated_to_head_office_at IS NOT NULL)"


class CaseType(str, enum.Enum):
    """Kinds of case in the ETC policy: 投诉, 升级投诉, 申诉, 回访再处理, 督办."""

    complaint = "complaint"  # 投诉
    escalated = "escalated"  # 升级投诉 (二次投诉): the customer did not accept the reply
    appeal = "appeal"  # 申诉
    revisit = "revisit"  # 回访再处理
    supervision = "supervision"  # 督办


class Validity(str, enum.Enum):
    valid = "valid"
    invalid = "invalid"


class Satisfaction(str, enum.Enum):
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    unsatisfied = "unsatisfied"


# --- Organisation -------------------------------------------------------------------


class UnitKind(str, enum.Enum):
    """Kinds of organisational unit: the company (head office) and the units under it."""

    company = "company"  # 公司 (总部)
    branch = "branch"  # 分公司
    management_office = "management_office"  # 管理处
    outlet = "outlet"  # 网点


class Unit(Model):
    """A unit of the organisation (company → branch / 管理处 / 网点); departments belong to one.

    Its head reads the cases of every department of the unit and of its sub-units.
    """

    __tablename__ = "unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[UnitKind] = mapped_column(_enum(UnitKind), default=UnitKind.outlet)
    parent_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("unit.id", ondelete="SET NULL", name="fk_unit_parent_id"), index=True
    )
    parent: Mapped[Optional[Unit]] = relationship(remote_side="Unit.id", foreign_keys=[parent_id])
    head_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("staff.id", use_alter=True, name="fk_unit_head_id", ondelete="SET NULL"), index=True
    )
    head: Mapped[Optional[Staff]] = relationship(foreign_keys=[head_id], post_update=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def __repr__(self) -> str:
        return self.name


class Department(Model):
    """A department of the company; complaints are routed to it, its head handles them."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    head_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("staff.id", use_alter=True, name="fk_department_head_id", ondelete="SET NULL")
    )
    head: Mapped[Optional[Staff]] = relationship(foreign_keys=[head_id], post_update=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The unit it belongs to; none = the company itself (head office).
    unit_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("unit.id", ondelete="SET NULL", name="fk_department_unit_id"), index=True
    )
    unit: Mapped[Optional[Unit]] = relationship(foreign_keys=[unit_id])
    # The supervising leader (分管领导): 总经理 or a deputy, who rules the department's disputes.
    supervisor_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL", name="fk_department_supervisor_id"), index=True
    )
    supervisor: Mapped[Optional[User]] = relationship(User, foreign_keys=[supervisor_id])

    def __repr__(self) -> str:
        return self.name


class Staff(Model):
    """An employee; a login user is linked to one staff record and so to a department."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    department: Mapped[Department] = relationship(foreign_keys=[department_id])
    position: Mapped[Optional[str]] = mapped_column(String(64))
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    email: Mapped[Optional[str]] = mapped_column(String(120))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), unique=True)
    user: Mapped[Optional[User]] = relationship(User, foreign_keys=[user_id])
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # The direct superior (直接上级): chained liability (连带扣分) follows this line upwards.
    superior_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("staff.id", name="fk_staff_superior_id", ondelete="SET NULL"), index=True
    )
    superior: Mapped[Optional[Staff]] = relationship(remote_side=[id], foreign_keys=[superior_id])

    def __repr__(self) -> str:
        return self.name


class Post(Model):
    """A post (岗位) in the org chart: who it reports to; its holders over time are :class:`PostHolding` rows.

    Chained liability (连带扣分) follows posts, not people: the chain of a case is read from
    the posts as they were held on the incident date, and a vacant post passes it upward.
    """

    __tablename__ = "post"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    department: Mapped[Department] = relationship(foreign_keys=[department_id])
    # The post this one reports to (上级岗位); none at the top of the chart.
    superior_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("post.id", name="fk_post_superior_id", ondelete="SET NULL"), index=True
    )
    superior: Mapped[Optional[Post]] = relationship(remote_side=[id], foreign_keys=[superior_id])
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    note: Mapped[Optional[str]] = mapped_column(Text)
    holdings: Mapped[list[PostHolding]] = relationship(
        back_populates="post", order_by="PostHolding.valid_from", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"{self.department.name}·{self.name}" if self.department is not None else self.name


class PostHolding(Model):
    """One person holding a post for a period: ``valid_from`` to ``valid_to`` (both days included).

    ``valid_from`` empty: held since before the portal recorded it; ``valid_to`` empty: still
    held. A move ends one holding and starts another, so the history stays.
    """

    __tablename__ = "post_holding"
    __table_args__ = (
        Index("ix_post_holding_post_from", "post_id", "valid_from"),
        Index("ix_post_holding_staff_from", "staff_id", "valid_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    post: Mapped[Post] = relationship(back_populates="holdings")
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    staff: Mapped[Staff] = relationship(foreign_keys=[staff_id])
    valid_from: Mapped[Optional[date]] = mapped_column(Date)
    valid_to: Mapped[Optional[date]] = mapped_column(Date)
    note: Mapped[Optional[str]] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"{self.staff.name if self.staff is not None else '—'}@{self.post_id}"


# --- Reference data -----------------------------------------------------------------


class Channel(Model):
    """How a complaint reached the company (电话, 邮箱, 来访, 来函, 网站, 监管转办 …)."""

    __tablename__ = "channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    is_regulator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def __repr__(self) -> str:
        return self.name


class Category(Model):
    """What the complaint is about (服务态度, 专业素质, 服务效率 …)."""

    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def __repr__(self) -> str:
        return self.name


class Level(Model):
    """Severity of a complaint (一般, 重要, 重大, 紧急); ``rank`` orders them."""

    __tablename__ = "level"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    rank: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    is_major: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    description: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Who approves more time on this level's cases (超时需经…批准), a role; empty: by rank.
    extension_approver: Mapped[Optional[str]] = mapped_column(String(64))
    # The most contacts with the customer (对应次数); after the last the case escalates.
    max_contacts: Mapped[Optional[int]] = mapped_column(Integer)

    def __repr__(self) -> str:
        return self.name


class ReplyScript(Model):
    """A standard reply (话术) for a scenario: what to do and what to say, in which tone."""

    __tablename__ = "reply_script"

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[Optional[str]] = mapped_column(Text)
    action: Mapped[Optional[str]] = mapped_column(Text)
    standard_reply: Mapped[str] = mapped_column(Text)
    tone: Mapped[Optional[str]] = mapped_column(Text)
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    def __repr__(self) -> str:
        return self.scenario


class Setting(Model):
    """An administrator-editable setting (office hours, windows, ratios) as JSON."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    description: Mapped[Optional[str]] = mapped_column(Text)
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return self.key


class Counter(Model):
    """Gap-free sequences: complaint numbers per day, document numbers per kind and year."""

    __tablename__ = "counter"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# --- Customers and complaints ------------------------------------------------------


class Customer(Model):
    """A customer who complained; found again by phone number at intake."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    email: Mapped[Optional[str]] = mapped_column(String(120))
    address: Mapped[Optional[str]] = mapped_column(String(255))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the retention job replaced the personal data (个人信息保护法); statistics stay.
    anonymised_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return self.name


complaint_staff = Table(
    "complaint_staff",
    Model.metadata,
    Column("complaint_id", ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_id", ForeignKey("staff.id"), primary_key=True, index=True),
)


class Complaint(Model):
    """One customer complaint and its case file, from registration to archive."""

    __tablename__ = "complaint"
    __table_args__ = (
        Index("ix_complaint_department_status", "department_id", "status"),
        Index("ix_complaint_status_received", "status", "received_at"),
        Index("ix_complaint_customer_received", "customer_id", "received_at"),
        # The dashboards' live figures, read from the index alone on PostgreSQL: open cases by
        # age with their overdue/supervised flags, and valid complaints per category and month.
        Index(
            "ix_complaint_open_received",
            "received_at",
            postgresql_include=["department_id", "overdue", "supervised", "first_responder_id"],
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        Index(
            "ix_complaint_open_due",
            "next_due_at",
            "received_at",
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # 待我处理: each kind's first open cases of one status in due order, and the 督办/上报总部
        # cases the general manager watches (a handful among the open cases).
        Index(
            "ix_complaint_open_status_due",
            "status",
            "next_due_at",
            "received_at",
            "id",
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # A department head's waiting kinds: his department's open cases of one status in due
        # order, with what the kinds test besides (paused, signed for, names the head) at hand.
        Index(
            "ix_complaint_open_department_due",
            "department_id",
            "status",
            "next_due_at",
            "received_at",
            "id",
            postgresql_include=["paused_since", "signed_at", "head_named"],
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # The few paused cases (暂停计时): the dashboard's refresh leaves their clocks out, which
        # read the whole table without it.
        Index("ix_complaint_paused", "id", postgresql_where=text(PAUSED), sqlite_where=text(PAUSED)),
        # The cases naming their department's head (人事行政经理 takes their steps), with what
        # the steps test besides at hand: counted and listed from the index alone (0030).
        Index(
            "ix_complaint_open_head_named",
            "status",
            "next_due_at",
            "received_at",
            "id",
            postgresql_include=["paused_since", "signed_at"],
            postgresql_where=text(f"{OPEN_PREDICATE} AND head_named IS true"),
            sqlite_where=text(f"{OPEN_PREDICATE} AND head_named IS true"),
        ),
        Index(
            "ix_complaint_open_watched",
            "next_due_at",
            "received_at",
            "id",
            postgresql_where=text(f"{OPEN_PREDICATE} AND {WATCHED_PREDICATE}"),
            sqlite_where=text(f"{OPEN_PREDICATE} AND {WATCHED_PREDICATE}"),
        ),
        # 首问 scope, its home counts, and its lists filtered to a department (0031).
        Index("ix_complaint_first_responder_status", "first_responder_id", "status", "department_id"),
        Index(
            "ix_complaint_valid_category_received",
            "category_id",
            "received_at",
            postgresql_include=["id"],
            postgresql_where=text("validity = 'valid'"),
            sqlite_where=text("validity = 'valid'"),
        ),
    )

    # Lists, exports and reports show these with every case: load them in the same query.
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    channel: Mapped[Channel] = relationship(lazy="joined")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    customer: Mapped[Customer] = relationship(lazy="joined")
    subject: Mapped[Optional[str]] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    customer_demand: Mapped[Optional[str]] = mapped_column(Text)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"), index=True)
    category: Mapped[Category] = relationship(lazy="joined")
    level_id: Mapped[int] = mapped_column(ForeignKey("level.id"), index=True)
    level: Mapped[Level] = relationship(lazy="joined")
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship(lazy="joined")
    staff: Mapped[list[Staff]] = relationship(secondary=complaint_staff)
    # The head of the case's department is one of its complained staff (the recusal role then
    # takes the department's steps): kept by keep_head_named() below, so that 待我处理 finds these
    # few cases by an index instead of joining every case's staff with the departments' heads.
    head_named: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Indexed with the status (ix_complaint_first_responder_status): 首问 scope and its home counts.
    first_responder_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    first_responder: Mapped[Optional[User]] = relationship(User, foreign_keys=[first_responder_id])
    status: Mapped[ComplaintStatus] = mapped_column(
        _enum(ComplaintStatus), default=ComplaintStatus.registered, index=True
    )
    # Judgement (成立/不成立) and the case file, filled as the case moves on.
    validity: Mapped[Optional[Validity]] = mapped_column(_enum(Validity, 12))
    validity_reason: Mapped[Optional[str]] = mapped_column(Text)
    reasonable: Mapped[Optional[bool]] = mapped_column(Boolean)
    polite_reply: Mapped[Optional[str]] = mapped_column(Text)
    findings: Mapped[Optional[str]] = mapped_column(Text)
    responsible_staff_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id"))
    responsible_staff: Mapped[Optional[Staff]] = relationship(foreign_keys=[responsible_staff_id])
    resolution_plan: Mapped[Optional[str]] = mapped_column(Text)
    reply_text: Mapped[Optional[str]] = mapped_column(Text)
    feedback_note: Mapped[Optional[str]] = mapped_column(Text)
    satisfaction: Mapped[Optional[Satisfaction]] = mapped_column(_enum(Satisfaction))
    follow_up_note: Mapped[Optional[str]] = mapped_column(Text)
    close_note: Mapped[Optional[str]] = mapped_column(Text)
    # When each stage was reached.
    judged_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    dispatched_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # 监管转办: the transferring body (12345, 12315, an industry regulator) and its reference.
    regulator_body: Mapped[Optional[str]] = mapped_column(String(64))
    regulator_ref: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    # A case beyond its unit's authority, escalated to the head office (上报总部).
    escalated_to_head_office_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    escalated_to_head_office_by_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("ab_user.id", name="fk_complaint_escalated_by_id")
    )
    escalated_to_head_office_by: Mapped[Optional[User]] = relationship(
        User, foreign_keys=[escalated_to_head_office_by_id]
    )
    # When the receiving department signed for the dispatched case (签收).
    signed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    investigation_started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    planned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    replied_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fed_back_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    followed_up_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    archived_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    anonymised_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Deadlines of the open stages (copied from ``deadline`` rows for lists and the API).
    investigate_due: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    reply_due: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    follow_up_due: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    next_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"), index=True)
    warned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    supervised: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # A repeat: same customer, same department or category, within the configured window.
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"), index=True)
    repeat_of_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("complaint.id", ondelete="SET NULL", name="fk_complaint_repeat_of_id"), index=True
    )
    repeat_of: Mapped[Optional[Complaint]] = relationship(remote_side="Complaint.id", foreign_keys=[repeat_of_id])
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set while the case's clock is paused (暂停计时): no warning or overdue fires meanwhile.
    paused_since: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Kind of case; an escalated re-complaint (升级投诉 / 二次投诉) points at the case it re-opens.
    case_type: Mapped[CaseType] = mapped_column(
        _enum(CaseType, 16), default=CaseType.complaint, server_default=text("'complaint'"), index=True
    )
    original_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("complaint.id", ondelete="SET NULL", name="fk_complaint_original_id"), index=True
    )
    original: Mapped[Optional[Complaint]] = relationship(remote_side="Complaint.id", foreign_keys=[original_id])
    # 首问负责制: the first responder (or 人事行政经理) confirms the customer was told the result;
    # a case closes only after that.
    customer_informed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    customer_informed_by_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL", name="fk_complaint_customer_informed_by_id")
    )
    customer_informed_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[customer_informed_by_id])
    customer_informed_method: Mapped[Optional[str]] = mapped_column(String(16))
    customer_informed_note: Mapped[Optional[str]] = mapped_column(Text)
    # When the complained-of incident happened (事发日期): an attitude complaint raised more
    # than a month later is not valid (logistics policy, seed 001 篇7 第九条(6)).
    incident_date: Mapped[Optional[date]] = mapped_column(Date)
    # The product batch / lot (批次/批号) of a quality complaint (seed 004 质量事故).
    batch_no: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    # 群体性投诉: many people complaining together are one case with their number.
    complainant_count: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic lock: an UPDATE that finds another version raises StaleDataError.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    events: Mapped[list[ComplaintEvent]] = relationship(
        back_populates="complaint", order_by="ComplaintEvent.id", passive_deletes=True
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="complaint", order_by="Attachment.id", passive_deletes=True
    )
    deadlines: Mapped[list[Deadline]] = relationship(
        back_populates="complaint", order_by="Deadline.id", passive_deletes=True
    )
    pauses: Mapped[list[ClockPause]] = relationship(
        back_populates="complaint", order_by="ClockPause.id", passive_deletes=True
    )
    disputes: Mapped[list[Dispute]] = relationship(
        back_populates="complaint", order_by="Dispute.id", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return self.number or "—"

    @property
    def is_archived(self) -> bool:
        return self.status == ComplaintStatus.archived

    @property
    def deadline_status(self) -> tuple[Optional[datetime], str]:
        """The next running deadline and its colour: 'late', 'warned', 'today' or ''."""
        due = self.next_due_at
        if due is None:
            return None, "late" if self.overdue else ""
        now = utcnow()
        if self.overdue or due <= now:
            return due, "late"
        if self.warned:
            return due, "warned"
        if due.astimezone(LOCAL_TZ).date() == now.astimezone(LOCAL_TZ).date():
            return due, "today"
        return due, ""


class ComplaintEvent(Model):
    """One line of a case's append-only history: who did what, when, from which status."""

    __tablename__ = "complaint_event"
    __table_args__ = (Index("ix_complaint_event_complaint_at", "complaint_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"))
    complaint: Mapped[Complaint] = relationship(back_populates="events")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    actor: Mapped[Optional[User]] = relationship(User)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[Optional[str]] = mapped_column(String(24))
    to_status: Mapped[Optional[str]] = mapped_column(String(24))
    note: Mapped[Optional[str]] = mapped_column(Text)
    data: Mapped[Optional[dict]] = mapped_column(JSON)
    # Set on system events that must happen once (e.g. "sla:<deadline>:overdue").
    dedup_key: Mapped[Optional[str]] = mapped_column(String(120), unique=True)

    def __repr__(self) -> str:
        return f"{self.action}@{self.at:%Y-%m-%d %H:%M}"


class Attachment(Model):
    """An evidence file of a complaint, kept in the database so every app server reads it."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship(back_populates="attachments")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[Optional[str]] = mapped_column(String(255))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    uploaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    uploaded_by: Mapped[Optional[User]] = relationship(User)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return self.filename


# --- Working calendar, time limits, notifications, jobs -----------------------------------


class CalendarOverride(Model):
    """An administrator's word on one date (State Council schedule): workday or not."""

    __tablename__ = "calendar_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[Optional[str]] = mapped_column(String(120))
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"{self.day:%Y-%m-%d}"


class SlaRule(Model):
    """A time limit for one stage (optionally for one level or channel), with its warning and chain."""

    __tablename__ = "sla_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    level_id: Mapped[Optional[int]] = mapped_column(ForeignKey("level.id"))
    level: Mapped[Optional[Level]] = relationship()
    channel_id: Mapped[Optional[int]] = mapped_column(ForeignKey("channel.id"))
    channel: Mapped[Optional[Channel]] = relationship()
    amount: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    warn_ratio: Mapped[float] = mapped_column(Float, default=0.9, server_default=text("0.9"))
    remind_roles: Mapped[Optional[str]] = mapped_column(String(120))
    escalate_role: Mapped[Optional[str]] = mapped_column(String(64))
    escalate_after: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    # 超时扣罚: a missed deadline drafts a penalty case with this fine (元) for review.
    overtime_fine: Mapped[Optional[int]] = mapped_column(Integer)
    # The average the policy promises (平均), in the rule's unit; ``amount`` is then the maximum.
    average_amount: Mapped[Optional[int]] = mapped_column(Integer)
    description: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"{self.stage} {self.amount} {self.unit}"


class Deadline(Model):
    """The clock of one stage of one case; the deadline scan walks ``next_check_at``."""

    __tablename__ = "deadline"
    __table_args__ = (
        UniqueConstraint("complaint_id", "stage", "cycle", name="uq_deadline_stage_cycle"),
        Index(
            "ix_deadline_open_next_check",
            "next_check_at",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
        # 延期 worth asking (待我处理): the few running clocks already warned.
        Index(
            "ix_deadline_open_warned",
            "complaint_id",
            postgresql_where=text("state = 'open' AND warned_at IS NOT NULL"),
            sqlite_where=text("state = 'open' AND warned_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship(back_populates="deadlines")
    # The case's department, copied for statistics and digests (kept in step by app/sla.py).
    department_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("department.id", name="fk_deadline_department_id"), index=True
    )
    stage: Mapped[str] = mapped_column(String(32))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    rule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sla_rule.id", ondelete="SET NULL"))
    rule: Mapped[Optional[SlaRule]] = relationship()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    warn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    escalate_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    extension_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Time the case's clock stood still (暂停计时), in the rule's own kind of minutes:
    # working minutes for working-day/-hour limits, wall minutes for natural ones.
    paused_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    state: Mapped[str] = mapped_column(String(12), default="open")
    met_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    warned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    overdue_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    escalated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    next_check_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"{self.stage}#{self.cycle}"

    @property
    def late(self) -> bool:
        return self.overdue_at is not None or (self.met_at is not None and self.met_at > self.due_at)


class Extension(Model):
    """A request for more time on a stage (延期) and its decision."""

    __tablename__ = "extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship()
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadline.id", ondelete="CASCADE"))
    deadline: Mapped[Deadline] = relationship()
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    requested_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[requested_by_id])
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[decided_by_id])
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[Optional[str]] = mapped_column(Text)
    old_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    new_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The customer's consent to the longer time (who agreed, when, how).
    consent_by: Mapped[Optional[str]] = mapped_column(String(100))
    consent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    consent_method: Mapped[Optional[str]] = mapped_column(String(16))
    # Asked later than the policy's notice (1 working day before the deadline): 总经理 decides.
    late_request: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class ClockPause(Model):
    """One pause of a case's clock (暂停计时): why, until when, how the customer was told.

    ``state``: running, awaiting_approval (longer than the cap: 总经理 decides; the clock
    stays paused meanwhile), ended (resumed) or rejected (总经理 refused; resumed at once).
    """

    __tablename__ = "clock_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship(back_populates="pauses")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    expected_resume: Mapped[Optional[date]] = mapped_column(Date)
    customer_informed: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    requested_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[requested_by_id])
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    approved_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[approved_by_id])
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), default="running", index=True)
    # Filled when the pause ends: how long the clock stood still.
    working_minutes: Mapped[Optional[int]] = mapped_column(Integer)
    natural_minutes: Mapped[Optional[int]] = mapped_column(Integer)

    @property
    def active(self) -> bool:
        return self.state in ("running", "awaiting_approval")


class Dispute(Model):
    """A receiving department's objection to a dispatch (责任异议) and its supervising leader's ruling.

    ``state``: open (awaiting the ruling), upheld (the department keeps the case) or
    reassigned (the case went to ``to_department``).
    """

    __tablename__ = "dispute"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship(back_populates="disputes")
    from_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    from_department: Mapped[Department] = relationship(foreign_keys=[from_department_id])
    objected_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    objected_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[objected_by_id])
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(12), default="open", index=True)
    ruled_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    ruled_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[ruled_by_id])
    ruled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ruling_note: Mapped[Optional[str]] = mapped_column(Text)
    to_department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("department.id"))
    to_department: Mapped[Optional[Department]] = relationship(foreign_keys=[to_department_id])

    def __repr__(self) -> str:
        return f"{self.from_department} {self.state}"


class Notification(Model):
    """An in-app message to one user (the inbox); e-mail and webhooks go through deliveries."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at"),
        Index("ix_notification_user_category", "user_id", "category", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    user: Mapped[User] = relationship(User)
    kind: Mapped[str] = mapped_column(String(32))
    # todo (待办: the recipient must act) or info (知会: progress of a case one owns or follows).
    category: Mapped[str] = mapped_column(String(8), default="todo", server_default="todo")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[Optional[str]] = mapped_column(Text)
    complaint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Optional[Complaint]] = relationship()
    link: Mapped[Optional[str]] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    dedup_key: Mapped[Optional[str]] = mapped_column(String(160), unique=True)

    def __repr__(self) -> str:
        return self.title


class Delivery(Model):
    """One outgoing message on a channel (email, wecom, dingtalk), retried until sent or given up."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[Optional[str]] = mapped_column(Text)
    notification_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notification.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    dedup_key: Mapped[Optional[str]] = mapped_column(String(160), unique=True)


class FollowUp(Model):
    """A follow-up visit (回访): who called the customer, when, how, and what they said."""

    __tablename__ = "follow_up"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    complaint: Mapped[Complaint] = relationship()
    called_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    called_by: Mapped[Optional[User]] = relationship(User)
    called_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    method: Mapped[str] = mapped_column(String(16))
    satisfaction: Mapped[Satisfaction] = mapped_column(_enum(Satisfaction))
    customer_words: Mapped[Optional[str]] = mapped_column(Text)
    note: Mapped[Optional[str]] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)


class CustomerCount(Model):
    """Customers a department served in a month (denominator of the complaint rate)."""

    __tablename__ = "customer_count"
    __table_args__ = (UniqueConstraint("department_id", "month", name="uq_customer_count_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    department: Mapped[Department] = relationship()
    month: Mapped[date] = mapped_column(Date)
    customers: Mapped[int] = mapped_column(Integer)
    note: Mapped[Optional[str]] = mapped_column(String(200))


class StatDaily(Model):
    """Maintained aggregate of one department's day, read by dashboards and reports.

    Each measure is attributed to the day its event happened (received, judged,
    closed, followed up, stage due). Rows are recomputed from the base tables for
    the (day, department) pairs a write touched (``stat_dirty``).
    """

    __tablename__ = "stat_daily"
    __table_args__ = (
        # The days that still have open cases: the open-case figures sum these alone (index only on
        # PostgreSQL), however long the history.
        Index(
            "ix_stat_daily_open",
            "day",
            "department_id",
            postgresql_include=["open_cases", "open_overdue", "open_supervised"],
            postgresql_where=text("open_cases > 0"),
            sqlite_where=text("open_cases > 0"),
        ),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"), primary_key=True)
    received: Mapped[int] = mapped_column(Integer, default=0)
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    by_category: Mapped[Optional[dict]] = mapped_column(JSON)
    by_channel: Mapped[Optional[dict]] = mapped_column(JSON)
    by_level: Mapped[Optional[dict]] = mapped_column(JSON)
    judged: Mapped[int] = mapped_column(Integer, default=0)
    valid: Mapped[int] = mapped_column(Integer, default=0)
    attitude_valid: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_without_dispatch: Mapped[int] = mapped_column(Integer, default=0)
    handling_minutes: Mapped[float] = mapped_column(Float, default=0)
    followups: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    basically_satisfied: Mapped[int] = mapped_column(Integer, default=0)
    unsatisfied: Mapped[int] = mapped_column(Integer, default=0)
    # stage -> [due, on_time, late, delay_minutes_of_late_steps]
    stages: Mapped[Optional[dict]] = mapped_column(JSON)
    computed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Raised on every rewrite (app.quality.stats.next_revision): dashboards cache their totals
    # per period and department and recompute a group only when its count or revisions changed.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # staff id -> valid 服务态度 complaints naming them, received this day (app.quality.attitude)
    attitude_by_staff: Mapped[Optional[dict]] = mapped_column(JSON)
    # The cases received this day that are open now, and how many of them are overdue and
    # supervised (督办): the dashboards' open-case figures sum these (analytics.open_summary).
    open_cases: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    open_overdue: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    open_supervised: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class StatDirty(Model):
    """A (day, department) whose ``stat_daily`` row must be recomputed."""

    __tablename__ = "stat_dirty"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class JobRun(Model):
    """A periodic job's run for one period (e.g. digest of 2026-11-23): at most once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_run_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    result: Mapped[Optional[dict]] = mapped_column(JSON)


# --- Discipline: penalty rules, cases, appeals, commendations, documents ------------------


class Sanction(str, enum.Enum):
    """Sanction grades of 服务投诉管理制度 第六条, lightest first."""

    fine = "fine"  # 经济处罚
    warning = "warning"  # 警告
    reprimand = "reprimand"  # 申诫
    demerit = "demerit"  # 记过
    major_demerit = "major_demerit"  # 记大过
    dismissal = "dismissal"  # 辞退
    expulsion = "expulsion"  # 开除


class PenaltyStatus(str, enum.Enum):
    draft = "draft"
    proposed = "proposed"
    reviewed = "reviewed"
    returned = "returned"
    approved = "approved"
    issued = "issued"
    served = "served"
    appealed = "appealed"
    revoked = "revoked"
    cancelled = "cancelled"


class DocumentKind(str, enum.Enum):
    penalty_notice = "penalty_notice"  # 处罚通知书
    circular = "circular"  # 通报
    record_form = "record_form"  # 客户投诉记录表
    monthly_analysis = "monthly_analysis"  # 月度投诉分析
    weekly_analysis = "weekly_analysis"  # 周投诉分析
    regulator_reply = "regulator_reply"  # 监管转办回复报告


class PenaltyRule(Model):
    """One item of the penalty catalogue (e.g. 第六条第2款B) and the sanction it carries."""

    __tablename__ = "penalty_rule"
    __table_args__ = (Index("ix_penalty_rule_tier_sort", "tier", "sort"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tier: Mapped[int] = mapped_column(Integer)
    clause: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text)
    sanction: Mapped[Sanction] = mapped_column(_enum(Sanction))
    fine_min: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    fine_max: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    score_deduction: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    withhold_performance_pay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    circular_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    legal_referral: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Chained liability (连带扣分): points and fine taken, on approval, from the department
    # head, the direct superior and the superior's superior of the person sanctioned.
    chain_head_points: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chain_head_fine: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chain_superior_points: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chain_superior_fine: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chain_superior2_points: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    chain_superior2_fine: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return self.clause


class Penalty(Model):
    """A penalty case against one staff member, from draft to service (and appeal)."""

    __tablename__ = "penalty"
    __table_args__ = (
        Index("ix_penalty_department_status", "department_id", "status"),
        Index("ix_penalty_staff_decided", "staff_id", "decided_at"),
        Index("ix_penalty_status_created", "status", "created_at"),
    )

    # Lists, exports and reports show these with every case: load them in the same query.
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    complaint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("complaint.id"), index=True)
    complaint: Mapped[Optional[Complaint]] = relationship()
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    staff: Mapped[Staff] = relationship(foreign_keys=[staff_id])
    # The staff member's department when the case was opened (scope and ledger).
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship()
    rule_id: Mapped[int] = mapped_column(ForeignKey("penalty_rule.id"), index=True)
    rule: Mapped[PenaltyRule] = relationship()
    source: Mapped[str] = mapped_column(String(16), default="complaint")  # complaint | inspection | overtime
    # What drafted the case automatically (e.g. "overtime:<deadline>:<due>"): once per miss.
    source_key: Mapped[Optional[str]] = mapped_column(String(120), unique=True)
    incident_date: Mapped[Optional[date]] = mapped_column(Date)
    facts: Mapped[str] = mapped_column(Text)
    sanction: Mapped[Sanction] = mapped_column(_enum(Sanction))
    fine_amount: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    score_deduction: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    withhold_performance_pay: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    circular_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Set when the notice is issued and the rule calls for a 通报; cleared when the 通报 is issued.
    circular_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    # The person sanctioned heads a department: 人事行政经理 proposes, 总经理 decides.
    subject_is_head: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The department head failed to act: 人事行政经理 proposes instead of the head.
    head_failed_to_act: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    status: Mapped[PenaltyStatus] = mapped_column(_enum(PenaltyStatus), default=PenaltyStatus.draft)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[created_by_id])
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    proposed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    proposed_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[proposed_by_id])
    proposed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    reviewed_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[reviewed_by_id])
    reviewed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[decided_by_id])
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    return_reason: Mapped[Optional[str]] = mapped_column(Text)
    issued_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    served_on: Mapped[Optional[date]] = mapped_column(Date)
    appeal_deadline: Mapped[Optional[date]] = mapped_column(Date)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Optimistic lock, as on complaints: a concurrent second step fails at flush.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    events: Mapped[list[PenaltyEvent]] = relationship(
        back_populates="penalty", order_by="PenaltyEvent.id", passive_deletes=True
    )
    appeals: Mapped[list[Appeal]] = relationship(back_populates="penalty", order_by="Appeal.id", passive_deletes=True)
    links: Mapped[list[PenaltyLink]] = relationship(
        back_populates="penalty", order_by="PenaltyLink.position", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return self.number or "—"


class PenaltyEvent(Model):
    """One line of a penalty case's append-only timeline."""

    __tablename__ = "penalty_event"
    __table_args__ = (Index("ix_penalty_event_penalty_at", "penalty_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalty.id", ondelete="CASCADE"))
    penalty: Mapped[Penalty] = relationship(back_populates="events")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    actor: Mapped[Optional[User]] = relationship(User)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[Optional[str]] = mapped_column(String(24))
    to_status: Mapped[Optional[str]] = mapped_column(String(24))
    note: Mapped[Optional[str]] = mapped_column(Text)
    data: Mapped[Optional[dict]] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"{self.action}@{self.at:%Y-%m-%d %H:%M}"


class PenaltyLink(Model):
    """One link of a penalty's liability chain, resolved from the org chart and frozen on approval.

    ``role`` is responsible, department_head, superior or superior_of_superior. A vacant
    post keeps its row with no staff (skipped, noted); a link is ``counted`` when it is
    deducted (a person appearing twice is deducted once, at the higher value).
    """

    __tablename__ = "penalty_link"
    __table_args__ = (
        UniqueConstraint("penalty_id", "role", name="uq_penalty_link_role"),
        Index("ix_penalty_link_staff", "staff_id", "counted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalty.id", ondelete="CASCADE"), index=True)
    penalty: Mapped[Penalty] = relationship(back_populates="links")
    role: Mapped[str] = mapped_column(String(24))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    staff_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    staff: Mapped[Optional[Staff]] = relationship(Staff)
    # The person's department when the chain was resolved (ledger per department).
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"))
    department: Mapped[Optional[Department]] = relationship(Department)
    points: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    fine: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    vacant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    counted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.role}:{self.staff_id}"


class Appeal(Model):
    """An employee's appeal (申诉) against a served penalty, and 总经理's decision."""

    __tablename__ = "appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    penalty_id: Mapped[int] = mapped_column(ForeignKey("penalty.id", ondelete="CASCADE"), index=True)
    penalty: Mapped[Penalty] = relationship(back_populates="appeals")
    filed_on: Mapped[date] = mapped_column(Date)
    grounds: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    recorded_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[recorded_by_id])
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decision: Mapped[Optional[str]] = mapped_column(String(12))  # upheld | reduced | revoked
    decision_reason: Mapped[Optional[str]] = mapped_column(Text)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[decided_by_id])
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The terms before the decision, so a reduction can be read back.
    previous_terms: Mapped[Optional[dict]] = mapped_column(JSON)


class Commendation(Model):
    """Praise of an employee (表扬): a letter, call or visit; may offset complaints in grading."""

    __tablename__ = "commendation"
    __table_args__ = (Index("ix_commendation_department_date", "department_id", "commended_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    staff: Mapped[Staff] = relationship()
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship()
    commended_on: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str] = mapped_column(String(16), default="letter")  # letter | call | visit | other
    content: Mapped[str] = mapped_column(Text)
    evidence_filename: Mapped[Optional[str]] = mapped_column(String(255))
    evidence_content_type: Mapped[Optional[str]] = mapped_column(String(120))
    evidence: Mapped[Optional[bytes]] = deferred(mapped_column(LargeBinary))
    offsets_complaint: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    recorded_by: Mapped[Optional[User]] = relationship(User)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.commended_on:%Y-%m-%d}"


class Document(Model):
    """An issued document (PDF) with its 文号: stored once, never regenerated.

    A correction is a new row whose ``supersedes_id`` names the old one; both stay.
    """

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("kind", "year", "seq", name="uq_document_kind_year_seq"),
        Index("ix_document_kind_issued", "kind", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[DocumentKind] = mapped_column(_enum(DocumentKind))
    number: Mapped[Optional[str]] = mapped_column(String(40), unique=True)
    year: Mapped[Optional[int]] = mapped_column(Integer)
    seq: Mapped[Optional[int]] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    penalty_id: Mapped[Optional[int]] = mapped_column(ForeignKey("penalty.id"), index=True)
    penalty: Mapped[Optional[Penalty]] = relationship()
    complaint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("complaint.id"), index=True)
    complaint: Mapped[Optional[Complaint]] = relationship()
    period: Mapped[Optional[str]] = mapped_column(String(16), index=True)  # e.g. 2026-11 (monthly circular)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64), default="application/pdf")
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    supersedes_id: Mapped[Optional[int]] = mapped_column(ForeignKey("document.id"), index=True)
    supersedes: Mapped[Optional[Document]] = relationship(remote_side=[id])
    superseded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    note: Mapped[Optional[str]] = mapped_column(Text)
    issued_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    issued_by: Mapped[Optional[User]] = relationship(User)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return self.number or self.title

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None


# --- Periodic reports, improvement measures, department grading ----------------------------------


class Report(Model):
    """A weekly or monthly complaint analysis: its PDF (an issued document) and its Excel workbook."""

    __tablename__ = "report"
    __table_args__ = (
        UniqueConstraint("kind", "period_start", name="uq_report_kind_period"),
        Index("ix_report_generated_at", "generated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # week | month (period kinds of app/analytics.py)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # the day after the last
    label: Mapped[str] = mapped_column(String(40))
    document_id: Mapped[Optional[int]] = mapped_column(ForeignKey("document.id"), index=True)
    document: Mapped[Optional[Document]] = relationship()
    xlsx: Mapped[Optional[bytes]] = deferred(mapped_column(LargeBinary))
    xlsx_size: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    xlsx_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    # Headline figures for the list and the message (received, change, on-time and satisfaction rates).
    summary: Mapped[Optional[dict]] = mapped_column(JSON)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    generated_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))  # None: the scheduled job
    generated_by: Mapped[Optional[User]] = relationship(User)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return self.label


class DepartmentMeasure(Model):
    """A department's improvement measures (整改措施) for a week or a month, written by its head."""

    __tablename__ = "department_measure"
    __table_args__ = (
        UniqueConstraint("department_id", "period_kind", "period_start", name="uq_department_measure_period"),
        Index("ix_department_measure_period", "period_kind", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship()
    period_kind: Mapped[str] = mapped_column(String(8), default="month")  # week | month
    period_start: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    author: Mapped[Optional[User]] = relationship(User)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"{self.period_start:%Y-%m-%d}"


class GradingRun(Model):
    """One period's department grading (考核定级): computed, shown for 公示, confirmed by 总经理."""

    __tablename__ = "grading_run"
    __table_args__ = (UniqueConstraint("period_kind", "period_start", name="uq_grading_run_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_kind: Mapped[str] = mapped_column(String(8), default="month")
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # the day after the last
    label: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="publicity", index=True)  # publicity | confirmed
    # The formula the grades were computed with (settings may change later).
    formula: Mapped[Optional[dict]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    publicity_until: Mapped[datetime] = mapped_column(UTCDateTime)
    gm_notified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    confirmed_by: Mapped[Optional[User]] = relationship(User)
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    circular_id: Mapped[Optional[int]] = mapped_column(ForeignKey("document.id"))
    circular: Mapped[Optional[Document]] = relationship()

    grades: Mapped[list[DepartmentGrade]] = relationship(
        back_populates="run", order_by="DepartmentGrade.id", passive_deletes=True
    )

    def __repr__(self) -> str:
        return self.label


class DepartmentGrade(Model):
    """A department's score and grade in a grading run, with the objection and final decision."""

    __tablename__ = "department_grade"
    __table_args__ = (
        UniqueConstraint("run_id", "department_id", name="uq_department_grade_run"),
        Index("ix_department_grade_department_run", "department_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("grading_run.id", ondelete="CASCADE"))
    run: Mapped[GradingRun] = relationship(back_populates="grades")
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship()
    score: Mapped[float] = mapped_column(Float)
    # Each component's figures, score and weight; the inputs; the bonus (see app/grading.py).
    components: Mapped[Optional[dict]] = mapped_column(JSON)
    grade: Mapped[str] = mapped_column(String(12))  # first | second | third | below
    capped_by: Mapped[Optional[list]] = mapped_column(JSON)
    objection: Mapped[Optional[str]] = mapped_column(Text)
    objected_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    objected_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[objected_by_id])
    objected_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    final_grade: Mapped[Optional[str]] = mapped_column(String(12))
    note: Mapped[Optional[str]] = mapped_column(Text)  # 总经理's reason when the final grade differs
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[decided_by_id])
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"{self.run} {self.department}" if self.run is not None else str(self.id)


__all__ = [
    "Appeal",
    "Attachment",
    "CalendarOverride",
    "Category",
    "Channel",
    "Complaint",
    "ComplaintEvent",
    "ComplaintStatus",
    "Counter",
    "Customer",
    "Commendation",
    "Deadline",
    "Dispute",
    "Delivery",
    "Department",
    "DepartmentGrade",
    "DepartmentMeasure",
    "Document",
    "DocumentKind",
    "Extension",
    "FollowUp",
    "GradingRun",
    "CustomerCount",
    "StatDaily",
    "StatDirty",
    "JobRun",
    "Level",
    "Notification",
    "OPEN_STATUSES",
    "Penalty",
    "PenaltyEvent",
    "PenaltyRule",
    "PenaltyStatus",
    "ReplyScript",
    "Report",
    "Sanction",
    "Satisfaction",
    "Setting",
    "SlaRule",
    "Staff",
    "User",
    "UTCDateTime",
    "Unit",
    "UnitKind",
    "Validity",
    "complaint_staff",
]


class AccessLog(Model):
    """Append-only security and privacy log: sign-in failures, lock-outs, reveals of
    personal data, exports. On PostgreSQL a trigger refuses UPDATE and DELETE."""

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_at", "at"),
        Index("ix_access_log_target", "target_type", "target_id"),
        Index("ix_access_log_username_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    user: Mapped[Optional[User]] = relationship(User)
    # The name typed at sign-in (also for unknown users) or the acting user's name.
    username: Mapped[Optional[str]] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    target_type: Mapped[Optional[str]] = mapped_column(String(40))
    target_id: Mapped[Optional[int]] = mapped_column(Integer)
    ip: Mapped[Optional[str]] = mapped_column(String(64))
    detail: Mapped[Optional[str]] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"{self.action}@{self.at:%Y-%m-%d %H:%M}"


class RateLimitCounter(Model):
    """Counters shared by every worker: Flask-Limiter's login limits (``portaldb://`` storage)
    and the failed sign-ins of names that are no account. A counter ends at ``expires_at``
    (seconds since the epoch, as the ``limits`` library counts)."""

    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float)


class SessionCutoff(Model):
    """Sessions and JWTs of the user issued before ``not_before`` are refused (set by a lock-out)."""

    __tablename__ = "session_cutoff"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)


# --- Service phrases: 服务忌语 and 文明用语 ------------------------------------------------------


class PhraseKind(str, enum.Enum):
    forbidden = "forbidden"  # 服务忌语
    civil = "civil"  # 文明用语


class ServicePhrase(Model):
    """One entry of the forbidden (服务忌语) or civil (文明用语) phrase list.

    ``phrase`` may stand for several phrases: ``、`` separates words, a bracket at the
    end is an alternative (``你管不着(你少管闲事)``), a bracket inside is optional
    (app/complaints/phrases.py reads it). A guideline row is listed but never matched.
    """

    __tablename__ = "service_phrase"
    __table_args__ = (
        UniqueConstraint("kind", "phrase", name="uq_service_phrase_kind_phrase"),
        Index("ix_service_phrase_kind_sort", "kind", "sort"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[PhraseKind] = mapped_column(_enum(PhraseKind, 16))
    # Item number in the policy list (seed 000, 顾客投诉服务标准); empty for added rows.
    number: Mapped[Optional[int]] = mapped_column(Integer)
    phrase: Mapped[str] = mapped_column(String(255))
    category: Mapped[Optional[str]] = mapped_column(String(64))
    suggestion: Mapped[Optional[str]] = mapped_column(Text)
    # The policy's own wording where ``phrase`` had to be cut out of a sentence.
    note: Mapped[Optional[str]] = mapped_column(Text)
    # Compound words in which the phrase is harmless (老头乐 for 老头; one per line or 、).
    exceptions: Mapped[Optional[str]] = mapped_column(Text)
    is_guideline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    sort: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return self.phrase


class PhraseHit(Model):
    """A forbidden phrase a staff member saved in a customer-facing text after confirming it."""

    __tablename__ = "phrase_hit"
    __table_args__ = (
        Index("ix_phrase_hit_staff_at", "staff_id", "at"),
        Index("ix_phrase_hit_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    user: Mapped[Optional[User]] = relationship(User)
    staff_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    staff: Mapped[Optional[Staff]] = relationship(Staff)
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"))
    complaint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    # Where the text was saved: a case field (reply_text, polite_reply …) or "reply_script".
    source: Mapped[str] = mapped_column(String(40))
    phrase: Mapped[str] = mapped_column(String(255))
    phrase_id: Mapped[Optional[int]] = mapped_column(ForeignKey("service_phrase.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"{self.phrase}@{self.at:%Y-%m-%d %H:%M}"


class CorrectiveAction(Model):
    """整改措施 (纠正与预防) of a valid complaint: what, who, by when; done, then verified at follow-up."""

    __tablename__ = "corrective_action"
    __table_args__ = (
        Index("ix_corrective_action_complaint", "complaint_id"),
        Index(
            "ix_corrective_action_open_due",
            "due_at",
            postgresql_where=text("state = 'open'"),
            sqlite_where=text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"))
    complaint: Mapped[Complaint] = relationship()
    # temporary (临时对策) | permanent (永久对策) | general (整改措施)
    kind: Mapped[str] = mapped_column(String(16), default="general")
    description: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    owner: Mapped[Staff] = relationship()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # open -> done -> verified; a failed verification reopens it (state open again).
    state: Mapped[str] = mapped_column(String(12), default="open")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[created_by_id])
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    done_note: Mapped[Optional[str]] = mapped_column(Text)
    verified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    verified_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    verified_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[verified_by_id])
    verify_note: Mapped[Optional[str]] = mapped_column(Text)
    overdue_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    escalated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return self.description[:30] if self.description else "—"


# --- Dissatisfaction tickets (不满工单) ----------------------------------------------------


class Grievance(Model):
    """A grievance settled on the spot (不满工单): no dispatch, no penalty, counted apart.

    At creation it reserves a complaint number (TS…): if the customer comes back, the
    ticket converts into a complaint that keeps this number and the ticket's time of
    receipt, so the complaint's clock runs from the first contact.
    """

    __tablename__ = "grievance"
    __table_args__ = (Index("ix_grievance_department_received", "department_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    channel: Mapped[Channel] = relationship(lazy="joined")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    customer: Mapped[Customer] = relationship(lazy="joined")
    # The department the grievance is about (optional: many are about the company as a whole).
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Optional[Department]] = relationship(lazy="joined")
    content: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)
    accepted: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    recorded_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[recorded_by_id])
    # Set when the customer came back and the ticket became a complaint.
    complaint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("complaint.id", ondelete="SET NULL"), unique=True)
    complaint: Mapped[Optional[Complaint]] = relationship(foreign_keys=[complaint_id])
    converted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return self.number or "—"

    @property
    def is_converted(self) -> bool:
        return self.complaint_id is not None


# --- Clustered complaints (集中性投诉 / 群体性投诉) --------------------------------------------


cluster_complaint = Table(
    "cluster_complaint",
    Model.metadata,
    Column("cluster_id", ForeignKey("cluster.id", ondelete="CASCADE"), primary_key=True),
    Column("complaint_id", ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Cluster(Model):
    """Complaints about the same problem (similar texts) against one department within a calendar
    month (集中性投诉, app/complaints/cluster_scan.py), or linked by hand.

    ``key`` makes a detected cluster unique (department, month, first case): the job that finds
    it again adds new cases to it instead of creating another.
    """

    __tablename__ = "cluster"
    __table_args__ = (Index("ix_cluster_department_status", "department_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # concentrated (集中性投诉) | group (群体性投诉)
    kind: Mapped[str] = mapped_column(String(16), default="concentrated")
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    department: Mapped[Department] = relationship(lazy="joined")
    category_id: Mapped[Optional[int]] = mapped_column(ForeignKey("category.id"))
    category: Mapped[Optional[Category]] = relationship(lazy="joined")
    key: Mapped[Optional[str]] = mapped_column(String(120), unique=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # open | closed
    status: Mapped[str] = mapped_column(String(8), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None: detected by the job.
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    created_by: Mapped[Optional[User]] = relationship(User, foreign_keys=[created_by_id])
    note: Mapped[Optional[str]] = mapped_column(Text)
    replied_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    complaints: Mapped[list[Complaint]] = relationship(secondary=cluster_complaint, order_by="Complaint.received_at")

    def __repr__(self) -> str:
        return f"#{self.id} {self.department.name if self.department else ''}"


# --- System-managed columns and immutable records ---------------------------------------------

#: Columns only the application writes (numbers, hashes, versions, issuers, recipients, owners,
#: timestamps, dedup keys, status and the stamps of lifecycle steps). They carry
#: ``info["system"] = True``; the base screen and REST classes (app/views/base.py) drop them from
#: every add and edit form and schema, so a new column listed here is protected everywhere.
SYSTEM_MANAGED: dict[type, tuple[str, ...]] = {
    Setting: ("updated_at",),
    Customer: ("created_at", "anonymised_at"),
    Complaint: (
        "number",
        "registered_at",
        "first_responder_id",
        "status",
        "validity",
        "judged_at",
        "dispatched_at",
        "escalated_to_head_office_at",
        "escalated_to_head_office_by_id",
        "signed_at",
        "investigation_started_at",
        "planned_at",
        "replied_at",
        "fed_back_at",
        "followed_up_at",
        "closed_at",
        "archived_at",
        "anonymised_at",
        "investigate_due",
        "reply_due",
        "follow_up_due",
        "next_due_at",
        "overdue",
        "warned",
        "supervised",
        "is_repeat",
        "repeat_of_id",
        "reopen_count",
        "paused_since",
        "case_type",
        "original_id",
        "customer_informed_at",
        "customer_informed_by_id",
        "updated_at",
        "version",
    ),
    Attachment: ("size", "sha256", "data", "uploaded_by_id", "uploaded_at"),
    CalendarOverride: ("updated_at",),
    SlaRule: ("updated_at",),
    Extension: ("requested_by_id", "requested_at", "status", "decided_by_id", "decided_at", "old_due_at", "new_due_at"),
    ClockPause: ("requested_by_id", "approved_by_id", "decided_at", "state", "working_minutes", "natural_minutes"),
    Dispute: ("objected_by_id", "at", "state", "ruled_by_id", "ruled_at"),
    Notification: ("user_id", "kind", "title", "body", "complaint_id", "link", "created_at", "read_at", "dedup_key"),
    FollowUp: ("called_by_id", "department_id"),
    PenaltyRule: ("updated_at",),
    Penalty: (
        "number",
        "department_id",
        "source",
        "source_key",
        "subject_is_head",
        "status",
        "created_by_id",
        "created_at",
        "proposed_by_id",
        "proposed_at",
        "reviewed_by_id",
        "reviewed_at",
        "decided_by_id",
        "decided_at",
        "issued_at",
        "revoked_at",
        "updated_at",
        "version",
    ),
    Appeal: ("recorded_by_id", "recorded_at", "decided_by_id", "decided_at", "previous_terms"),
    Commendation: ("department_id", "evidence", "recorded_by_id", "recorded_at"),
    Document: (
        "kind",
        "number",
        "year",
        "seq",
        "penalty_id",
        "complaint_id",
        "filename",
        "content_type",
        "size",
        "sha256",
        "content",
        "version",
        "supersedes_id",
        "superseded_at",
        "issued_by_id",
        "issued_at",
    ),
    Report: (
        "document_id",
        "xlsx",
        "xlsx_size",
        "xlsx_sha256",
        "summary",
        "generated_at",
        "generated_by_id",
        "sent_at",
    ),
    DepartmentMeasure: ("author_id", "updated_at"),
    GradingRun: ("status", "opened_at", "gm_notified_at", "confirmed_by_id", "confirmed_at", "circular_id"),
    DepartmentGrade: (
        "score",
        "components",
        "grade",
        "capped_by",
        "objected_by_id",
        "objected_at",
        "decided_by_id",
        "decided_at",
    ),
    ServicePhrase: ("updated_at",),
    CorrectiveAction: (
        "state",
        "created_by_id",
        "created_at",
        "done_at",
        "verified_at",
        "verified_by_id",
        "overdue_at",
        "escalated_at",
    ),
    Grievance: ("number", "registered_at", "recorded_by_id", "complaint_id", "converted_at"),
    Cluster: ("key", "first_seen", "last_seen", "status", "created_at", "created_by_id", "replied_at"),
}

#: Records nobody edits through a generic screen or resource: issued documents, timelines,
#: notifications (their recipients; marking read is its own endpoint), the access log and other
#: audit trails. The base classes give them no generic add, edit or delete.
IMMUTABLE_RECORDS: tuple[type, ...] = (
    Document,
    ComplaintEvent,
    PenaltyEvent,
    Notification,
    AccessLog,
    PhraseHit,
    Delivery,
)

for _model, _names in SYSTEM_MANAGED.items():
    for _name in _names:
        _model.__table__.columns[_name].info["system"] = True
for _model in IMMUTABLE_RECORDS:
    for _column in _model.__table__.columns:
        _column.info["system"] = True


def system_managed(model: type) -> frozenset[str]:
    """The attribute names of ``model`` that only the application writes: its system columns,
    its binary contents, and the relationships whose foreign keys are system columns."""
    table = model.__table__
    names = {
        prop.key
        for prop in model.__mapper__.column_attrs
        if any(c.info.get("system") or isinstance(c.type, LargeBinary) for c in prop.columns if c.table is table)
    }
    for rel in model.__mapper__.relationships:
        local = [c for c in rel.local_columns if c.table is table]
        if local and all(c.info.get("system") for c in local):
            names.add(rel.key)
    return frozenset(names)


# --- complaint.head_named ------------------------------------------------------------------


def _changed(obj: Any, *names: str) -> bool:
    state = sa_inspect(obj)
    # committed_state holds the attributes set since the load: a cheap look before the history
    # (a deadline scan flushes thousands of cases whose flags alone changed).
    return any(name in state.committed_state and state.attrs[name].history.has_changes() for name in names)


def _head_of(department: Department) -> Optional[int]:
    """The department's head (a staff id) as it will be flushed: the relation when it was set
    since the load, else the key."""
    if _changed(department, "head"):
        return department.head.id if department.head is not None else None
    return department.head_id


@event.listens_for(Session, "before_flush")
def keep_head_named(session: Session, _context: Any, _instances: Any) -> None:
    """Keep ``complaint.head_named`` true exactly when the head of the case's department is one of
    its complained staff: a case written with new staff or another department is set here, and
    a department's new head sets every case of the department."""
    with session.no_autoflush:
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, Complaint) and (
                obj in session.new or _changed(obj, "staff", "department_id", "department")
            ):
                # Whichever of the relation and the key was set last is the one that changed.
                if _changed(obj, "department") or obj.department_id is None:
                    department = obj.department
                else:
                    department = session.get(Department, obj.department_id)
                head = _head_of(department) if department is not None else None
                named = head is not None and any(s.id == head for s in obj.staff)
                if obj.head_named is not named:
                    obj.head_named = named
            elif isinstance(obj, Department) and obj not in session.new and _changed(obj, "head_id", "head"):
                head = _head_of(obj)
                table = Complaint.__table__
                named = exists().where(complaint_staff.c.complaint_id == table.c.id, complaint_staff.c.staff_id == head)
                session.connection().execute(
                    update(table)
                    .where(table.c.department_id == obj.id)
                    .values(head_named=named if head is not None else false())
                )
