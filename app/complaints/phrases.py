"""Forbidden service phrases (服务忌语) in customer-facing texts, and civil phrases (文明用语).

The lists are data (``service_phrase``, editable by administrators); this module reads
them into a :class:`Matcher` that finds forbidden phrases however people type them:
traditional characters (folded to simplified with OpenCC), full-width or half-width
punctuation, spaces, line breaks and zero-width characters between the parts of a
phrase. A phrase of several clauses (``少啰嗦,快点讲``) is found whole and, clause by
clause, each clause of three characters or more on its own. All phrases are matched in
one pass (an Aho-Corasick automaton, pyahocorasick). Offsets of a hit are character
offsets into the text as submitted. Text that is a civil phrase is never flagged, nor a
phrase inside one of the compound words listed as its exceptions (老头 in 老头乐).

Plain Python and SQLAlchemy: no Flask, no request.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import Any, Optional

import ahocorasick
import opencc
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.models import PhraseHit, PhraseKind, ServicePhrase, Staff

FORBIDDEN = PhraseKind.forbidden.value
CIVIL = PhraseKind.civil.value

_OPEN, _CLOSE = "(", ")"
_BRACKETS = str.maketrans({"（": "(", "）": ")", "【": "(", "】": ")", "[": "(", "]": ")"})
_WORD_SEPARATORS = re.compile(r"[、/|；;]")
# Clause punctuation inside one phrase (``少啰嗦,快点讲``), ASCII and full width.
_CLAUSE_SEPARATORS = re.compile(r"[,，.。!！?？:：…\s]+")
_EXCEPTION_SEPARATORS = re.compile(r"[、,，;；\n\r]+")
# A clause this long is a phrase of its own; shorter ones (喂) only count within the whole.
MIN_CLAUSE = 3


@dataclass(frozen=True)
class Entry:
    """A phrase-list row as the matcher needs it."""

    phrase: str
    kind: str = FORBIDDEN
    suggestion: Optional[str] = None
    id: Optional[int] = None
    category: Optional[str] = None
    # Compound words in which the phrase is harmless (老头乐 for 老头), as the row lists them.
    exceptions: Optional[str] = None


@dataclass(frozen=True)
class Hit:
    """A forbidden phrase found at ``text[start:end]`` (``phrase`` as the list words it)."""

    phrase: str
    start: int
    end: int
    suggestion: str
    phrase_id: Optional[int] = None
    text: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "start": self.start, "end": self.end, "suggestion": self.suggestion}


# --- Reading a list entry ------------------------------------------------------------------


def _segments(phrase: str) -> list[tuple[bool, str]]:
    """Top-level pieces of ``phrase``: (is_bracket, text); nested brackets stay inside."""
    pieces: list[tuple[bool, str]] = []
    depth, buf = 0, ""
    for ch in phrase.translate(_BRACKETS):
        if ch == _OPEN:
            if depth == 0:
                if buf:
                    pieces.append((False, buf))
                buf = ""
            else:
                buf += ch
            depth += 1
        elif ch == _CLOSE and depth > 0:
            depth -= 1
            if depth == 0:
                pieces.append((True, buf))
                buf = ""
            else:
                buf += ch
        else:
            buf += ch
    if buf:
        pieces.append((depth > 0, buf))
    return pieces


def variants(phrase: str) -> list[str]:
    """The phrases one list entry stands for.

    ``、`` (or ``/``) separates words (``老头、老太婆、神经病``); a bracket at the end is an
    alternative (``你管不着(你少管闲事)`` is two phrases); a bracket inside is optional
    (``保持环境(室内)卫生`` is said with or without 室内).
    """
    pieces = _segments((phrase or "").strip())
    alternatives: list[str] = []
    while pieces and (pieces[-1][0] or not fold(pieces[-1][1])[0]):
        is_bracket, content = pieces.pop()
        if is_bracket:
            alternatives[:0] = variants(content)
    choices = [[content, ""] if is_bracket else [content] for is_bracket, content in pieces]
    bases = ["".join(parts) for parts in product(*choices)] if choices else []
    words: list[str] = []
    for text in [*bases, *alternatives]:
        for word in _WORD_SEPARATORS.split(text):
            word = word.strip()
            if fold(word)[0] and word not in words:
                words.append(word)
    return words


def clauses(word: str) -> list[str]:
    """The clauses of one phrase that are matched on their own as well as whole: those of
    :data:`MIN_CLAUSE` characters or more when the phrase has several (``少啰嗦,快点讲`` →
    少啰嗦, 快点讲); a one-clause phrase has none besides itself."""
    parts = [p for p in _CLAUSE_SEPARATORS.split(word) if p.strip()]
    if len(parts) < 2:
        return []
    return [p.strip() for p in parts if len(fold(p)[0]) >= MIN_CLAUSE]


def exception_words(text: Optional[str]) -> list[str]:
    """The compound words of a phrase's exception list (one per line, or separated by 、,，;)."""
    return [w.strip() for w in _EXCEPTION_SEPARATORS.split(text or "") if fold(w.strip())[0]]


