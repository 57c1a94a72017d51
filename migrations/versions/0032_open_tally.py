"""The open-case tally: stat_daily counts each received day's cases still open, overdue, supervised

The dashboards' open-case figures (how many, overdue, 督办, by age) counted every open case in
scope: 1.2 ms at 10,000 open cases, 8–10 ms at 100,000, growing with them. They are now summed
from these columns of the day's rows (and a live count of each age bucket's boundary day), which
the refresh of dirty rows keeps current. Filled here from the cases, so the figures are right at
once after the upgrade; a (day, department) with open cases but no row yet is marked dirty and
computed by the next refresh. A partial index holds the days that still have open cases, which
are all the sum reads, however long the history.

Revision ID: 0032_open_tally
Revises: 0031_fr_dept
Create Date: 2026-12-06 18:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0032_open_tally"
down_revision = "0031_fr_dept"
branch_labels = None
depends_on = None

OPEN_PREDICATE = (
    "status IN ('registered', 'judged', 'dispatched', 'investigating', 'planned', 'replied', 'fed_back', 'followed_up')"
)
COLUMNS = ("open_cases", "open_overdue", "open_supervised")


def upgrade():
    with op.batch_alter_table("stat_daily", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False))
    _fill()
    op.create_index(
        "ix_stat_daily_open",
        "stat_daily",
        ["day", "department_id"],
        postgresql_include=list(COLUMNS),
        postgresql_where=sa.text("open_cases > 0"),
        sqlite_where=sa.text("open_cases > 0"),
    )


def _open_per_day():
    """The open cases of each received day (Asia/Shanghai) and department, as a subquery's text."""
    if op.get_bind().dialect.name == "postgresql":
        day = "date(timezone('Asia/Shanghai', received_at))"
    else:
        day = "date(received_at, '+8 hours')"
    return (
        f"SELECT {day} AS day, department_id, count(*) AS n, "
        "sum(CASE WHEN overdue THEN 1 ELSE 0 END) AS overdue, "
        "sum(CASE WHEN supervised THEN 1 ELSE 0 END) AS supervised "
        f"FROM complaint WHERE {OPEN_PREDICATE} GROUP BY {day}, department_id"
    )


def _fill():
    counts = _open_per_day()
    # UPDATE … FROM: PostgreSQL, and SQLite from 3.33.
    op.execute(
        sa.text(
            "UPDATE stat_daily SET open_cases = a.n, open_overdue = a.overdue, open_supervised = a.supervised "
            f"FROM ({counts}) a WHERE a.day = stat_daily.day AND a.department_id = stat_daily.department_id"
        )
    )
    op.execute(
        sa.text(
            f"INSERT INTO stat_dirty (day, department_id) SELECT a.day, a.department_id FROM ({counts}) a "
            "WHERE NOT EXISTS (SELECT 1 FROM stat_daily s WHERE s.day = a.day AND s.department_id = a.department_id) "
            "AND NOT EXISTS (SELECT 1 FROM stat_dirty d WHERE d.day = a.day AND d.department_id = a.department_id)"
        )
    )


def downgrade():
    op.drop_index("ix_stat_daily_open", table_name="stat_daily")
    with op.batch_alter_table("stat_daily", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
