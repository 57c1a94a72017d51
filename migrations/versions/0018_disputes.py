"""responsibility disputes: departments' supervising leader (分管领导), disputes of a dispatch

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-23 18:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supervisor_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_department_supervisor_id", ["supervisor_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_department_supervisor_id", "ab_user", ["supervisor_id"], ["id"], ondelete="SET NULL"
        )

    op.create_table(
        "dispute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("from_department_id", sa.Integer(), nullable=False),
        sa.Column("objected_by_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("ruled_by_id", sa.Integer(), nullable=True),
        sa.Column("ruled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ruling_note", sa.Text(), nullable=True),
        sa.Column("to_department_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["from_department_id"], ["department.id"]),
        sa.ForeignKeyConstraint(["objected_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["ruled_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["to_department_id"], ["department.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dispute", schema=None) as batch_op:
        batch_op.create_index("ix_dispute_complaint_id", ["complaint_id"], unique=False)
        batch_op.create_index("ix_dispute_from_department_id", ["from_department_id"], unique=False)
        batch_op.create_index("ix_dispute_at", ["at"], unique=False)
        batch_op.create_index("ix_dispute_state", ["state"], unique=False)


def downgrade():
    with op.batch_alter_table("dispute", schema=None) as batch_op:
        batch_op.drop_index("ix_dispute_state")
        batch_op.drop_index("ix_dispute_at")
        batch_op.drop_index("ix_dispute_from_department_id")
        batch_op.drop_index("ix_dispute_complaint_id")
    op.drop_table("dispute")

    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_constraint("fk_department_supervisor_id", type_="foreignkey")
        batch_op.drop_index("ix_department_supervisor_id")
        batch_op.drop_column("supervisor_id")
