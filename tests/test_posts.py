"""Posts (岗位) in the org chart: chained liability follows the posts as held on the incident date.

A vacant post passes the chain upward (the superior's superior is still deducted, the vacancy
noted); a person who moved is liable for the post they held on the day of the event, not the
day of approval; moves keep the history. Screens and the REST API manage posts and holdings.
"""

from datetime import date, datetime

from sqlalchemy import select

from app import db
from app.discipline import posts
from app.models import PenaltyEvent, PenaltyLink, Post, PostHolding
from app.timeutil import UTC

NOV16 = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)  # approval day, 10:00 in Shanghai


def _links(penalty):
    rows = db.session.scalars(select(PenaltyLink).where(PenaltyLink.penalty_id == penalty.id)).all()
    return {k.role: k for k in rows}


def _approved(kit, incident_date="2026-11-10", staff="刘强"):
    penalty = kit.open(staff=staff, clause="事故标准一级", now=NOV16, incident_date=incident_date)
    kit.step(penalty, "propose", "zhuguan_a", now=NOV16)
    kit.step(penalty, "review", "renshi", now=NOV16)
    kit.step(penalty, "approve", "zongjingli", now=NOV16)
    return penalty


def _post(org, name, superior=None):
    post = Post(name=name, department=org.dept("GC"), superior=superior)
    db.session.add(post)
    return post


def _hold(post, staff, valid_from=None, valid_to=None):
    db.session.add(PostHolding(post=post, staff=staff, valid_from=valid_from, valid_to=valid_to))


def test_a_vacant_superior_post_passes_the_chain_upward(discipline_kit, org):
    """刘强's superior post 班组长 has nobody (and no staff record): 孙海 above it is still deducted."""
    top = _post(org, "工程主管")
    foreman = _post(org, "班组长", superior=top)  # vacant: no holding at all
    worker = _post(org, "电梯维保工", superior=foreman)
    _hold(worker, org.staff("刘强"))
    _hold(top, org.staff("孙海"))
    db.session.commit()

    links = _links(_approved(discipline_kit))

    superior, above = links["superior"], links["superior_of_superior"]
    assert superior.vacant and not superior.counted and superior.staff_id is None
    assert "班组长" in superior.note
    assert (above.staff_id, above.points, above.counted) == (org.staff("孙海").id, 5, True)
    penalty_id = superior.penalty_id
    chain = db.session.scalars(
        select(PenaltyEvent).where(PenaltyEvent.penalty_id == penalty_id, PenaltyEvent.action == "chain")
    ).one()
    assert [k["role"] for k in chain.data["links"] if k["vacant"]] == ["superior"]
    assert "孙海" in chain.note


def test_the_chain_is_read_on_the_incident_date_not_the_approval_date(discipline_kit, org):
    """周斌 held 班组长 until 12 November, then 吴刚 took it; the event was on the 10th."""
    top = _post(org, "工程主管")
    foreman = _post(org, "班组长", superior=top)
    worker = _post(org, "电梯维保工", superior=foreman)
    _hold(worker, org.staff("刘强"))
    _hold(top, org.staff("孙海"))
    _hold(foreman, org.staff("周斌"), valid_to=date(2026, 11, 12))
    db.session.commit()
    holding = posts.move(db.session, org.staff("张建国"), foreman, date(2026, 11, 13))
    db.session.commit()

    before = _links(_approved(discipline_kit, incident_date="2026-11-10"))
    after = _links(_approved(discipline_kit, incident_date="2026-11-14", staff="刘强"))

    assert before["superior"].staff_id == org.staff("周斌").id
    assert after["superior"].staff_id == org.staff("张建国").id
    # The move kept the history: 周斌's holding still ends on the 12th, 张建国's starts on the 13th.
    rows = db.session.scalars(select(PostHolding).where(PostHolding.post_id == foreman.id)).all()
    assert sorted((r.staff.name, r.valid_from, r.valid_to) for r in rows) == [
        ("周斌", None, date(2026, 11, 12)),
        ("张建国", date(2026, 11, 13), None),
    ]
    assert holding.valid_from == date(2026, 11, 13)


def test_a_person_without_a_post_keeps_the_staff_record_superiors(discipline_kit, org):
    liu, zhou, sun = (org.staff(n) for n in ("刘强", "周斌", "孙海"))
    liu.superior, zhou.superior = zhou, sun
    db.session.commit()
    links = _links(_approved(discipline_kit))
    assert (links["superior"].staff_id, links["superior_of_superior"].staff_id) == (zhou.id, sun.id)


def test_posts_and_holdings_through_the_api(org, api):
    hr = api("renshi")
    r = hr.post("/api/v1/post/", json={"name": "工程主管", "department": org.dept("GC").id})
    assert r.status_code == 201, r.json
    top = r.json["id"]
    r = hr.post("/api/v1/post/", json={"name": "班组长", "department": org.dept("GC").id, "superior": top})
    assert r.status_code == 201, r.json
    foreman = r.json["id"]
    r = hr.post(
        "/api/v1/post_holding/",
        json={"post": foreman, "staff": org.staff("周斌").id, "valid_from": "2026-01-01"},
    )
    assert r.status_code == 201, r.json
    # Overlapping holdings of one post are refused in Chinese, nothing is saved.
    r = hr.post(
        "/api/v1/post_holding/",
        json={"post": foreman, "staff": org.staff("孙海").id, "valid_from": "2026-06-01"},
    )
    assert r.status_code == 422 and "周斌" in str(r.json)
    r = hr.post(
        "/api/v1/post_holding/",
        json={"post": foreman, "staff": org.staff("孙海").id, "valid_from": "2026-06-01", "valid_to": "2026-05-01"},
    )
    assert r.status_code == 422
    listed = hr.get(f"/api/v1/post_holding/?q=(filters:!((col:post,opr:rel_o_m,value:{foreman})))").json
    assert [row["staff"]["name"] for row in listed["result"]] == ["周斌"]
    # A department head reads the posts of its own department only; 客服 none (scope).
    assert api("zhuguan_a").get(f"/api/v1/post/{top}").status_code == 200
    assert api("zhuguan_b").get(f"/api/v1/post/{top}").status_code == 404
    assert api("kefu").get("/api/v1/post/").json["count"] == 0


def test_post_screens_list_posts_with_their_holders(org, web):
    top = _post(org, "工程主管")
    _hold(top, org.staff("孙海"), valid_from=date(2026, 1, 1))
    db.session.commit()
    page = web("renshi").get("/postview/list/").get_data(as_text=True)
    assert "工程主管" in page
    shown = web("renshi").get(f"/postview/show/{top.id}").get_data(as_text=True)
    assert "孙海" in shown and "2026-01-01" in shown
