"""The grading formula (app/quality/grading.py) on hand-computed figures: no database, no app."""

import copy

import pytest

from app.quality import grading
from app.quality.grading import DEFAULT_FORMULA, Figures


def formula(**changes):
    f = copy.deepcopy(DEFAULT_FORMULA)
    f.update(changes)
    return grading.load_formula(f)


# A department's month: 1,000 customers served, 4 complaints (3 valid, one of them offset by a
# praise letter), replies 3 of 4 on time, stages 6 of 8, 2 of 3 follow-ups satisfied,
# one tier-1 penalty, two commendations (one flagged as offsetting a complaint).
MONTH = Figures(
    received=4,
    customers=1000,
    stages={"investigate": (3, 2), "reply": (4, 3), "follow_up": (1, 1)},
    followups=3,
    satisfied=2,
    valid=3,
    valid_by_level={"normal": 3},
    penalty_tiers=(1,),
    commendations=2,
    offsetting_commendations=1,
)


def test_weighted_score_of_every_component_by_hand():
    result = grading.grade(MONTH, formula())
    scores = {c.key: c.score for c in result.components}
    assert scores["complaint_rate"] == pytest.approx(60.0)  # 4/1000 = 0.4% of the 1% that scores 0
    assert scores["on_time_reply"] == pytest.approx(75.0)
    assert scores["timeliness"] == pytest.approx(75.0)  # 6 of 8 stages in time
    assert scores["satisfaction"] == pytest.approx(200 / 3)
    assert scores["valid_complaints"] == pytest.approx(80.0)  # 3 valid - 1 offset = 2, 10 points each
    assert scores["penalties"] == pytest.approx(90.0)  # one tier-1 penalty: 10 points
    # (10·60 + 20·75 + 10·75 + 25·66.667 + 20·80 + 15·90) / 100 = 74.667
    assert result.weighted == pytest.approx(74.6667, abs=1e-3)
    assert result.offsets == 1
    assert result.bonus == 1.0  # two commendations, one used to offset: one point
    assert result.score == 75.7
    assert result.grade == "third" and result.capped_by == ()


def test_components_without_data_are_dropped_and_weights_renormalised():
    # No customer count, nothing due, no follow-up: only valid complaints (20) and penalties (15) remain.
    figures = Figures(received=2, valid=1, penalty_tiers=(2,))
    result = grading.grade(figures, formula())
    dropped = {c.key for c in result.components if c.score is None}
    assert dropped == {"complaint_rate", "on_time_reply", "timeliness", "satisfaction"}
    # (20·90 + 15·80) / 35 = 85.714
    assert result.score == 85.7
    assert result.grade == "second"


def test_a_quiet_department_scores_full_marks():
    result = grading.grade(Figures(), formula())
    assert result.score == 100.0 and result.grade == "first"


def test_offsets_need_the_setting():
    result = grading.grade(MONTH, formula(offset_complaints=False))
    assert result.offsets == 0
    assert {c.key: c.score for c in result.components}["valid_complaints"] == 70.0
    assert result.bonus == 2.0  # both commendations count as bonus then
    # (600 + 1500 + 750 + 1666.67 + 20·70 + 1350) / 100 = 72.667, + 2
    assert result.score == 74.7


def test_offsets_never_exceed_the_valid_complaints():
    figures = Figures(valid=1, commendations=4, offsetting_commendations=3)
    result = grading.grade(figures, formula())
    assert result.offsets == 1
    assert result.bonus == 3.0  # three commendations left over
    assert result.score == 100.0  # capped at 100


@pytest.mark.parametrize(
    "score, expected",
    [(90.0, "first"), (89.9, "second"), (80.0, "second"), (79.9, "third"), (70.0, "third"), (69.9, "below")],
)
def test_thresholds_90_80_70(score, expected):
    assert grading.grade_of(score, DEFAULT_FORMULA["thresholds"]) == expected


def test_a_valid_major_complaint_caps_the_grade_at_second():
    figures = Figures(valid=1, valid_by_level={"major": 1}, commendations=1, offsetting_commendations=1)
    result = grading.grade(figures, formula())
    assert result.score == 100.0 and result.score_grade == "first"  # the letter offsets the complaint...
    assert result.grade == "second"  # ...but not the disqualifier
    assert [c.as_dict() for c in result.capped_by] == [
        {"condition": "valid_complaint_level", "cap": "second", "detail": {"major": 1}}
    ]


def test_a_tier_four_penalty_caps_at_second_and_tier_five_at_third():
    four = grading.grade(Figures(penalty_tiers=(4,)), formula())
    # Penalties score 30 (70 points off): (20·100 + 15·30)/35 = 70.0 -> third already; caps do not lift.
    assert four.score == 70.0 and four.grade == "third" and four.capped_by == ()
    light = formula(components={"penalties": {"weight": 1, "points_by_tier": {"4": 0, "5": 0}}})
    assert grading.grade(Figures(penalty_tiers=(4,)), light).grade == "second"
    five = grading.grade(Figures(penalty_tiers=(4, 5)), light)
    assert five.grade == "third"
    assert [c.cap for c in five.capped_by] == ["second", "third"]


def test_every_part_must_reach_the_grade_when_configured():
    figures = Figures(stages={"reply": (10, 10)}, followups=10, satisfied=7)
    plain = grading.grade(figures, formula())
    # Replies and so all stages 10 of 10 in time: (20·100 + 10·100 + 25·70 + 20·100 + 15·100) / 90 = 91.67
    assert plain.score == 91.7 and plain.grade == "first"
    strict = grading.grade(figures, formula(every_part_counts=True))
    assert strict.grade == "third"  # satisfaction scored 70
    assert strict.capped_by[0].as_dict() == {
        "condition": "part",
        "cap": "third",
        "detail": {"component": "satisfaction", "score": 70.0},
    }


def test_a_penalty_above_the_table_costs_the_top_tier():
    f = formula(components={"penalties": {"weight": 1, "points_by_tier": {"1": 10, "3": 50}}})
    assert grading.grade(Figures(penalty_tiers=(2, 6)), f).score == 50.0  # tier 2: not listed (0), tier 6: 50


def test_formula_problems_are_reported_together():
    bad = {
        "components": {"happiness": {"weight": 5}, "on_time_reply": {"weight": -1}},
        "thresholds": {"first": 70, "second": 80, "third": 90},
        "caps": [{"condition": "moon_phase", "cap": "second"}, {"condition": "penalty_tier", "cap": "worst"}],
    }
    problems = grading.check_formula(bad)
    assert len(problems) == 7, problems
    with pytest.raises(grading.FormulaError):
        grading.load_formula(bad)
    assert grading.check_formula(DEFAULT_FORMULA) == []


def test_cap_reasons_read_in_chinese():
    text = grading.cap_text_zh(
        {"condition": "valid_complaint_level", "cap": "second", "detail": {"major": 1}}, {"major": "重大"}
    )
    assert text == "有效重大投诉1件，最高评为二级"


def test_a_stage_can_be_weighed_on_its_own():
    f = formula(components={"stage:investigate": {"weight": 3}, "stage:follow_up": {"weight": 1}})
    result = grading.grade(MONTH, f)
    # investigation 2 of 3 in time (66.67), follow-up 1 of 1 (100): (3·66.67 + 100) / 4 = 75, + 1 bonus
    assert result.weighted == pytest.approx(75.0)
    assert result.score == 76.0
    assert grading.check_formula({**DEFAULT_FORMULA, "components": {"stage:lunch": {"weight": 1}}})
    assert grading.component_name_zh("stage:follow_up", {"follow_up": "回访"}) == "流转及时率（回访）"
