"""Forbidden service phrases (服务忌语) and civil phrases (文明用语): the checker, the reply-check
API, and customer-facing texts refused on save unless the user confirms them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app import db
from app.complaints import phrases
from app.models import ComplaintEvent, PhraseHit, PhraseKind, ReplyScript, ServicePhrase
from app.seed import defaults as seed
from app.timeutil import utcnow


def _seed_matcher() -> phrases.Matcher:
    rows = [r for r in seed._phrase_rows() if not r.get("is_guideline")]
    return phrases.Matcher(phrases.Entry(r["phrase"], r["kind"].value, r.get("suggestion")) for r in rows)


MATCHER = _seed_matcher()
FORBIDDEN = [(n, p) for n, p, *_ in seed.FORBIDDEN_PHRASES]
CIVIL = [(n, p) for n, p, *_ in seed.CIVIL_PHRASES] + [seed.CIVIL_GUIDELINE]
PUNCT = re.compile(r"[,?.!。，？！、:：]")
FULL_WIDTH = str.maketrans({",": "，", "?": "？", "!": "！", ":": "："})


def _typings(phrase: str) -> list[str]:
    """How people type a phrase: as listed, full-width, without punctuation, spaced out."""
    bare = PUNCT.sub("", phrase)
    parts = [p for p in PUNCT.split(phrase) if p]
    return [
        phrase,
        phrase.translate(FULL_WIDTH),
        bare,
        " ".join(bare),  # a space between every character
        "， ".join(parts),  # full-width comma and a space between the parts
        " ... ".join(parts),
        "\u3000".join(parts) + "？",  # ideographic space, trailing full-width question mark
    ]


# --- The checker, on the policy's lists ------------------------------------------------------


def test_the_policy_lists_have_29_forbidden_and_32_civil_items():
    assert len(FORBIDDEN) + 1 == 29 and seed.FORBIDDEN_GUIDELINE[0] == 29
    assert len(CIVIL) == 32
    assert [n for n, _ in FORBIDDEN] == list(range(1, 29))


@pytest.mark.parametrize("number,phrase", FORBIDDEN, ids=[str(n) for n, _ in FORBIDDEN])
def test_every_forbidden_phrase_is_found_however_it_is_typed(number, phrase):
    for word in phrases.variants(phrase):
        for typed in _typings(word):
            text = "您好，" + typed + "，谢谢。"
            hits = MATCHER.check(text)
            assert hits, (number, typed)
            hit = hits[0]
            assert hit.phrase == word
            assert hit.start == len("您好，")
            # The hit ends at the phrase's last letter, not at trailing punctuation.
            significant = [i for i, ch in enumerate(text) if not phrases._ignored(ch)]
            last = max(i for i in significant if i < len("您好，") + len(typed))
            assert hit.end == last + 1, (typed, text[hit.start : hit.end])
            assert hit.suggestion


def test_bracketed_alternatives_are_two_phrases():
    assert phrases.variants("你管不着(你少管闲事)") == ["你管不着", "你少管闲事"]
    assert phrases.variants("你能怎么样（你看着办）") == ["你能怎么样", "你看着办"]
    for text, word in (("你管不着！", "你管不着"), ("你少管闲事", "你少管闲事"), ("那你看着办吧", "你看着办")):
        hits = MATCHER.check(text)
        assert [h.phrase for h in hits] == [word]
        assert text[hits[0].start : hits[0].end] == word


def test_a_bracket_inside_a_phrase_is_optional():
    assert phrases.variants("保持环境(室内)卫生") == ["保持环境室内卫生", "保持环境卫生"]


def test_insulting_forms_of_address_match_inside_longer_text():
    text = "那个老头子又来了，这老太婆说话像神经病一样"
    hits = MATCHER.check(text)
    assert [h.phrase for h in hits] == ["老头", "老太婆", "神经病"]
    assert [text[h.start : h.end] for h in hits] == ["老头", "老太婆", "神经病"]
    assert hits[0].suggestion.startswith("因人称呼")


def test_offsets_count_characters_of_the_original_full_width_text():
    text = "😀ＡＢＣ：喂，\u3000干什么？？请稍等。　你这人　是不是有毛病？"
    hits = MATCHER.check(text)
    assert [text[h.start : h.end] for h in hits] == ["喂，\u3000干什么", "你这人　是不是有毛病"]
    assert hits[0].start == 5 and hits[0].end == 11
    assert [h.as_json()["phrase"] for h in hits] == ["喂,干什么", "你这人是不是有毛病?"]


@pytest.mark.parametrize("number,phrase", CIVIL, ids=[str(n) for n, _ in CIVIL])
def test_no_civil_phrase_is_ever_flagged(number, phrase):
    for text in [phrase, *phrases.variants(phrase)]:
        for typed in _typings(text):
            assert MATCHER.check(typed) == [], (number, typed)


def test_all_civil_phrases_together_raise_nothing():
    text = "".join(p for _, p in CIVIL) + seed._ADDRESS
    assert MATCHER.check(text) == []


def test_a_forbidden_word_inside_a_civil_phrase_is_not_flagged():
    matcher = phrases.Matcher(
        [phrases.Entry("不用", "forbidden", "—"), phrases.Entry("不用谢", "civil")],
    )
    assert matcher.check("不用谢！") == []
    assert [h.phrase for h in matcher.check("不用你管")] == ["不用"]


def test_guidelines_are_listed_but_never_matched():
    assert MATCHER.check(seed.FORBIDDEN_GUIDELINE[1]) == []


# --- The phrase table in the database --------------------------------------------------------


def test_defaults_load_both_lists_once(app):
    rows = db.session.query(ServicePhrase).all()
    forbidden = [r for r in rows if r.kind == PhraseKind.forbidden]
    civil = [r for r in rows if r.kind == PhraseKind.civil]
    assert len(forbidden) == 29 and len(civil) == 32
    assert sum(r.is_guideline for r in rows) == 2
    assert seed.seed_phrases(db.session) == 0  # idempotent
    assert [h.phrase for h in phrases.check(db.session, "喂，干什么")] == ["喂,干什么"]


def test_an_edit_of_the_table_takes_effect_at_once(app, api):
    hr = api("renshi")
    assert hr.post("/api/v1/reply-check", json={"text": "爱咋咋地"}).json["hits"] == []
    r = hr.post(
        "/api/v1/servicephrase/",
        json={"kind": "forbidden", "phrase": "爱咋咋地", "suggestion": "我们一定尽力解决", "active": True},
    )
    assert r.status_code == 201, r.json
    hits = hr.post("/api/v1/reply-check", json={"text": "你爱咋咋地！"}).json["hits"]
    assert hits == [{"phrase": "爱咋咋地", "start": 1, "end": 5, "suggestion": "我们一定尽力解决"}]
    assert hr.put(f"/api/v1/servicephrase/{r.json['id']}", json={"active": False}).status_code == 200
    assert hr.post("/api/v1/reply-check", json={"text": "你爱咋咋地！"}).json["hits"] == []
    # Customer service reads the lists but does not edit them.
    assert api("kefu").post("/api/v1/servicephrase/", json={"kind": "civil", "phrase": "您好呀"}).status_code == 403


# --- POST /api/v1/reply-check -------------------------------------------------------------------


def test_reply_check_needs_a_signed_in_user(app, api):
    assert api(None).post("/api/v1/reply-check", json={"text": "喂，干什么"}).status_code == 401


@pytest.mark.parametrize("body", [{}, {"text": None}, {"text": 5}, {"text": ["喂"]}, {"words": "喂"}])
def test_reply_check_refuses_a_missing_or_non_string_text(app, api, body):
    r = api("kefu").post("/api/v1/reply-check", json=body)
    assert r.status_code == 400 and r.json["message"]


def test_reply_check_answers_hits_with_offsets(app, api):
    text = "您好！这事我管不了，你去找我们领导。"
    r = api("zhuguan_a").post("/api/v1/reply-check", json={"text": text})
    assert r.status_code == 200
    (hit,) = r.json["hits"]
    assert set(hit) == {"phrase", "start", "end", "suggestion"}
    assert text[hit["start"] : hit["end"]] == "这事我管不了，你去找我们领导"
    assert api("kefu").post("/api/v1/reply-check", json={"text": "您好，请稍等"}).json == {"hits": []}


def test_reply_check_works_with_the_session_of_the_screens(app, web):
    r = web("kefu").post("/api/v1/reply-check", json={"text": "喂,叫你呢"})
    assert r.status_code == 200 and r.json["hits"][0]["phrase"] == "喂,叫你呢"


# --- Customer-facing texts on save ------------------------------------------------------------------


def _to_planned(api, make_complaint):
    c = make_complaint(department="GC")
    hr, head = api("renshi"), api("zhuguan_a")
    for client, action, fields in (
        (hr, "judge_valid", {"validity_reason": "属实"}),
        (hr, "dispatch", {}),
        (head, "start_investigation", {}),
        (head, "propose_plan", {"findings": "属实", "resolution_plan": "维修"}),
    ):
        r = client.post(f"/api/v1/complaint/{c.id}/transition", json={"action": action, **fields})
        assert r.status_code == 200, r.json
    return c, head


def test_a_reply_with_a_forbidden_phrase_is_refused_until_confirmed(app, api, make_complaint, org):
    c, head = _to_planned(api, make_complaint)
    reply = "已安排维修。有意见，找领导。"
    r = head.post(f"/api/v1/complaint/{c.id}/transition", json={"action": "reply", "reply_text": reply})
    assert r.status_code == 409
    assert "有意见，找领导" in r.json["message"]
    assert r.json["hits"]["reply_text"][0]["phrase"] == "有意见,找领导。"
    assert r.json["confirm_field"] == "confirm_phrases"
    db.session.expire_all()
    assert c.status.value == "planned" and c.reply_text is None

    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={"action": "reply", "reply_text": reply, "confirm_phrases": True},
    )
    assert r.status_code == 200, r.json
    assert r.json["result"]["status"] == "replied"
    timeline = head.get(f"/api/v1/complaint/{c.id}/timeline").json["result"]
    confirmed = [e for e in timeline if e["action"] == "phrase_confirmed"]
    assert len(confirmed) == 1
    assert confirmed[0]["data"]["phrases"] == ["有意见,找领导。"]
    assert confirmed[0]["actor"]["username"] == "zhuguan_a"

    # Counted for the staff member who sent it, in the period.
    now = utcnow()
    counts = phrases.hits_per_staff(db.session, now - timedelta(days=1), now + timedelta(days=1))
    assert counts == [
        {
            "staff_id": org.staff_of("zhuguan_a").id,
            "name": org.staff_of("zhuguan_a").name,
            "department_id": org.dept("GC").id,
            "hits": 1,
        }
    ]
    assert phrases.hits_per_staff(db.session, now + timedelta(days=1), now + timedelta(days=2)) == []
    assert phrases.hits_per_staff(db.session, now - timedelta(days=1), now, department_ids=[org.dept("GC").id])
    assert phrases.hits_per_staff(db.session, now - timedelta(days=1), now, department_ids=[]) == []


def test_a_civil_reply_needs_no_confirmation(app, api, make_complaint):
    c, head = _to_planned(api, make_complaint)
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition",
        json={"action": "reply", "reply_text": "很抱歉，让您久等了。我们已修复，请放心。"},
    )
    assert r.status_code == 200
    assert db.session.query(ComplaintEvent).filter_by(complaint_id=c.id, action="phrase_confirmed").count() == 0
    assert db.session.query(PhraseHit).count() == 0


def test_the_polite_reply_form_on_the_case_page_asks_for_confirmation(app, web, make_complaint):
    c = make_complaint()
    hr = web("renshi")
    page = hr.get(f"/complaintview/show/{c.id}").get_data(as_text=True)
    assert 'name="polite_reply"' in page and "data-phrase-check" in page and 'name="confirm_phrases"' in page
    form = {"action": "judge_invalid", "validity_reason": "不属实", "polite_reply": "不关我的事，找别人去，我管不着"}
    r = hr.post(f"/complaintview/act/{c.id}", data=form, follow_redirects=True)
    assert "不关我的事" in r.get_data(as_text=True)
    db.session.expire_all()
    assert c.status.value == "registered"
    hr.post(f"/complaintview/act/{c.id}", data={**form, "confirm_phrases": "true"})
    db.session.expire_all()
    assert c.status.value == "closed"
    event = db.session.query(ComplaintEvent).filter_by(complaint_id=c.id, action="phrase_confirmed").one()
    assert event.data["phrases"] == ["不关我的事", "找别人去,我管不着"]


def test_a_reply_script_with_a_forbidden_phrase_needs_the_checkbox(app, web):
    hr = web("renshi")
    page = hr.get("/replyscriptview/add").get_data(as_text=True)
    assert "data-phrase-check" in page and "confirm_phrases" in page
    form = {"scenario": "催促", "standard_reply": "急什么，没看我正忙着吗？", "sort": "9"}
    hr.post("/replyscriptview/add", data=form)
    assert db.session.query(ReplyScript).filter_by(scenario="催促").first() is None
    hr.post("/replyscriptview/add", data={**form, "confirm_phrases": "y"})
    assert db.session.query(ReplyScript).filter_by(scenario="催促").one()
    assert db.session.query(PhraseHit).filter_by(source="reply_script").count() == 1


def test_the_reply_script_api_refuses_forbidden_phrases_with_409(app, api):
    hr = api("renshi")
    body = {"scenario": "下班", "standard_reply": "这么晚了明天来", "sort": 9}
    r = hr.post("/api/v1/replyscript/", json=body)
    assert r.status_code == 409 and r.json["hits"]["standard_reply"][0]["phrase"] == "这么晚了明天来"
    assert hr.post("/api/v1/replyscript/?confirm_phrases=true", json=body).status_code == 201


def test_reply_check_from_the_screens_needs_the_csrf_token(app, web, api):
    client = web("kefu")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post("/api/v1/reply-check", json={"text": "烦不烦"}).status_code == 400
        page = client.get("/").get_data(as_text=True)
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        assert 'name="phrase-check" content="/api/v1/reply-check"' in page
        r = client.post("/api/v1/reply-check", json={"text": "烦不烦"}, headers={"X-CSRFToken": token})
        assert r.status_code == 200 and r.json["hits"][0]["phrase"] == "烦不烦"
        # A JWT is never sent by a browser on its own: no token needed.
        assert api("kefu").post("/api/v1/reply-check", json={"text": "烦不烦"}).status_code == 200
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_administrators_edit_the_lists_on_their_screen(app, web):
    admin = web("admin")
    page = admin.get("/servicephraseview/list/").get_data(as_text=True)
    assert "你管不着(你少管闲事)" in page
    form = {
        "kind": "forbidden",
        "phrase": "没空",
        "category": "推诿",
        "suggestion": "请稍等",
        "active": "y",
        "sort": "50",
    }
    admin.post("/servicephraseview/add", data=form)
    row = db.session.query(ServicePhrase).filter_by(phrase="没空").one()
    assert row.kind == PhraseKind.forbidden
    assert [h.phrase for h in phrases.check(db.session, "我现在没空！")] == ["没空"]
    edit = admin.get(f"/servicephraseview/edit/{row.id}").get_data(as_text=True)
    assert '<option selected value="forbidden">' in edit
    admin.post(f"/servicephraseview/edit/{row.id}", data={**form, "kind": "civil"})
    db.session.expire_all()
    assert db.session.get(ServicePhrase, row.id).kind == PhraseKind.civil
    assert phrases.check(db.session, "我现在没空！") == []
    # Customer service reads the lists but may not change them.
    assert web("kefu").post("/servicephraseview/add", data={**form, "phrase": "x"}).status_code in (302, 403)
    assert db.session.query(ServicePhrase).filter_by(phrase="x").first() is None
