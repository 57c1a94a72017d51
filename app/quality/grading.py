"""Department grading (考核定级): a weighted score from a period's figures, its grade and caps.

Modelled on 煤矿安全生产标准化管理体系考核定级办法 (seed 004): grades 一级/二级/三级 at
weighted scores of 90/80/70 (below 70: 不达标); optionally every part must reach the
grade's score as well (the seed's 各部分得分均不低于); and disqualifying events cap the
grade whatever the score (a valid 重大 complaint or a tier-4 penalty: at best 二级).
From the waiter grading of the same seed: a written praise letter cancels a complaint
(commendations flagged ``offsets_complaint`` cancel valid complaints one for one).

The formula is data (setting ``grading.formula``): components with weights, each scored
0–100 from the period's figures; a component without data (no customer count, no
follow-up, nothing due) is dropped and the other weights renormalised. Timeliness is
one pooled component over every stage, or one component per stage (``stage:<code>``,
e.g. ``stage:investigate``). Plain Python: no Flask, no database.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from app.i18n import _l
from app.settings import DEFAULT_GRADING_FORMULA as DEFAULT_FORMULA
from app.time_limits.deadlines import STAGES

GRADES = ("first", "second", "third", "below")  # best first
GRADE_NAMES_ZH = {"first": "一级", "second": "二级", "third": "三级", "below": "不达标"}
GRADE_LABELS = {
    "first": _l("Grade 1"),
    "second": _l("Grade 2"),
    "third": _l("Grade 3"),
    "below": _l("Below standard"),
}

COMPONENTS = (
    "complaint_rate",
    "on_time_reply",
    "timeliness",
    "satisfaction",
    "valid_complaints",
    "penalties",
    "re_complaints",
)
COMPONENT_LABELS = {
    "complaint_rate": _l("Complaint rate"),
    "on_time_reply": _l("On-time reply rate"),
    "timeliness": _l("Timeliness of all stages"),
    "satisfaction": _l("Satisfaction rate"),
    "valid_complaints": _l("Valid complaints"),
    "penalties": _l("Penalties"),
    "re_complaints": _l("Escalated re-complaints (二次投诉)"),
}
COMPONENT_NAMES_ZH = {
    "complaint_rate": "投诉率",
    "on_time_reply": "按时答复率",
    "timeliness": "流转及时率",
    "satisfaction": "满意率",
    "valid_complaints": "有效投诉",
    "penalties": "处罚",
    "re_complaints": "二次投诉",
}
CONDITIONS = ("valid_complaint_level", "valid_complaints", "penalty_tier")


class FormulaError(ValueError):
    """The formula setting cannot be used; ``problems`` lists why."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Figures:
    """What a department did in the period (from app/analytics.py)."""

    received: int = 0
    customers: Optional[int] = None  # customers served, when entered
    stages: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # stage -> (due, done in time)
    followups: int = 0
    satisfied: int = 0  # counted as the satisfaction KPI counts them
    valid: int = 0
    valid_by_level: Mapping[str, int] = field(default_factory=dict)  # level code -> valid complaints
    penalty_tiers: tuple[int, ...] = ()  # tier of each penalty in force decided in the period
    commendations: int = 0
    offsetting_commendations: int = 0  # of which flagged "offsets a complaint"
    # Escalated re-complaints (升级投诉 / 二次投诉) received in the period.
    re_complaints: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "customers": self.customers,
            "stages": {stage: list(values) for stage, values in self.stages.items()},
            "followups": self.followups,
            "satisfied": self.satisfied,
            "valid": self.valid,
            "valid_by_level": dict(self.valid_by_level),
            "penalty_tiers": list(self.penalty_tiers),
            "commendations": self.commendations,
            "offsetting_commendations": self.offsetting_commendations,
            "re_complaints": self.re_complaints,
        }


@dataclass(frozen=True)
class Component:
    key: str
    weight: float
    score: Optional[float]  # None: no data, dropped
    numerator: Any = None
    denominator: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "weight": self.weight,
            "score": None if self.score is None else round(self.score, 2),
            "numerator": self.numerator,
            "denominator": self.denominator,
        }


@dataclass(frozen=True)
class Cap:
    condition: str
    cap: str
    detail: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"condition": self.condition, "cap": self.cap, "detail": self.detail}


@dataclass(frozen=True)
class Result:
    score: float  # weighted score plus bonus, at most 100, one decimal
    weighted: float
    bonus: float
    offsets: int  # valid complaints cancelled by commendations
    score_grade: str  # the grade the score alone earns
    grade: str  # after the part rule and the caps
    capped_by: tuple[Cap, ...]
    components: tuple[Component, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "weighted": round(self.weighted, 2),
            "bonus": self.bonus,
            "offsets": self.offsets,
            "score_grade": self.score_grade,
            "grade": self.grade,
            "capped_by": [c.as_dict() for c in self.capped_by],
            "components": [c.as_dict() for c in self.components],
        }


