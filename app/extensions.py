"""The Flask extensions every layer shares: the SQLAlchemy handle and migrations.

They live apart from the app factory so that domain packages can reach ``db``
without importing ``app/__init__.py`` (which imports the screens).
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.models.sqla import Model
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
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
