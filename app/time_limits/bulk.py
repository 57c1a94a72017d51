"""Many rows updated in one statement.

An ORM flush or ``execute(update(...), rows)`` sends one UPDATE per row through
psycopg2's ``executemany`` (a round trip each): the deadline scan paid that for every
clock and every case it touched. On PostgreSQL the rows go instead as arrays into a
single ``UPDATE … FROM unnest(…)``; SQLite keeps ``executemany`` (in-process, cheap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value


def update_many(session: Session, objects: Sequence[Any], columns: Sequence[str]) -> None:
    """Write ``columns`` of the mapped ``objects`` (keyed by ``id``) and mark them clean."""
    if not objects:
        return
    table: Table = type(objects[0]).__table__
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        names = ["id", *columns]
        casts = ", ".join(f"CAST(:p{i} AS {table.c[name].type.compile(dialect)}[])" for i, name in enumerate(names))
        sets = ", ".join(f"{name} = v.{name}" for name in columns)
        sql = f"UPDATE {table.name} AS t SET {sets} FROM unnest({casts}) AS v({', '.join(names)}) WHERE t.id = v.id"
        params = {f"p{i}": [getattr(o, name) for o in objects] for i, name in enumerate(names)}
        connection.execute(text(sql), params)
    else:
        stmt = update(table).where(table.c.id == bindparam("b_id")).values({c: bindparam(f"b_{c}") for c in columns})
        connection.execute(stmt, [{"b_id": o.id, **{f"b_{c}": getattr(o, c) for c in columns}} for o in objects])
    # The ORM must not write the same values again (nor bump a version) at flush.
    for obj in objects:
        for column in columns:
            set_committed_value(obj, column, getattr(obj, column))
