"""complaint.head_named: the head of the case's department is one of its complained staff

Filled here from the links; kept by the ORM (app/models.py keep_head_named) from then on.

Revision ID: 0027_head
Revises: 0026_todo
Create Date: 2026-12-06 02:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0027_head"
down_revision = "0026_todo"
branch_labels = None
depends_on = None

OPEN_PREDICATE = (
    "status IN ('registered', 'judged', 'dispatched', 'investigating', 'planned', 'replied', 'fed_back', 'followed_up')"
)


def upgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head_named", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.execute(
        "UPDATE complaint SET head_named = EXISTS (SELECT 1 FROM complaint_staff cs "
        "JOIN department d ON d.head_id = cs.staff_id "
        "WHERE cs.complaint_id = complaint.id AND d.id = complaint.department_id)"
    )
    op.create_index(
        "ix_complaint_open_head_named",
        "complaint",
        ["status", "next_due_at", "received_at", "id"],
        postgresql_where=sa.text(f"{OPEN_PREDICATE} AND head_named IS true"),
        sqlite_where=sa.text(f"{OPEN_PREDICATE} AND head_named IS true"),
    )


def downgrade():
    op.drop_index("ix_complaint_open_head_named", table_name="complaint")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("head_named")
