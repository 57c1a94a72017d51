"""At intake: the open cases similar to what the customer says, and suggested category and department.

Both come from the caller's scope only (``criterion`` is the row scope of app/access/scope.py)
and use the same similarity as the cluster scan and the repeat check (app/complaints/similarity.py).
The suggestions are only suggestions: the intake form shows them beside its fields and 客服
applies one with a click, or not.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.complaints import similarity
from app.models import OPEN_STATUSES, Complaint
from app.timeutil import utcnow

OPEN_DAYS = 180  # open cases received within this many days are compared
PAST_DAYS = 365  # past cases (any status) the suggestions learn from
CANDIDATES = 2000  # newest first, at most this many of each
SUGGEST_FROM = 5  # the most similar past cases that vote for a category and a department

MAX_TEXT = 5000


class BadQuery(ValueError):
    """The query cannot be compared; ``str()`` says why (in the user's language)."""


def _candidates(session: Session, criterion: Any, since: datetime, only_open: bool) -> list[Complaint]:
    stmt = select(Complaint).where(criterion, Complaint.received_at >= since)
    if only_open:
        stmt = stmt.where(Complaint.status.in_(OPEN_STATUSES))
    return list(session.scalars(stmt.order_by(Complaint.received_at.desc(), Complaint.id.desc()).limit(CANDIDATES)))


def _ranked(query: str, cases: list[Complaint], minimum: float) -> list[tuple[Complaint, float, list[str]]]:
    texts = [similarity.case_text(c.subject, c.content) for c in cases]
    return [(cases[i], score, words) for i, score, words in similarity.rank(query, texts, minimum)]


def find(
    session: Session,
    text: str,
    criterion: Any,
    exclude_id: Optional[int] = None,
    limit: int = 10,
    now: Optional[datetime] = None,
) -> dict[str, Any]:
    """Similar open cases (best first, with score and shared words) and the suggestions."""
    now = now or utcnow()
    query = (text or "").strip()
    if not query:
        raise BadQuery("text")
    query = query[:MAX_TEXT]
    minimum = similarity.threshold(session)
    open_cases = [
        c for c in _candidates(session, criterion, now - timedelta(days=OPEN_DAYS), True) if c.id != exclude_id
    ]
    similar = _ranked(query, open_cases, minimum)[:limit]
    past = [c for c in _candidates(session, criterion, now - timedelta(days=PAST_DAYS), False) if c.id != exclude_id]
    return {
        "threshold": minimum,
        "words": similarity.tokenize(query)[:20],
        "result": [_case_row(c, score, words) for c, score, words in similar],
        "suggestions": suggest(_ranked(query, past, minimum)[:SUGGEST_FROM]),
    }


def _case_row(case: Complaint, score: float, words: list[str]) -> dict[str, Any]:
    return {
        "id": case.id,
        "number": case.number,
        "subject": case.subject,
        "received_at": case.received_at.isoformat(),
        "status": getattr(case.status, "value", case.status),
        "department": {"id": case.department_id, "name": case.department.name if case.department else None},
        "category": {"id": case.category_id, "name": case.category.name if case.category else None},
        "score": score,
        "shared_words": words,
    }


def suggest(ranked: list[tuple[Complaint, float, list[str]]]) -> dict[str, Any]:
    """The category and the department the most similar past cases had, weighted by similarity."""
    result: dict[str, Any] = {"category": None, "department": None, "based_on": [c.number for c, _, _ in ranked]}
    for field, attr in (("category", "category"), ("department", "department")):
        votes: dict[int, float] = defaultdict(float)
        names: dict[int, str] = {}
        for case, score, _ in ranked:
            row = getattr(case, attr)
            if row is None:
                continue
            votes[row.id] += score
            names[row.id] = row.name
        if votes:
            best = max(votes, key=lambda k: (votes[k], -k))
            result[field] = {"id": best, "name": names[best], "score": round(votes[best] / sum(votes.values()), 3)}
    return result
