"""Input that used to be accepted although wrong, and English or echoed messages where users
read them: received_at bounds, old dates' offsets, a future or impossible incident date, a
fractional level, marshmallow's messages, huge values quoted back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from http_clients import Client

from app import db
from app.models import PenaltyRule
from app.timeutil import as_utc, format_local, to_local

HAN = re.compile(r"[\u4e00-\u9fff]")


def _complaint(org: Any, **fields: Any) -> dict[str, Any]:
    return {
        "content": "电梯坏了",
        "customer_name": "测试",
        "customer_phone": "13800138000",
        "department": org.dept("GC").id,
        "channel": 1,
        "category": 1,
        "level": 1,
        **fields,
    }


def _messages(r: Any) -> list[str]:
    def walk(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [m for v in value.values() for m in walk(v)]
        if isinstance(value, list):
            return [m for v in value for m in walk(v)]
        return [str(value)]

    return walk(r.json.get("message"))


def test_received_before_2000_is_refused_in_chinese(app: Flask, org: Any) -> None:
    kefu = Client(app, "kefu", api=True)
    r = kefu.post("/api/v1/complaint/", json=_complaint(org, received_at="1900-01-01T09:00:00+08:00"))
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert "received_at" in r.json["message"] and "2000-01-01" in str(r.json["message"]["received_at"])
    r = kefu.post("/api/v1/complaint/", json=_complaint(org, received_at="2099-01-01T09:00:00+08:00"))
    assert r.status_code == 422 and "received_at" in r.json["message"]


def test_old_dates_are_shown_at_plus_eight_not_local_mean_time() -> None:
    old = datetime(1900, 1, 1, 1, 0, tzinfo=UTC)
    assert to_local(old).utcoffset().total_seconds() == 8 * 3600
    assert format_local(old) == "1900-01-01 09:00"
    assert as_utc(datetime(1900, 1, 1, 9, 0)) == old


def test_fractional_level_is_refused(app: Flask, org: Any) -> None:
    r = Client(app, "kefu", api=True).post("/api/v1/complaint/", json=_complaint(org, level=1.5))
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert "level" in r.json["message"]


def test_nan_in_a_body_is_a_chinese_400(app: Flask, org: Any) -> None:
    kefu = Client(app, "kefu", api=True)
    body = '{"content": "电梯坏了", "level": NaN, "complainant_count": NaN}'
    r = kefu.post("/api/v1/complaint/", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and HAN.search(r.json["message"]), r.get_data(as_text=True)[:300]


def test_penalty_incident_date_must_be_a_real_past_day(app: Flask, org: Any) -> None:
    head = Client(app, "zhuguan_a", api=True)
    rule = db.session.query(PenaltyRule).filter_by(clause="第六条第2款A").one().id
    base = {"staff": org.staff("刘强").id, "rule": rule, "facts": "与业主发生争执"}
    for day in ("2026-02-30", "2099-01-01", "1999-12-31", "not a date"):
        r = head.post("/api/v1/penalty/", json={**base, "incident_date": day})
        assert r.status_code == 422, (day, r.status_code, r.get_data(as_text=True)[:300])
        assert all(HAN.search(m) for m in _messages(r)), r.json
    assert head.post("/api/v1/penalty/", json={**base, "incident_date": "2026-01-05"}).status_code == 201


def test_marshmallow_messages_are_chinese_and_never_echo_huge_values(app: Flask, org: Any) -> None:
    kefu = Client(app, "kefu", api=True)
    r = kefu.post("/api/v1/complaint/", json=_complaint(org, customer_phone="1" * 100_000))
    # Refused by the length limits before the body is parsed (app/views/lengths.py), in Chinese.
    assert r.status_code in (400, 422)
    assert len(r.get_data()) < 2000, "the 100 KB phone value was echoed back"
    assert all(HAN.search(m) for m in _messages(r)), _messages(r)
    r = Client(app, "renshi", api=True).post("/api/v1/department/", json={"name": "x" * 300, "code": "Z9"})
    assert r.status_code in (400, 422), r.get_data(as_text=True)[:300]
    messages = _messages(r)
    assert all(HAN.search(m) for m in messages), messages
    assert not any("Longer than" in m or "Not a valid" in m for m in messages)