# --- Folding text for matching -------------------------------------------------------------

_t2s = opencc.OpenCC("t2s")


def _ignored(ch: str) -> bool:
    # Punctuation, symbols, spaces and control/format characters (zero-width space)
    # never tell two phrases apart.
    return unicodedata.category(ch)[0] in "PSZC"


def _simplified(folded: str) -> str:
    """``folded`` in simplified characters, one character for one (OpenCC's phrase-aware
    conversion when it keeps the length, else character by character)."""
    converted = _t2s.convert(folded)
    if len(converted) == len(folded):
        return converted
    return "".join(c if len(c := _t2s.convert(ch)) == 1 else ch for ch in folded)


def fold(text: str) -> tuple[str, list[int]]:
    """``text`` without punctuation or spaces, full-width folded to half-width, lower case
    and in simplified characters, with the index in ``text`` of every character kept."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text or ""):
        for c in unicodedata.normalize("NFKC", ch).lower():
            if not _ignored(c):
                chars.append(c)
                where.append(i)
    return _simplified("".join(chars)), where


# --- The matcher ---------------------------------------------------------------------------


def _automaton(keys: Iterable[str]) -> Optional[ahocorasick.Automaton]:
    automaton = ahocorasick.Automaton()
    for key in keys:
        automaton.add_word(key, key)
    if len(automaton) == 0:
        return None
    automaton.make_automaton()
    return automaton


def _spans(automaton: Optional[ahocorasick.Automaton], folded: str) -> list[tuple[int, int, str]]:
    """Every occurrence (start, end, key) of the automaton's keys in ``folded``, overlaps included."""
    if automaton is None:
        return []
    return [(end - len(key) + 1, end + 1, key) for end, key in automaton.iter(folded)]


class Matcher:
    """Forbidden and civil phrases compiled once; :meth:`check` a text for hits."""

    def __init__(self, entries: Iterable[Entry]):
        self.forbidden: dict[str, tuple[Entry, str]] = {}
        self.civil: set[str] = set()
        # exception compound word → the entries it exempts
        self.exceptions: dict[str, set[Entry]] = {}
        clause_keys: dict[str, tuple[Entry, str]] = {}
        for entry in entries:
            for word in variants(entry.phrase):
                key = fold(word)[0]
                if entry.kind == CIVIL:
                    self.civil.add(key)
                    continue
                self.forbidden.setdefault(key, (entry, word))
                for clause in clauses(word):
                    clause_keys.setdefault(fold(clause)[0], (entry, clause))
            for word in exception_words(entry.exceptions):
                self.exceptions.setdefault(fold(word)[0], set()).add(entry)
        for key, value in clause_keys.items():  # a whole phrase wins over another's clause
            self.forbidden.setdefault(key, value)
        self._forbidden = _automaton(self.forbidden)
        self._civil = _automaton(self.civil)
        self._exempt = _automaton(self.exceptions)

    def check(self, text: str) -> list[Hit]:
        """The forbidden phrases in ``text``, in order, with offsets into ``text``."""
        if not text or self._forbidden is None:
            return []
        folded, where = fold(text)
        civil = [(a, b) for a, b, _ in _spans(self._civil, folded)]
        exempt = [(a, b, self.exceptions[key]) for a, b, key in _spans(self._exempt, folded)]
        hits: list[Hit] = []
        taken = 0  # hits never overlap: leftmost first, then longest
        for a, b, key in sorted(_spans(self._forbidden, folded), key=lambda s: (s[0], s[0] - s[1])):
            if a < taken or any(ca <= a and b <= cb for ca, cb in civil):
                continue  # overlaps an earlier hit, or is part of a civil phrase
            entry, word = self.forbidden[key]
            if any(ea <= a and b <= eb and entry in which for ea, eb, which in exempt):
                continue  # inside a compound word the phrase's exceptions list
            start, end = where[a], where[b - 1] + 1
            hits.append(
                Hit(
                    phrase=word,
                    start=start,
                    end=end,
                    suggestion=entry.suggestion or "",
                    phrase_id=entry.id,
                    text=text[start:end],
                )
            )
            taken = b
        return hits


