"""待我处理 of a department head: his department's open cases of one status in due order

Each of a head's waiting kinds (签收, 开始调查, 制定方案, 答复, 反馈) lists the first open cases of
his department in one status by due time, and counts them up to the home page's cap; the
index serves both in order, the count from the index alone (paused, signed for, names the head).

Revision ID: 0028_dept_due
Revises: 0027_head
Create Date: 2026-12-06 04:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0028_dept_due"
down_revision = "0027_head"
branch_labels = None
depends_on = None

OPEN_PREDICATE = (
    "status IN ('registered', 'judged', 'dispatched', 'investigating', 'planned', 'replied', 'fed_back', 'followed_up')"
)


def upgrade():
    op.create_index(
        "ix_complaint_open_department_due",
        "complaint",
        ["department_id", "status", "next_due_at", "received_at", "id"],
        postgresql_include=["paused_since", "signed_at", "head_named"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )


def downgrade():
    op.drop_index("ix_complaint_open_department_due", table_name="complaint")
