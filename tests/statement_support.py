"""The SQL a piece of work sends, recorded with an SQLAlchemy event hook on the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.sql import cache_key

from app.extensions import db


@contextmanager
def recorded() -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of every statement sent to the database inside the block."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        sent.append((statement, parameters))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@contextmanager
def keyed() -> Iterator[list[str]]:
    """The kinds (Select, Insert, …) of the statements whose cache key SQLAlchemy works out inside the
    block: a statement built anew on every request has it worked out every time, one built once
    only the first time (the key is kept on the statement)."""
    built: list[str] = []
    generate = cache_key.HasCacheKey._generate_cache_key

    def counting(self: Any) -> Any:
        built.append(type(self).__name__)
        return generate(self)

    cache_key.HasCacheKey._generate_cache_key = counting  # type: ignore[method-assign]
    try:
        yield built
    finally:
        cache_key.HasCacheKey._generate_cache_key = generate  # type: ignore[method-assign]
