"""Notifications: the in-app inbox, and e-mail / 企业微信 / 钉钉 deliveries with retries.

Creating a notification never sends anything inline: it writes inbox rows and
``delivery`` rows in the caller's transaction. The ``deliver_notifications`` job
sends pending deliveries; a failing channel is retried with back-off and logged,
and never blocks the other channels or the case.
"""

from __future__ import annotations

import functools
import json
import logging
import smtplib
import time as _time
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Optional

import requests
from flask import current_app
from flask_appbuilder.security.sqla.models import Role, User
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from app import settings
from app.access.roles import DEPARTMENT_HEAD
from app.extensions import insert_or_skip
from app.models import Complaint, Delivery, Department, Notification, Staff
from app.time_limits.deadlines import FIRST_RESPONDER, HEAD_TOKEN
from app.timeutil import format_local, utcnow

log = logging.getLogger(__name__)

RETRY_MINUTES = (1, 2, 5, 15, 30, 60)


Recipient = tuple[int, Optional[str]]  # user id, e-mail

# Message kinds that ask nobody to act (知会) unless the sender says otherwise.
INFO_KINDS = frozenset({"digest", "report"})


def _insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Bulk insert, skipping rows whose dedup_key exists already."""
    if not rows:
        return
    # RETURNING makes SQLAlchemy batch the rows into multi-row INSERTs (insertmanyvalues);
    # without it an ON CONFLICT insert goes through psycopg2's executemany, a round trip per row.
    session.execute(insert_or_skip(model.__table__, "dedup_key", "dedup_key"), rows).all()


@functools.cache
def _role_members() -> Any:
    """The active users of some roles: every registration and step asks it, so it is built once
    (at first use: FAB's User gets its ``roles`` when the mappers are configured)."""
    return (
        select(Role.name, User.id, User.email)
        .join(User.roles)
        .where(Role.name.in_(bindparam("names", expanding=True)), User.active.is_(True))
        .order_by(Role.name, User.id)
    )


class Outbox:
    """Collects messages of one transaction and writes them in bulk.

    Recipients are resolved once per role and department (a deadline scan sends
    hundreds of messages to the same few people).
    """

    def __init__(self, session: Session, now: Optional[datetime] = None):
        self.session = session
        self.now = now or utcnow()
        self.notifications: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self._roles: dict[str, list[Recipient]] = {}
        self._heads: dict[int, list[Recipient]] = {}
        self._heads_read = False
        self._users: dict[int, Recipient] = {}
        # Repeats of a message (same user, case and title) within the digest window are merged.
        self.window = timedelta(minutes=int(settings.get(session, "notify.digest_minutes") or 0))
        self._recent: dict[Optional[int], set[tuple[int, str]]] = {}
        self.email_on = bool(current_app.config.get("MAIL_SERVER")) and bool(
            settings.get(session, "notify.email_enabled")
        )
        self.robots = [
            (channel, url)
            for channel, key in (("wecom", "notify.wecom_webhook"), ("dingtalk", "notify.dingtalk_webhook"))
            if (url := (settings.get(session, key) or "").strip())
        ]

    # --- recipients -----------------------------------------------------------------------

    def role(self, name: str) -> list[Recipient]:
        if name not in self._roles:
            self._load_roles([name])
        return self._roles[name]

    def _load_roles(self, names: Iterable[str]) -> None:
        """The active users of the roles not read yet, in one query."""
        wanted = sorted({n for n in names if n not in self._roles})
        if not wanted:
            return
        for name in wanted:
            self._roles[name] = []
        for r in self.session.execute(_role_members(), {"names": wanted}):
            self._roles[r.name].append((r.id, r.email))

    def prefetch(self, tokens: Iterable[str]) -> None:
        """Read now who the tokens name (roles, department heads), for messages added later."""
        tokens = [t.strip() for t in tokens]
        self._load_roles(t for t in tokens if t and t not in (FIRST_RESPONDER, HEAD_TOKEN))
        if HEAD_TOKEN in tokens:
            self.heads(0)

    def heads(self, department_id: int) -> list[Recipient]:
        """The department heads of a department: its head, and its staff holding the head's role.

        Read for every department at once, the first time (a scan batch tells the heads of
        many departments; a company has tens of them, not thousands)."""
        if not self._heads_read:
            self._heads_read = True
            stmt = (
                select(Department.id.label("department_id"), User.id, User.email)
                .join(Staff, or_(Department.head_id == Staff.id, Staff.department_id == Department.id))
                .join(User, Staff.user_id == User.id)
                .join(User.roles)
                .where(User.active.is_(True), Role.name == DEPARTMENT_HEAD)
                .distinct()
                .order_by(Department.id, User.id)
            )
            for r in self.session.execute(stmt):
                self._heads.setdefault(r.department_id, []).append((r.id, r.email))
        return self._heads.get(department_id, [])

    def user(self, user_id: Optional[int]) -> list[Recipient]:
        if user_id is None:
            return []
        if user_id not in self._users:
            row = self.session.execute(select(User.id, User.email).where(User.id == user_id)).first()
            self._users[user_id] = (row.id, row.email) if row else (user_id, None)
        return [self._users[user_id]]

    def recipients(self, tokens: Iterable[str], complaint: Optional[Complaint] = None) -> list[Recipient]:
        found: list[Recipient] = []
        tokens = [t.strip() for t in tokens]
        self._load_roles(t for t in tokens if t and t not in (FIRST_RESPONDER, HEAD_TOKEN))
        for token in tokens:
            if not token:
                continue
            if token == FIRST_RESPONDER:
                found += self.user(complaint.first_responder_id) if complaint is not None else []
            elif token == HEAD_TOKEN:
                found += self.heads(complaint.department_id) if complaint is not None else []
            else:
                found += self.role(token)
        return found

    # --- messages -------------------------------------------------------------------------

    def add(
        self,
        recipients: Iterable[Recipient],
        kind: str,
        title: str,
        body: str = "",
        complaint_id: Optional[int] = None,
        dedup_key: Optional[str] = None,
        webhook: bool = False,
        link: Optional[str] = None,
        category: Optional[str] = None,
    ) -> int:
        """Queue a message for each recipient; ``link`` defaults to the complaint's case page.

        ``category`` is todo (待办, the default) or info (知会; the default for INFO_KINDS). A repeat
        of a message the user got within the digest window is merged into it (not sent again).
        """
        if link is None and complaint_id:
            link = f"/complaintview/show/{complaint_id}"
        category = category or ("info" if kind in INFO_KINDS else "todo")
        title = title[:200]
        recent = self._recent_titles(complaint_id)
        seen: set[int] = set()
        merged = False
        for user_id, email in recipients:
            if (user_id, title) in recent and user_id not in seen:
                merged = True
            if user_id in seen or (user_id, title) in recent:
                continue
            seen.add(user_id)
            recent.add((user_id, title))
            key = f"{dedup_key}:{user_id}" if dedup_key else None
            self.notifications.append(
                dict(
                    user_id=user_id,
                    kind=kind,
                    category=category,
                    title=title,
                    body=body,
                    complaint_id=complaint_id,
                    link=link,
                    created_at=self.now,
                    read_at=None,
                    dedup_key=key,
                )
            )
            if self.email_on and email:
                self._delivery("email", email, title, _with_link(body, link), f"{key}:email" if key else None)
        if webhook and not (merged and not seen):  # a repeat within the window goes to the robots once
            for channel, url in self.robots:
                self._delivery(
                    channel, url, title, _with_link(body, link), f"{dedup_key}:{channel}" if dedup_key else None
                )
        return len(seen)

    def new_case(self, complaint_id: Optional[int]) -> None:
        """The case was registered in this transaction: its registration message is the first
        of its kind (its title carries the new number), so there is nothing to merge it with."""
        if complaint_id is not None:
            self._recent.setdefault(complaint_id, set())

    def _recent_titles(self, complaint_id: Optional[int]) -> set[tuple[int, str]]:
        """(user, title) of the case's messages within the digest window, and those queued since."""
        if complaint_id is None or not self.window:
            return set()
        if complaint_id not in self._recent:
            self.read_recent([complaint_id])
        return self._recent[complaint_id]

    def read_recent(self, complaint_ids: Iterable[int]) -> None:
        """Read the messages of these cases within the digest window, in one query (a scan
        batch's cases at once). Nothing is flushed first: what this outbox queued is kept apart."""
        wanted = [c for c in complaint_ids if c is not None and c not in self._recent]
        if not wanted or not self.window:
            return
        with self.session.no_autoflush:
            rows = self.session.execute(
                select(Notification.complaint_id, Notification.user_id, Notification.title).where(
                    Notification.complaint_id.in_(wanted),
                    Notification.created_at > self.now - self.window,
                    Notification.created_at <= self.now,
                )
            ).all()
        for complaint_id in wanted:
            self._recent[complaint_id] = set()
        for row in rows:
            self._recent[row.complaint_id].add((row.user_id, row.title))

    def _delivery(self, channel: str, target: str, subject: str, body: str, key: Optional[str]) -> None:
        self.deliveries.append(
            dict(
                channel=channel,
                target=target,
                subject=subject[:200],
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=self.now,
                created_at=self.now,
                dedup_key=key,
            )
        )

    def flush(self) -> int:
        count = len(self.notifications)
        _insert(self.session, Notification, self.notifications)
        _insert(self.session, Delivery, self.deliveries)
        self.notifications, self.deliveries = [], []
        return count


def users_for(session: Session, token: str, complaint: Optional[Complaint] = None) -> list[User]:
    """Active users behind a role token (a role name, department_head, first_responder)."""
    ids = [uid for uid, _ in Outbox(session).recipients([token], complaint)]
    if not ids:
        return []
    return list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)))


