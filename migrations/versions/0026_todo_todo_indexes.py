"""待我处理 at a million cases: open cases by status in due order, watched cases, warned clocks

Revision ID: 0026_todo
Revises: 0025_dash
Create Date: 2026-12-06 01:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0026_todo"
down_revision = "0025_dash"
branch_labels = None
depends_on = None

OPEN_PREDICATE = (
    "status IN ('registered', 'judged', 'dispatched', 'investigating', 'planned', 'replied', 'fed_back', 'followed_up')"
)
WATCHED_PREDICATE = "(supervised IS true OR escalated_to_head_office_at IS NOT NULL)"
WARNED_PREDICATE = "state = 'open' AND warned_at IS NOT NULL"


def upgrade():
    op.create_index(
        "ix_complaint_open_status_due",
        "complaint",
        ["status", "next_due_at", "received_at", "id"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )
    op.create_index(
        "ix_complaint_open_watched",
        "complaint",
        ["next_due_at", "received_at", "id"],
        postgresql_where=sa.text(f"{OPEN_PREDICATE} AND {WATCHED_PREDICATE}"),
        sqlite_where=sa.text(f"{OPEN_PREDICATE} AND {WATCHED_PREDICATE}"),
    )
    op.create_index(
        "ix_deadline_open_warned",
        "deadline",
        ["complaint_id"],
        postgresql_where=sa.text(WARNED_PREDICATE),
        sqlite_where=sa.text(WARNED_PREDICATE),
    )


def downgrade():
    op.drop_index("ix_deadline_open_warned", table_name="deadline")
    op.drop_index("ix_complaint_open_watched", table_name="complaint")
    op.drop_index("ix_complaint_open_status_due", table_name="complaint")
