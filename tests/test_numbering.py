"""Complaint numbers: TS{Beijing date}-{sequence}, unique and gap-free per day.

People quote these numbers on the phone and in documents, so a day's numbers run
1, 2, 3 … with no hole (a refused or rolled-back registration gives its number
back) and no duplicate, also when several desks register at the same moment.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from http_clients import Client
from sqlalchemy import select

from app import db
from app.complaints import intake
from app.models import Category, Channel, Complaint, Department, Level


def _numbers() -> list[str]:
    numbers = list(db.session.scalars(select(Complaint.number).order_by(Complaint.number)))
    db.session.rollback()
    return numbers


def test_numbers_run_from_one_each_day_without_gaps(app, make_complaint):
    day1 = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    day2 = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    for minute in range(3):
        make_complaint(now=day1.replace(minute=minute))
    for minute in range(2):
        make_complaint(now=day2.replace(minute=minute))
    make_complaint(now=day1.replace(minute=59))  # a late entry for the first day

    assert _numbers() == [
        "TS20260929-00001",
        "TS20260929-00002",
        "TS20260929-00003",
        "TS20260929-00004",
        "TS20260930-00001",
        "TS20260930-00002",
    ]


def test_the_day_of_a_number_is_the_beijing_calendar_day(app, make_complaint):
    # 15:59 UTC is 23:59 in Beijing; 16:00 UTC is already the next day there.
    before_midnight = make_complaint(now=datetime(2026, 9, 30, 15, 59, tzinfo=UTC))
    after_midnight = make_complaint(now=datetime(2026, 9, 30, 16, 0, tzinfo=UTC))

    assert before_midnight.number == "TS20260930-00001"
    assert after_midnight.number == "TS20261001-00001"


def test_the_day_of_a_number_is_the_registration_day_not_the_day_received(app, make_complaint):
    letter = make_complaint(
        received_at=datetime(2026, 9, 20, 9, 0, tzinfo=UTC), now=datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    )

    assert letter.number == "TS20260930-00001"


def test_a_rolled_back_registration_gives_its_number_back(app, make_complaint):
    now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    make_complaint(now=now)
    abandoned = make_complaint(now=now, commit=False)
    assert abandoned.number == "TS20260930-00002"
    db.session.rollback()

    taken = make_complaint(now=now)

    assert taken.number == "TS20260930-00002"
    assert _numbers() == ["TS20260930-00001", "TS20260930-00002"]


def test_a_refused_registration_uses_no_number(app, org):
    api = Client(app, "kefu", api=True)
    body = {
        "content": "门禁卡失效",
        "customer_name": "赵女士",
        "customer_phone": "13800138000",
        "channel": db.session.scalars(select(Channel.id).where(Channel.code == "phone")).one(),
        "category": db.session.scalars(select(Category.id).where(Category.code == "other")).one(),
        "level": db.session.scalars(select(Level.id).where(Level.code == "normal")).one(),
        "department": org.dept("BA").id,
    }
    db.session.rollback()
    assert api.post("/api/v1/complaint/", json=dict(body, customer_phone="12345")).status_code == 422
    assert api.post("/api/v1/complaint/", json=dict(body, content="")).status_code == 422

    r = api.post("/api/v1/complaint/", json=body)

    assert r.status_code == 201, r.json
    assert r.json["result"]["number"].endswith("-00001")


def test_numbers_are_unique_in_the_database(app, make_complaint):
    from sqlalchemy.exc import IntegrityError

    first = make_complaint()
    duplicate = make_complaint(commit=False)
    duplicate.number = first.number

    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def _register_in_own_session(app: Any, actor_id: int, department_id: int, phone: str, now: datetime) -> str:
    with app.app_context():
        try:
            data = {
                "received_at": None,
                "channel": db.session.scalars(select(Channel).where(Channel.code == "phone")).one(),
                "customer_name": "并发客户",
                "customer_phone": phone,
                "content": "并发登记测试",
                "category": db.session.scalars(select(Category).where(Category.code == "other")).one(),
                "level": db.session.scalars(select(Level).where(Level.code == "normal")).one(),
                "department": db.session.get(Department, department_id),
                "staff": [],
            }
            complaint = intake.register_complaint(db.session, actor_id, data, now=now)
            db.session.commit()
            return complaint.number
        finally:
            db.session.remove()


@pytest.mark.postgres_only
def test_concurrent_registrations_get_numbers_one_to_n_without_duplicates(pg_app):
    from app.models import Department as Dept

    threads_n, per_thread = 8, 5
    actor_id = pg_app.appbuilder.sm.find_user(username="kefu").id
    department_id = db.session.scalars(select(Dept.id).where(Dept.code == "GC")).one()
    db.session.commit()
    now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
    start = threading.Barrier(threads_n)
    numbers: list[str] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def desk(i: int) -> None:
        try:
            start.wait(timeout=30)
            for j in range(per_thread):
                number = _register_in_own_session(pg_app, actor_id, department_id, f"1390{i:03d}{j:04d}", now)
                with lock:
                    numbers.append(number)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=desk, args=(i,)) for i in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)

    assert not errors, errors
    total = threads_n * per_thread
    assert sorted(numbers) == [f"TS20260930-{n:05d}" for n in range(1, total + 1)]
    assert _numbers() == sorted(numbers)