def department_heads(session: Session, department_id: int) -> list[User]:
    """The head(s) of a department: its ``head`` staff record or 部门主管 users in it."""
    ids = [uid for uid, _ in Outbox(session).heads(department_id)]
    return list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id))) if ids else []


def notify(
    session: Session,
    users: Iterable[User],
    kind: str,
    title: str,
    body: str = "",
    complaint: Optional[Complaint] = None,
    dedup_key: Optional[str] = None,
    now: Optional[datetime] = None,
    webhook: bool = False,
    link: Optional[str] = None,
    category: Optional[str] = None,
) -> int:
    """Put a message in each user's inbox and queue its e-mail (and the group robots).

    ``link`` is the page the message opens (default: the complaint's case page); ``category``
    todo (待办) or info (知会), see ``Outbox.add``.
    """
    outbox = Outbox(session, now)
    count = outbox.add(
        [(u.id, u.email) for u in users if u is not None],
        kind,
        title,
        body,
        complaint.id if complaint is not None else None,
        dedup_key,
        webhook,
        link=link,
        category=category,
    )
    outbox.flush()
    return count


def _with_link(body: str, link: Optional[str]) -> str:
    if not link:
        return body
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    return f"{body}\n{base}{link}" if body else f"{base}{link}"


CATEGORIES = ("todo", "info")