# --- The formula -------------------------------------------------------------------------------


def known_component(key: str) -> bool:
    return key in COMPONENTS or (key.startswith("stage:") and key[6:] in STAGES)


def component_label(key: str) -> str:
    """A component's name on screen (a stage's timeliness is named after the stage)."""
    if key.startswith("stage:") and key[6:] in STAGES:
        return f"{COMPONENT_LABELS['timeliness']}: {STAGES[key[6:]].label}"
    return str(COMPONENT_LABELS.get(key, key))


def component_name_zh(key: str, stage_names: Mapping[str, str]) -> str:
    """A component's name in documents: 流转及时率（回访）for ``stage:follow_up``."""
    if key.startswith("stage:"):
        return f"{COMPONENT_NAMES_ZH['timeliness']}（{stage_names.get(key[6:], key[6:])}）"
    return COMPONENT_NAMES_ZH.get(key, key)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_formula(formula: Any) -> list[str]:
    """Every problem of a formula setting, in the user's language; empty when it can be used."""
    if not isinstance(formula, Mapping):
        return [str(_l("The formula must be a JSON object."))]
    problems: list[str] = []
    components = formula.get("components")
    if not isinstance(components, Mapping) or not components:
        problems.append(str(_l("The formula needs at least one component.")))
        components = {}
    problems += _component_problems(components)
    problems += _threshold_problems(formula.get("thresholds"))
    problems += _bonus_problems(formula.get("commendation_bonus", {}))
    caps = formula.get("caps", [])
    if not isinstance(caps, list):
        problems.append(str(_l("Caps must be a list.")))
        caps = []
    for cap in caps:
        problems += _cap_problems(cap)
    return problems


def _component_problems(components: Mapping[str, Any]) -> list[str]:
    """Each component known, weighted and with its own parameters; at least one weight above 0."""
    problems: list[str] = []
    for key, spec in components.items():
        if not known_component(key):
            known = ", ".join([*COMPONENTS, *(f"stage:{code}" for code in STAGES)])
            problems.append(str(_l("Unknown component “%(key)s”; known: %(known)s.", key=key, known=known)))
        elif not isinstance(spec, Mapping) or not _number(spec.get("weight")) or spec["weight"] < 0:
            problems.append(str(_l("Component “%(key)s” needs a weight of 0 or more.", key=key)))
        else:
            problems += _parameter_problems(key, spec)
    if components and not any(
        _number(s.get("weight")) and s["weight"] > 0
        for k, s in components.items()
        if known_component(k) and isinstance(s, Mapping)
    ):
        problems.append(str(_l("At least one component needs a weight greater than 0.")))
    return problems


def _parameter_problems(key: str, spec: Mapping[str, Any]) -> list[str]:
    """The parameters a component needs besides its weight."""
    if key == "complaint_rate" and not (_number(spec.get("zero_at")) and spec["zero_at"] > 0):
        return [str(_l("The complaint rate needs “zero_at” greater than 0 (e.g. 0.01)."))]
    if key == "valid_complaints" and not (_number(spec.get("points_each")) and spec["points_each"] >= 0):
        return [str(_l("Valid complaints need “points_each” of 0 or more."))]
    if key == "re_complaints" and not (_number(spec.get("points_each")) and spec["points_each"] >= 0):
        return [str(_l("Escalated re-complaints need “points_each” of 0 or more."))]
    if key == "penalties":
        tiers = spec.get("points_by_tier")
        if not isinstance(tiers, Mapping) or not all(
            str(t).isdecimal() and _number(p) and p >= 0 for t, p in tiers.items()
        ):
            return [str(_l('Penalties need “points_by_tier”, e.g. {"1": 10, "2": 20}.'))]
    return []


def _threshold_problems(thresholds: Any) -> list[str]:
    if not isinstance(thresholds, Mapping) or not all(_number(thresholds.get(g)) for g in GRADES[:3]):
        return [str(_l("Thresholds need first, second and third scores."))]
    if not thresholds["first"] >= thresholds["second"] >= thresholds["third"]:
        return [str(_l("Thresholds must not increase from first to third grade."))]
    return []


def _bonus_problems(bonus: Any) -> list[str]:
    if not isinstance(bonus, Mapping) or not all(
        _number(bonus.get(k, 0)) and bonus.get(k, 0) >= 0 for k in ("points_each", "max")
    ):
        return [str(_l("The commendation bonus needs “points_each” and “max” of 0 or more."))]
    return []


