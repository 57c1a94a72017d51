"""The same issue read from what complaints say: the segmenter and TF-IDF cosine, the repeat check,
the similar open cases and suggestions at intake (scoped), and the tunable threshold."""

import subprocess
import sys
import time

from app import db
from app.complaints import similarity
from app.models import Setting
from tests.sla_support import ROOT, at
from tests.test_clusters import ATTITUDE, LIFT


def test_place_identifiers_are_kept_and_bare_numbers_dropped():
    words = similarity.tokenize("8号楼2单元1201室电梯坏了3天，打了5次电话")
    assert words[:3] == ["8号楼", "2单元", "1201室"]
    assert "电梯" in words and "故障" in words  # 坏了 and 故障 are one problem
    assert not any(w.isdigit() for w in words) and "3天" not in words
    assert similarity.tokenize("") == [] and similarity.tokenize(None) == []


def _best_time(text: str) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        similarity.tokenize(text)
        times.append(time.perf_counter() - started)
    return min(times)


def test_a_long_run_of_letters_or_digits_costs_linear_time():
    """A text of 20,000 letters took 6 s to scan for place numbers (quadratic backtracking). Ten
    times the text now takes about ten times as long, not a hundred (a ratio, so that a loaded
    machine does not fail it), and places are still found around it."""

    def text(n: int) -> str:
        return "a" * n + " 8号楼 " + "9" * n

    ratio = _best_time(text(20_000)) / _best_time(text(2_000))
    assert ratio < 30, f"ten times the text took {ratio:.0f} times as long"
    assert "8号楼" in similarity.tokenize(text(20_000))


def test_words_separate_the_issue_better_than_character_ngrams():
    """Why words and not character n-grams: the margin between the least similar pair of the same
    problem and the most similar pair of unrelated complaints."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [*ATTITUDE, *LIFT[:3]]
    same = [(6, 7), (6, 8), (7, 8)]
    unrelated = [(i, j) for i in range(6) for j in range(i + 1, 9) if (i, j) not in same]

    def margin(sims):
        return min(sims[i, j] for i, j in same) - max(sims[i, j] for i, j in unrelated)

    words = similarity.Matrix(texts).cosine().toarray()
    chars = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), sublinear_tf=True).fit_transform(texts)
    assert margin(words) > 0.15
    assert margin(words) > margin((chars @ chars.T).toarray()) + 0.1
    assert similarity.groups(similarity.Matrix(texts), similarity.DEFAULT_THRESHOLD) == [[6, 7, 8]]
    # Another building's lift is another issue.
    other = similarity.Matrix([LIFT[0], "3号楼电梯停运两天无人维修"]).cosine().toarray()
    assert other[0, 1] < similarity.DEFAULT_THRESHOLD


def test_jieba_is_silent_when_the_app_loads_it():
    code = "from app.complaints import similarity; print(similarity.tokenize('8号楼电梯坏了'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "8号楼" in proc.stdout
    assert proc.stderr == ""


def test_a_repeat_is_the_same_customer_about_the_same_problem(app, make_complaint):
    phone = "13912345678"
    first = make_complaint(phone=phone, content=LIFT[0], received_at=at(2026, 10, 1, 9), now=at(2026, 10, 1, 9))
    # Same customer and department, another problem: not a repeat.
    fees = make_complaint(
        phone=phone, content="物业费账单多收了两个月", received_at=at(2026, 10, 3, 9), now=at(2026, 10, 3, 9)
    )
    assert not fees.is_repeat and fees.repeat_of is None
    again = make_complaint(phone=phone, content=LIFT[1], received_at=at(2026, 10, 5, 9), now=at(2026, 10, 5, 9))
    assert again.is_repeat and again.repeat_of_id == first.id
    # Outside the window it is a new complaint.
    late = make_complaint(phone=phone, content=LIFT[2], received_at=at(2026, 12, 20, 9), now=at(2026, 12, 20, 9))
    assert not late.is_repeat


def test_similar_open_cases_and_suggestions_at_intake(app, api, web, org, make_complaint):
    lifts = [make_complaint(content=text) for text in LIFT[:3]]
    other_department = make_complaint(department="BA", content=LIFT[3])
    for text in ATTITUDE[:3]:
        make_complaint(category="attitude", content=text)
    kefu = api("kefu")
    r = kefu.get("/api/v1/complaint/similar", query_string={"text": "8号楼的电梯坏了，一直没人来修"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    found = {row["id"]: row for row in body["result"]}
    assert {c.id for c in lifts} | {other_department.id} == set(found)
    scores = [row["score"] for row in body["result"]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= body["threshold"]
    assert {"8号楼", "电梯"} <= set(found[lifts[0].id]["shared_words"])
    # Suggestions only: the category and department of the most similar past cases.
    assert body["suggestions"]["category"]["id"] == lifts[0].category_id
    assert body["suggestions"]["department"]["id"] == org.dept("GC").id
    # POST with subject and content answers the same.
    r = kefu.post("/api/v1/complaint/similar", json={"subject": "8号楼电梯", "content": "电梯坏了，一直没人来修"})
    assert r.status_code == 200 and {row["id"] for row in r.get_json()["result"]} == set(found)
    # Scope: a department head sees only the cases of their department.
    head = api("zhuguan_a").get("/api/v1/complaint/similar", query_string={"text": LIFT[0]}).get_json()
    assert {row["id"] for row in head["result"]} == {c.id for c in lifts}
    other = api("zhuguan_b").get("/api/v1/complaint/similar", query_string={"text": LIFT[0]}).get_json()
    assert lifts[0].id not in {row["id"] for row in other["result"]}
    # No text: a clear error, not a 500.
    r = kefu.post("/api/v1/complaint/similar", json={"text": "  "})
    assert r.status_code == 400 and "text" in r.get_json()["message"]
    assert kefu.post("/api/v1/complaint/similar", data="not json").status_code == 400
    # The registration screen has the panel, in its own block and script.
    page = web("kefu").get("/complaintview/add").get_data(as_text=True)
    assert 'id="similar-cases"' in page and "js/similar.js" in page


def test_the_threshold_is_the_administrators(app, api, web, make_complaint):
    for text in LIFT[:3]:
        make_complaint(content=text)

    def similar():
        r = api("kefu").get("/api/v1/complaint/similar", query_string={"text": LIFT[3]})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    assert similar()["threshold"] == similarity.DEFAULT_THRESHOLD and similar()["count"] == 3
    hr = web("renshi")
    r = hr.post("/settingview/add", data={"key": "cluster.similarity_threshold", "value": "2"}, follow_redirects=True)
    assert r.status_code == 200 and "0.3" in r.get_data(as_text=True)  # refused, with the reason
    assert db.session.get(Setting, "cluster.similarity_threshold") is None
    r = hr.post("/settingview/add", data={"key": "cluster.similarity_threshold", "value": "0.99"})
    assert r.status_code == 302
    assert similar()["threshold"] == 0.99 and similar()["count"] == 0
