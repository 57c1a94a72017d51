"""Numbers that people quote: complaint numbers and document numbers (文号).

Both come from :class:`app.models.Counter` rows incremented with one atomic
upsert inside the caller's transaction: on PostgreSQL the row lock serialises
concurrent issuers, and a rolled-back transaction gives its number back, so the
sequence has neither duplicates nor gaps.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

# Plain SQL that PostgreSQL and SQLite (3.35+) both read. Unlike the dialects' ``insert()``
# with ON CONFLICT, which SQLAlchemy 2.0 compiles anew on every call, a text statement is
# compiled once per process (a registration takes one number).
_NEXT_VALUE = text(
    "INSERT INTO counter (kind, period, value) VALUES (:kind, :period, 1) "
    "ON CONFLICT (kind, period) DO UPDATE SET value = counter.value + 1 RETURNING value"
)


def next_value(session: Session, kind: str, period: str) -> int:
    """Increment and return the counter ``(kind, period)``, starting at 1."""
    return int(session.execute(_NEXT_VALUE, {"kind": kind, "period": period}).scalar_one())


def complaint_number(day: date, seq: int) -> str:
    """``TS20261122-00001``: the registration day and its sequence."""
    return f"TS{day:%Y%m%d}-{seq:05d}"


def next_complaint_number(session: Session, day: date) -> str:
    return complaint_number(day, next_value(session, "complaint", f"{day:%Y%m%d}"))


def document_number(prefix: str, year: int, seq: int) -> str:
    """``人行罚字〔2026〕18号`` (GB/T 9704-2012 发文字号): 机关代字, year in 〔〕, number, 号.

    No 第 and no leading zeros. Numbers issued before this format keep their stored text
    (``〔2026〕人行罚字第004号``): a document's number is written once, never recomputed.
    """
    return f"{prefix}〔{year}〕{seq}号"


def penalty_number(year: int, seq: int) -> str:
    """``CF2026-0007``: a penalty case's number (处罚 case, year and sequence)."""
    return f"CF{year}-{seq:04d}"