def _cap_problems(cap: Any) -> list[str]:
    """A cap names a known condition, a grade, and the parameter its condition needs."""
    if not isinstance(cap, Mapping) or cap.get("condition") not in CONDITIONS:
        return [str(_l("Each cap needs a condition, one of: %(known)s.", known=", ".join(CONDITIONS)))]
    problems = []
    if cap.get("cap") not in GRADES:
        problems.append(str(_l("Each cap needs a grade to cap at, one of: %(known)s.", known=", ".join(GRADES))))
    if cap["condition"] == "valid_complaint_level" and not (isinstance(cap.get("levels"), list) and cap["levels"]):
        problems.append(str(_l('A level cap needs the list of level codes, e.g. ["major", "urgent"].')))
    if cap["condition"] == "penalty_tier" and not (_number(cap.get("min_tier")) and cap["min_tier"] >= 1):
        problems.append(str(_l("A penalty cap needs “min_tier” of 1 or more.")))
    if cap["condition"] == "valid_complaints" and not (_number(cap.get("min")) and cap["min"] >= 1):
        problems.append(str(_l("A valid-complaint cap needs “min” of 1 or more.")))
    return problems


def load_formula(value: Any) -> dict[str, Any]:
    """The formula of a setting value (None: the default), or raise :class:`FormulaError`."""
    formula = copy.deepcopy(DEFAULT_FORMULA if value is None else value)
    problems = check_formula(formula)
    if problems:
        raise FormulaError(problems)
    formula.setdefault("commendation_bonus", {"points_each": 0, "max": 0})
    formula.setdefault("offset_complaints", False)
    formula.setdefault("every_part_counts", False)
    formula.setdefault("caps", [])
    return formula


# --- Scoring -------------------------------------------------------------------------------------


def grade_of(score: float, thresholds: Mapping[str, float]) -> str:
    """The grade a score earns: 一级 at ``first`` or more, … 不达标 below ``third``."""
    for grade in GRADES[:3]:
        if score >= thresholds[grade]:
            return grade
    return "below"


def worse(a: str, b: str) -> str:
    return GRADES[max(GRADES.index(a), GRADES.index(b))]


def _rate_score(numerator: int, denominator: int) -> Optional[float]:
    return 100.0 * numerator / denominator if denominator else None


def component_scores(figures: Figures, formula: Mapping[str, Any], offsets: int) -> list[Component]:
    """Each configured component's 0–100 score (None when the period gives it no data)."""
    result = []
    for key, spec in formula["components"].items():
        weight = float(spec["weight"])
        if key == "complaint_rate":
            customers = figures.customers or 0
            score = None
            if customers > 0:
                score = 100.0 * max(0.0, 1.0 - (figures.received / customers) / float(spec["zero_at"]))
            result.append(Component(key, weight, score, figures.received, figures.customers))
        elif key == "on_time_reply" or key.startswith("stage:"):
            due, in_time = figures.stages.get("reply" if key == "on_time_reply" else key[6:], (0, 0))
            result.append(Component(key, weight, _rate_score(in_time, due), in_time, due))
        elif key == "timeliness":
            due = sum(d for d, _ in figures.stages.values())
            in_time = sum(t for _, t in figures.stages.values())
            result.append(Component(key, weight, _rate_score(in_time, due), in_time, due))
        elif key == "satisfaction":
            score = _rate_score(figures.satisfied, figures.followups)
            result.append(Component(key, weight, score, figures.satisfied, figures.followups))
        elif key == "valid_complaints":
            net = max(0, figures.valid - offsets)
            score = max(0.0, 100.0 - float(spec["points_each"]) * net)
            result.append(Component(key, weight, score, net, figures.valid))
        elif key == "re_complaints":
            # An extra deduction per 二次投诉 (add it to the formula to use it).
            score = max(0.0, 100.0 - float(spec["points_each"]) * figures.re_complaints)
            result.append(Component(key, weight, score, figures.re_complaints, None))
        elif key == "penalties":
            lost = sum(_tier_points(spec["points_by_tier"], t) for t in figures.penalty_tiers)
            result.append(Component(key, weight, max(0.0, 100.0 - lost), len(figures.penalty_tiers), None))
    return result


def _tier_points(points_by_tier: Mapping[str, Any], tier: int) -> float:
    """Points a penalty of ``tier`` costs; a tier above the table costs what its top tier does."""
    points = {int(t): float(p) for t, p in points_by_tier.items()}
    if tier in points:
        return points[tier]
    return points[max(points)] if points and tier > max(points) else 0.0