def mark_read(
    session: Session,
    user_id: int,
    now: datetime,
    ids: Optional[Iterable[int]] = None,
    category: Optional[str] = None,
) -> int:
    """Mark the user's unread messages read: those of ``ids`` (all when None), of one category if given.

    Only the user's own messages are touched, whatever ids are given. The caller commits.
    """
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    if category is not None:
        stmt = stmt.where(Notification.category == category)
    return int(session.execute(stmt.values(read_at=now), execution_options={"synchronize_session": False}).rowcount)


UNREAD_SHOWN = 99  # the bell shows up to this many, then "99+"


def unread_count(session: Session, user_id: int, cap: int = UNREAD_SHOWN) -> int:
    """The user's unread messages, counted up to ``cap`` + 1: the bell on every page needs no more
    (a 总经理 with tens of thousands unread cost 40 ms a page counting them all)."""
    return int(session.scalar(_UNREAD, {"user_id": user_id, "first": cap + 1}) or 0)


# Every page asks it (the bell), so it is built once.
_UNREAD = select(func.count()).select_from(
    select(Notification.id)
    .where(Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))
    .limit(bindparam("first"))
    .subquery()
)


# --- Delivery ---------------------------------------------------------------------------------


def _send(delivery: Delivery) -> None:
    config = current_app.config
    if delivery.channel == "email":
        message = EmailMessage()
        message["Subject"] = delivery.subject
        message["From"] = config.get("MAIL_FROM", "complaints@localhost")
        message["To"] = delivery.target
        message.set_content(delivery.body or delivery.subject)
        with smtplib.SMTP(config["MAIL_SERVER"], int(config.get("MAIL_PORT", 25)), timeout=10) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD", ""))
            smtp.send_message(message)
        return
    text = f"**{delivery.subject}**\n\n{delivery.body or ''}"
    if delivery.channel == "wecom":
        payload = {"msgtype": "markdown", "markdown": {"content": text}}
    elif delivery.channel == "dingtalk":
        payload = {"msgtype": "markdown", "markdown": {"title": delivery.subject, "text": text}}
    else:
        raise ValueError(f"unknown channel {delivery.channel}")
    response = requests.post(
        delivery.target,
        data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    response.raise_for_status()
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    # Both robots answer 200 with errcode != 0 when they refuse a message.
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        raise RuntimeError(f"robot refused: {answer}")


LEASE = timedelta(minutes=5)


def deliver_pending(session: Session, now: datetime, limit: int = 200, budget_seconds: float = 45.0) -> dict[str, Any]:
    """Send pending deliveries batch after batch until none is due or the time budget is spent."""
    started = _time.monotonic()
    totals = {"sent": 0, "retrying": 0, "failed": 0}
    while _time.monotonic() - started < budget_seconds:
        done = _deliver_batch(session, now, limit)
        for key in totals:
            totals[key] += done[key]
        if sum(done.values()) < limit:
            break
    return totals


def _deliver_batch(session: Session, now: datetime, limit: int) -> dict[str, Any]:
    """Send what is due; failures are retried with back-off up to NOTIFY_MAX_ATTEMPTS.

    Rows are first claimed with a short lease (committed), so that another scheduler
    skips them, and a process that dies mid-way leaves them to be retried.
    """
    max_attempts = int(current_app.config.get("NOTIFY_MAX_ATTEMPTS", 5))
    stmt = (
        select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = session.scalars(stmt).all()
    for delivery in claimed:
        delivery.next_attempt_at = now + LEASE
    session.commit()
    sent = failed = retried = 0
    for delivery in claimed:
        delivery.attempts += 1
        try:
            _send(delivery)
        except Exception as exc:  # any transport error: log, back off, try again later
            delivery.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            if delivery.attempts >= max_attempts:
                delivery.status = "failed"
                failed += 1
                log.error(
                    "delivery %s via %s to %s failed for good: %s",
                    delivery.id,
                    delivery.channel,
                    delivery.target,
                    delivery.last_error,
                )
            else:
                wait = RETRY_MINUTES[min(delivery.attempts - 1, len(RETRY_MINUTES) - 1)]
                delivery.next_attempt_at = now + timedelta(minutes=wait)
                retried += 1
                log.warning(
                    "delivery %s via %s failed (attempt %d), retry at %s: %s",
                    delivery.id,
                    delivery.channel,
                    delivery.attempts,
                    format_local(delivery.next_attempt_at),
                    delivery.last_error,
                )
        else:
            delivery.status = "sent"
            delivery.sent_at = now
            delivery.last_error = None
            sent += 1
        session.commit()
    return {"sent": sent, "retrying": retried, "failed": failed}
