"""Sign-in limits that every worker shares: the database holds the counts.

- ``DatabaseStorage`` is a storage of the ``limits`` library (used by Flask-Limiter) under
  the scheme ``portaldb://``: Flask-Limiter's login limits count in the ``rate_limit`` table,
  so four gunicorn workers allow what one does. ``RATELIMIT_STORAGE_URI=redis://…`` selects
  Redis instead (Flask-Limiter's own storage).
- Failed sign-ins of a name that is no account are counted and locked like an account's
  (the same number of failures, the same lock), so the answers never tell which names exist.
- A lock-out ends the account's sessions and tokens: ``SessionCutoff`` refuses those issued
  before it.
"""

from __future__ import annotations

import hashlib
import random
import time
from datetime import datetime
from typing import Any, Optional

from limits.storage import Storage
from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.extensions import db, dialect_insert
from app.models import RateLimitCounter, SessionCutoff
from app.timeutil import UTC

TABLE = RateLimitCounter.__table__
# Far enough for "until the next lock or success" (failures of an unknown name never expire).
FOREVER = 10 * 365 * 24 * 3600


def _key(key: str) -> str:
    """The stored key: as given when short, else its SHA-256 (usernames may be long)."""
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def increment(bind: Any, key: str, expiry: float, amount: int = 1, now: Optional[float] = None) -> int:
    """Add ``amount`` to a counter (a fresh one after it expired) in one upsert; the new count."""
    now = time.time() if now is None else now
    stmt = dialect_insert(bind)(TABLE).values(key=_key(key), hits=amount, expires_at=now + expiry)
    expired = TABLE.c.expires_at <= now
    stmt = stmt.on_conflict_do_update(
        index_elements=[TABLE.c.key],
        set_={
            "hits": case((expired, amount), else_=TABLE.c.hits + amount),
            "expires_at": case((expired, now + expiry), else_=TABLE.c.expires_at),
        },
    ).returning(TABLE.c.hits)
    return int(bind.execute(stmt).scalar_one())


def counter(bind: Any, key: str, now: Optional[float] = None) -> tuple[int, Optional[float]]:
    """(count, expiry) of a live counter; (0, None) when there is none."""
    now = time.time() if now is None else now
    row = bind.execute(
        select(TABLE.c.hits, TABLE.c.expires_at).where(TABLE.c.key == _key(key), TABLE.c.expires_at > now)
    ).first()
    return (int(row.hits), float(row.expires_at)) if row else (0, None)


def clear(bind: Any, key: str) -> None:
    bind.execute(delete(TABLE).where(TABLE.c.key == _key(key)))


class DatabaseStorage(Storage):
    """``portaldb://``: fixed-window counters in the portal's database (table ``rate_limit``).

    Each call runs in a short transaction of its own on the application's engine, apart
    from the request's session.
    """

    STORAGE_SCHEME = ["portaldb"]

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with db.engine.begin() as conn:
            if random.random() < 0.01:  # now and then, forget the expired counters
                conn.execute(delete(TABLE).where(TABLE.c.expires_at < time.time() - 3600))
            return increment(conn, key, expiry, amount)

    def get(self, key: str) -> int:
        with db.engine.connect() as conn:
            return counter(conn, key)[0]

    def get_expiry(self, key: str) -> float:
        with db.engine.connect() as conn:
            return counter(conn, key)[1] or time.time()

    def check(self) -> bool:
        try:
            with db.engine.connect() as conn:
                conn.execute(select(func.count()).select_from(TABLE).limit(1))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> Optional[int]:
        with db.engine.begin() as conn:
            return conn.execute(delete(TABLE)).rowcount

    def clear(self, key: str) -> None:
        with db.engine.begin() as conn:
            clear(conn, key)


# --- Names that are no account: counted and locked like accounts ------------------------------


def _failures_key(name: str) -> str:
    return f"signin-failures:{name.strip().lower()}"


def _lock_key(name: str) -> str:
    return f"signin-lock:{name.strip().lower()}"


def unknown_locked_until(session: Session, name: str, now: datetime) -> Optional[datetime]:
    """When the lock of a name that is no account ends (None: not locked)."""
    _hits, expiry = counter(session, _lock_key(name), now.timestamp())
    return datetime.fromtimestamp(expiry, UTC) if expiry is not None else None


def unknown_failed(session: Session, name: str, attempts: int, minutes: int, now: datetime) -> Optional[datetime]:
    """Count a failed sign-in of a name that is no account; lock it after ``attempts``
    failures like an account (the count starts again after the lock). Returns the lock's end
    when this failure locked it. Runs in the caller's transaction."""
    failures = increment(session, _failures_key(name), FOREVER, now=now.timestamp())
    if attempts <= 0 or failures < attempts:
        return None
    clear(session, _failures_key(name))
    increment(session, _lock_key(name), minutes * 60, now=now.timestamp())
    return datetime.fromtimestamp(now.timestamp() + minutes * 60, UTC)


def unlock_unknown(session: Session, name: str) -> None:
    clear(session, _failures_key(name))
    clear(session, _lock_key(name))


# --- Ending the sessions and tokens of a locked account ----------------------------------------


def end_sessions(session: Session, user_id: int, now: datetime) -> None:
    """Refuse every session and token of the user issued before ``now`` (the caller commits)."""
    stmt = dialect_insert(session)(SessionCutoff.__table__).values(user_id=user_id, not_before=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_={"not_before": now}))


def ended(not_before: Optional[datetime], issued_at: Optional[float]) -> bool:
    """Whether a session or token issued at ``issued_at`` (epoch seconds; None: unknown, as for
    sessions older than this check) was ended by a lock-out whose cut-off is ``not_before``
    (read with the signed-in user, app/views/security.py)."""
    if not_before is None:
        return False
    return issued_at is None or issued_at < not_before.timestamp()
