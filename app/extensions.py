"""The Flask extensions every layer shares: the SQLAlchemy handle and migrations.

They live apart from the app factory so that domain packages can reach ``db``
without importing ``app/__init__.py`` (which imports the screens).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from flask_appbuilder.models.sqla import Model
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Insert, Table, insert, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

db = SQLAlchemy(model_class=Model)
migrate = Migrate()


def dialect_insert(bind: Any) -> Any:
    """The ``insert`` of the database behind ``bind`` (a session, connection or engine), with
    ``on_conflict_do_nothing`` / ``on_conflict_do_update``: PostgreSQL or SQLite, the two the portal runs on."""
    engine = bind.get_bind() if hasattr(bind, "get_bind") else bind
    name = engine.dialect.name
    if name == "postgresql":
        return postgresql_insert
    if name == "sqlite":
        return sqlite_insert
    raise RuntimeError(f"unsupported database: {name}")


@functools.cache
def insert_or_skip(table: Table, returning: str, *conflict_columns: str) -> Insert:
    """``INSERT … ON CONFLICT [(columns)] DO NOTHING RETURNING returning`` on ``table``: one statement
    object per table, which SQLAlchemy compiles once per process and batches into multi-row INSERTs.

    The dialects' ``on_conflict_do_nothing()`` gives an INSERT that SQLAlchemy 2.0 never caches
    (their Insert sets ``inherit_cache = False``), so every call compiled it anew: 0.3–0.4 ms of each
    registration. The clause reads the same on PostgreSQL and SQLite (3.24+), so the generic
    ``insert()`` carries it as its post-values clause, which is part of its cache key."""
    target = f" ({', '.join(conflict_columns)})" if conflict_columns else ""
    stmt = insert(table).returning(table.c[returning])
    stmt._post_values_clause = text(f"ON CONFLICT{target} DO NOTHING")
    return stmt


@contextlib.contextmanager
def commit_keeping_rows(session: Any) -> Iterator[None]:
    """Commit, and keep the session's rows loaded for the block: what the request shows afterwards
    (the answer of a registration) is read from memory instead of from the database again. When
    the block ends they are expired, as after any commit.

    For rows this request has just written, which nothing else could have changed meanwhile."""
    target = session if hasattr(session, "expire_on_commit") else session()  # a scoped session's own
    before, target.expire_on_commit = target.expire_on_commit, False
    try:
        target.commit()
    finally:
        target.expire_on_commit = before
    try:
        yield
    finally:
        target.expire_all()
