"""corrective actions (整改措施, 纠正与预防) of valid complaints

Revision ID: 0015
Revises: 0009
Create Date: 2026-11-23 17:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corrective_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by_id", sa.Integer(), nullable=True),
        sa.Column("verify_note", sa.Text(), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["staff.id"]),
        sa.ForeignKeyConstraint(["verified_by_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("corrective_action", schema=None) as batch_op:
        batch_op.create_index("ix_corrective_action_complaint", ["complaint_id"], unique=False)
        batch_op.create_index(
            "ix_corrective_action_open_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("state = 'open'"),
            sqlite_where=sa.text("state = 'open'"),
        )


def downgrade():
    with op.batch_alter_table("corrective_action", schema=None) as batch_op:
        batch_op.drop_index("ix_corrective_action_open_due", postgresql_where=sa.text("state = 'open'"), sqlite_where=sa.text("state = 'open'"))
        batch_op.drop_index("ix_corrective_action_complaint")
    op.drop_table("corrective_action")