# --- The phrase table, compiled once per version -------------------------------------------

_lock = threading.Lock()
_cache: dict[str, tuple[Any, Matcher]] = {}


def _version(session: Session) -> Any:
    """Changes whenever a row is added, edited or deleted (checked on every use, so an
    edit made in another process is seen at once)."""
    row = session.execute(
        select(func.count(ServicePhrase.id), func.max(ServicePhrase.id), func.max(ServicePhrase.updated_at))
    ).one()
    return tuple(str(v) for v in row)


def entries(session: Session) -> list[Entry]:
    rows = session.scalars(
        select(ServicePhrase)
        .where(ServicePhrase.active.is_(True), ServicePhrase.is_guideline.is_(False))
        .order_by(ServicePhrase.kind, ServicePhrase.sort, ServicePhrase.id)
    )
    return [
        Entry(
            phrase=r.phrase,
            kind=getattr(r.kind, "value", r.kind),
            suggestion=r.suggestion,
            id=r.id,
            category=r.category,
            exceptions=r.exceptions,
        )
        for r in rows
    ]


def matcher(session: Session) -> Matcher:
    """The matcher of the current phrase table (recompiled only after a change)."""
    bind = str(session.get_bind().url)
    version = _version(session)
    cached = _cache.get(bind)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _lock:
        compiled = Matcher(entries(session))
        _cache[bind] = (version, compiled)
    return compiled


def check(session: Session, text: str) -> list[Hit]:
    """The forbidden phrases in ``text`` according to the phrase table."""
    return matcher(session).check(text)


def invalidate() -> None:
    _cache.clear()


@event.listens_for(Session, "after_flush")
def _phrases_flushed(session: Session, flush_context: Any) -> None:
    if any(isinstance(obj, ServicePhrase) for obj in (*session.new, *session.dirty, *session.deleted)):
        invalidate()


# --- Confirmed hits per staff member -------------------------------------------------------


def record_hits(
    session: Session,
    hits: Sequence[Hit],
    source: str,
    user_id: Optional[int],
    staff_id: Optional[int],
    at: datetime,
    complaint_id: Optional[int] = None,
) -> list[PhraseHit]:
    """Keep one row per forbidden phrase a staff member saved after confirming it."""
    department_id = None
    if staff_id is not None:
        department_id = session.scalar(select(Staff.department_id).where(Staff.id == staff_id))
    rows = [
        PhraseHit(
            at=at,
            user_id=user_id,
            staff_id=staff_id,
            department_id=department_id,
            complaint_id=complaint_id,
            source=source,
            phrase=h.phrase[:255],
            phrase_id=h.phrase_id,
        )
        for h in hits
    ]
    session.add_all(rows)
    return rows


def hits_per_staff(
    session: Session, start: datetime, end: datetime, department_ids: Optional[Iterable[int]] = None
) -> list[dict[str, Any]]:
    """Confirmed forbidden phrases per staff member in ``[start, end)``, most first
    (for the 服务规范 part of grading and the monthly ledger); optionally only some departments."""
    count = func.count(PhraseHit.id)
    stmt = (
        select(PhraseHit.staff_id, Staff.name, Staff.department_id, count)
        .join(Staff, Staff.id == PhraseHit.staff_id)
        .where(PhraseHit.at >= start, PhraseHit.at < end)
        .group_by(PhraseHit.staff_id, Staff.name, Staff.department_id)
        .order_by(count.desc(), Staff.name)
    )
    if department_ids is not None:
        stmt = stmt.where(Staff.department_id.in_(sorted(department_ids)))
    rows = session.execute(stmt).all()
    return [{"staff_id": r[0], "name": r[1], "department_id": r[2], "hits": r[3]} for r in rows]
