"""The forbidden-phrase checker reads Chinese as people write it: a phrase of several clauses
is found clause by clause, traditional characters are folded to simplified (OpenCC), all
phrases are matched in one pass, and each phrase carries the compound words in which it is
harmless (老头 in 老头乐). The reply form, the API and the save give the same answer."""

from __future__ import annotations

import os
import tempfile

import pytest
from sqlalchemy import create_engine, text
from test_phrases import _to_planned  # the case brought to the reply, as the phrase tests do

from app import create_app, db
from app.complaints import phrases
from app.models import ServicePhrase
from app.seed import defaults as seed

ISSUE_REPLY = "刘先生您好，少啰嗦，电梯已修好。"
TRADITIONAL = "你這人是不是有毛病？…煩不煩"


def _seed_matcher() -> phrases.Matcher:
    rows = [r for r in seed._phrase_rows() if not r.get("is_guideline")]
    return phrases.Matcher(
        phrases.Entry(r["phrase"], r["kind"].value, r.get("suggestion"), exceptions=r.get("exceptions")) for r in rows
    )


MATCHER = _seed_matcher()


def _found(text: str, matcher: phrases.Matcher = MATCHER) -> list[str]:
    return [text[h.start : h.end] for h in matcher.check(text)]


# --- Clauses ---------------------------------------------------------------------------------


def test_a_clause_of_a_several_clause_phrase_is_found_on_its_own():
    (hit,) = MATCHER.check(ISSUE_REPLY)
    assert ISSUE_REPLY[hit.start : hit.end] == "少啰嗦"
    assert hit.phrase == "少啰嗦" and hit.suggestion == "请不要着急，您慢慢讲，我听着。"
    assert _found("好了，快点讲吧") == ["快点讲"]


def test_the_whole_phrase_is_still_one_hit_not_one_per_clause():
    text = "少啰嗦，快点讲！"
    (hit,) = MATCHER.check(text)
    assert text[hit.start : hit.end] == "少啰嗦，快点讲" and hit.phrase == "少啰嗦,快点讲"


def test_clauses_of_other_policy_phrases_are_found_too():
    assert _found("给你讲过几遍了。") == ["给你讲过几遍了"]
    assert _found("您好，早干什么了？") == ["早干什么了"]
    assert _found("怎么还拎不清呢") == ["怎么还拎不清"]


def test_short_clauses_count_only_within_the_whole_phrase():
    # 喂 alone is a greeting on the phone; "喂,干什么" as a whole is the forbidden phrase.
    assert phrases.clauses("喂,干什么") == ["干什么"]
    assert _found("喂，您好，这里是物业服务中心。") == []
    assert _found("喂，干什么") == ["喂，干什么"]


# --- Traditional characters ------------------------------------------------------------------


def test_traditional_characters_are_read_as_simplified():
    hits = MATCHER.check(TRADITIONAL)
    assert [TRADITIONAL[h.start : h.end] for h in hits] == ["你這人是不是有毛病", "煩不煩"]
    assert [h.phrase for h in hits] == ["你这人是不是有毛病?", "烦不烦"]
    assert _found("少囉嗦，快點講") == ["少囉嗦，快點講"]


def test_folding_keeps_one_character_for_one():
    folded, where = phrases.fold("這，是 後來")
    assert folded == "这是后来" and where == [0, 2, 4, 5]


# --- Exceptions --------------------------------------------------------------------------------


def test_a_phrase_inside_a_listed_compound_word_is_not_flagged():
    assert _found("您订的老头乐电动车已送到。") == []
    assert _found("请到神经病学科复诊。") == []
    # Outside the compound word the phrase is still forbidden, in the same text too.
    assert _found("老头乐已送到，那个老头又来了。") == ["老头"]
    assert _found("你是神经病吧") == ["神经病"]


def test_exceptions_belong_to_their_phrase_only():
    matcher = phrases.Matcher(
        [
            phrases.Entry("老头", exceptions="老头乐"),
            phrases.Entry("头乐", exceptions=""),
        ]
    )
    # 老头乐 exempts 老头, not another phrase that happens to lie inside it.
    assert _found("老头乐", matcher) == ["头乐"]
    assert phrases.exception_words("老头乐、神经病学\n 神经病医院 ,") == ["老头乐", "神经病学", "神经病医院"]