def caps_hit(figures: Figures, formula: Mapping[str, Any]) -> list[Cap]:
    """The disqualifying events of the period, with the grade each caps at."""
    hit = []
    for cap in formula.get("caps", []):
        condition = cap["condition"]
        if condition == "valid_complaint_level":
            counts = {lv: figures.valid_by_level.get(lv, 0) for lv in cap["levels"] if figures.valid_by_level.get(lv)}
            if counts:
                hit.append(Cap(condition, cap["cap"], counts))
        elif condition == "penalty_tier":
            tiers = sorted(t for t in figures.penalty_tiers if t >= cap["min_tier"])
            if tiers:
                hit.append(Cap(condition, cap["cap"], {"min_tier": cap["min_tier"], "tiers": tiers}))
        elif condition == "valid_complaints" and figures.valid >= cap["min"]:
            hit.append(Cap(condition, cap["cap"], {"min": cap["min"], "valid": figures.valid}))
    return hit


def grade(figures: Figures, formula: Mapping[str, Any]) -> Result:
    """Score and grade one department's period under ``formula`` (see :func:`load_formula`)."""
    offsets = min(figures.valid, figures.offsetting_commendations) if formula.get("offset_complaints") else 0
    components = component_scores(figures, formula, offsets)
    scored = [c for c in components if c.score is not None and c.weight > 0]
    total_weight = sum(c.weight for c in scored)
    weighted = sum(c.weight * c.score for c in scored) / total_weight if total_weight else 0.0  # type: ignore[operator]
    bonus_spec = formula.get("commendation_bonus") or {}
    spare = max(0, figures.commendations - offsets)
    bonus = min(float(bonus_spec.get("max", 0)), float(bonus_spec.get("points_each", 0)) * spare)
    # Graded on the score people read: one decimal.
    score = round(min(100.0, weighted + bonus), 1)
    thresholds = formula["thresholds"]
    score_grade = grade_of(score, thresholds)
    result_grade = score_grade
    capped: list[Cap] = []
    if formula.get("every_part_counts"):
        for c in scored:
            part = grade_of(round(c.score, 1), thresholds)  # type: ignore[arg-type]
            if GRADES.index(part) > GRADES.index(result_grade):
                capped.append(Cap("part", part, {"component": c.key, "score": round(c.score, 1)}))  # type: ignore[arg-type]
                result_grade = part
    for cap in caps_hit(figures, formula):
        if GRADES.index(cap.cap) > GRADES.index(result_grade):
            result_grade = cap.cap
        capped.append(cap)
    # The reasons kept are the caps that lowered the grade the score earned.
    reasons = tuple(c for c in capped if GRADES.index(c.cap) > GRADES.index(score_grade))
    return Result(
        score=score,
        weighted=weighted,
        bonus=bonus,
        offsets=offsets,
        score_grade=score_grade,
        grade=result_grade,
        capped_by=reasons,
        components=tuple(components),
    )


def grade_label(code: Optional[str]) -> str:
    return str(GRADE_LABELS.get(code, code or "")) if code else ""


def cap_text_zh(
    cap: Mapping[str, Any], level_names: Mapping[str, str] | None = None, stage_names: Mapping[str, str] | None = None
) -> str:
    """A cap reason in Chinese for documents: 有效重大投诉1件，最高评为二级."""
    condition, detail = cap.get("condition"), cap.get("detail") or {}
    ceiling = GRADE_NAMES_ZH.get(cap.get("cap"), "")
    if condition == "valid_complaint_level":
        names = "、".join(f"{(level_names or {}).get(k, k)}投诉{v}件" for k, v in detail.items())
        return f"有效{names}，最高评为{ceiling}"
    if condition == "penalty_tier":
        return f"受到第{min(detail.get('tiers', [0]))}档及以上处罚，最高评为{ceiling}"
    if condition == "valid_complaints":
        return f"有效投诉{detail.get('valid')}件（达到{detail.get('min')}件），最高评为{ceiling}"
    if condition == "part":
        name = component_name_zh(str(detail.get("component")), stage_names or {})
        return f"{name}得分{detail.get('score')}，最高评为{ceiling}"
    return ceiling


def cap_label(cap: Mapping[str, Any], level_names: Mapping[str, str] | None = None) -> str:
    """A cap reason on screen, in the user's language."""
    condition, detail = cap.get("condition"), cap.get("detail") or {}
    ceiling = grade_label(cap.get("cap"))
    if condition == "valid_complaint_level":
        levels = ", ".join(f"{(level_names or {}).get(k, k)} × {v}" for k, v in detail.items())
        return str(_l("Valid complaints of level %(levels)s: at best %(grade)s", levels=levels, grade=ceiling))
    if condition == "penalty_tier":
        tier = min(detail.get("tiers", [0]))
        return str(_l("A tier-%(tier)d penalty: at best %(grade)s", tier=tier, grade=ceiling))
    if condition == "valid_complaints":
        return str(_l("%(n)d valid complaints: at best %(grade)s", n=detail.get("valid", 0), grade=ceiling))
    if condition == "part":
        name = component_label(str(detail.get("component")))
        return str(
            _l("%(part)s scored %(score)s: at best %(grade)s", part=name, score=detail.get("score"), grade=ceiling)
        )
    return ceiling
