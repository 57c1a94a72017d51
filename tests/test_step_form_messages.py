"""Step forms say what is missing in words: closing before the customer was told the result names
that step and its methods in Chinese, never raw codes; required fields carry an asterisk."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from http_clients import Client

from app import db
from app.complaints import steps as services

CODES = re.compile(r"\b(phone|visit|sms|wechat|email|in_person|uphold|reassign|approve|refuse)\b")


def _followed_up(make_complaint: Any, org: Any) -> Any:
    c = make_complaint(department="GC")
    for action, by, values in (
        ("judge_valid", "renshi", {"validity_reason": "情况属实"}),
        ("dispatch", "renshi", {}),
        ("start_investigation", "zhuguan_a", {}),
        ("propose_plan", "zhuguan_a", {"findings": "属实", "resolution_plan": "维修"}),
        ("reply", "zhuguan_a", {"reply_text": "已修复"}),
        ("feed_back", "zhuguan_a", {"feedback_note": "完成"}),
        ("follow_up", "renshi", {"satisfaction": "satisfied", "follow_up_note": "满意"}),
    ):
        services.take_transition(db.session, c, action, org.principal(by), values)
        db.session.commit()
    return c


def _flashes(html: str) -> str:
    return " ".join(re.findall(r"alert-danger[^>]*>(.*?)</div>", html, re.DOTALL))


def test_closing_before_the_customer_was_told_names_the_step_in_chinese(
    app: Flask, make_complaint: Any, org: Any
) -> None:
    c = _followed_up(make_complaint, org)
    hr = Client(app, "renshi")
    page = hr.get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    label = re.search(r'<label for="f-close-customer_informed">(.*?)</label>', page, re.DOTALL)
    assert label and "*" in label.group(1), "告知客户结果的方式 is required to close: it needs its asterisk"
    r = hr.post(
        f"/complaintview/act/{c.id}",
        data={"action": "close", "close_note": "结案", "customer_informed": "", "version": c.version},
        follow_redirects=True,
    )
    messages = _flashes(r.get_data(as_text=True))
    assert "请先确认已将处理结果告知客户（方式：电话/上门/短信/微信/" in messages, messages
    assert not CODES.search(messages) and "不是可选值之一" not in messages, messages
    db.session.expire_all()
    assert c.status.value == "followed_up"


def test_a_wrong_choice_is_refused_with_its_labels_not_codes(app: Flask, make_complaint: Any, org: Any) -> None:
    c = _followed_up(make_complaint, org)
    r = Client(app, "renshi", api=True).post(
        f"/api/v1/complaint/{c.id}/transition", json={"action": "close", "customer_informed": "fax"}
    )
    assert r.status_code == 422, r.get_json()
    message = " ".join(r.json["message"]["customer_informed"])
    assert "电话/上门/短信/微信" in message and not CODES.search(message), message