def test_all_phrases_are_matched_in_one_pass_like_one_by_one():
    entries = [phrases.Entry(f"禁语{i:03d}号") for i in range(500)]
    matcher = phrases.Matcher(entries)
    text = "开头禁语007号，中间禁语123号和禁语499号。"
    assert [h.phrase for h in matcher.check(text)] == ["禁语007号", "禁语123号", "禁语499号"]


# --- Through the portal: the API, the save, the screen ---------------------------------------


def test_the_api_finds_the_clause_and_the_traditional_text(app, api):
    kefu = api("kefu")
    r = kefu.post("/api/v1/reply-check", json={"text": ISSUE_REPLY})
    assert r.status_code == 200
    assert [(h["start"], h["end"]) for h in r.json["hits"]] == [(6, 9)]
    r = kefu.post("/api/v1/reply-check", json={"text": TRADITIONAL})
    assert [TRADITIONAL[h["start"] : h["end"]] for h in r.json["hits"]] == ["你這人是不是有毛病", "煩不煩"]
    for harmless in ("您订的老头乐电动车已送到。", "请到神经病学科复诊。"):
        assert kefu.post("/api/v1/reply-check", json={"text": harmless}).json["hits"] == []


def test_a_reply_with_one_clause_of_a_phrase_is_refused_on_save_until_confirmed(app, api, make_complaint):
    c, head = _to_planned(api, make_complaint)
    r = head.post(f"/api/v1/complaint/{c.id}/transition", json={"action": "reply", "reply_text": ISSUE_REPLY})
    assert r.status_code == 409
    assert r.json["hits"]["reply_text"][0]["phrase"] == "少啰嗦"
    db.session.expire_all()
    assert c.reply_text is None
    r = head.post(
        f"/api/v1/complaint/{c.id}/transition", json={"action": "reply", "reply_text": "老头乐电动车已修好。"}
    )
    assert r.status_code == 200, r.json


def test_administrators_edit_the_exceptions_beside_the_phrase(app, web, api):
    row = db.session.query(ServicePhrase).filter_by(kind="forbidden", number=1).one()
    assert "老头乐" in row.exceptions
    admin = web("admin")
    page = admin.get(f"/servicephraseview/edit/{row.id}").get_data(as_text=True)
    assert 'name="exceptions"' in page
    assert phrases.check(db.session, "老太婆饼很好吃") != []
    r = api("admin").put(f"/api/v1/servicephrase/{row.id}", json={"exceptions": "老头乐、老太婆饼"})
    assert r.status_code == 200, r.json
    assert phrases.check(db.session, "老太婆饼很好吃") == []
    assert api("kefu").post("/api/v1/reply-check", json={"text": "老太婆饼很好吃"}).json["hits"] == []


def test_the_migration_gives_the_seeded_phrase_its_exceptions_and_keeps_other_rows():
    """An existing database (revision 0019) upgraded: item 1 gets the defaults, added rows untouched."""
    path = os.path.join(tempfile.mkdtemp(prefix="phrase-migration-"), "old.db")
    url = "sqlite:///" + path
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SCHEDULER_ENABLED": False})
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(revision="0019")
    engine = create_engine(url)
    with engine.begin() as c:
        for number, phrase in ((1, "老头、老太婆、神经病"), (None, "没空")):
            c.execute(
                text(
                    "INSERT INTO service_phrase (kind, number, phrase, is_guideline, active, sort) "
                    "VALUES ('forbidden', :n, :p, 0, 1, 0)"
                ),
                {"n": number, "p": phrase},
            )
    with app.app_context():
        upgrade()
    with engine.connect() as c:
        rows = dict(c.execute(text("SELECT phrase, exceptions FROM service_phrase")).all())
    assert rows == {"老头、老太婆、神经病": "老头乐、神经病学、神经病学科", "没空": None}
    engine.dispose()


@pytest.mark.parametrize("phrase", [p for _, p, *_ in seed.CIVIL_PHRASES])
def test_no_civil_phrase_trips_a_clause(phrase):
    for word in phrases.variants(phrase):
        assert MATCHER.check(word) == [], word
