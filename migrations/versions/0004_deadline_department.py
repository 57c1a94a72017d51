"""deadline department: the case's department copied onto its clocks

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deadline_department_id"), ["department_id"], unique=False)
        batch_op.create_foreign_key("fk_deadline_department_id", "department", ["department_id"], ["id"])
    # Existing clocks take their case's department.
    op.execute(
        "UPDATE deadline SET department_id = "
        "(SELECT complaint.department_id FROM complaint WHERE complaint.id = deadline.complaint_id)"
    )


def downgrade():
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deadline_department_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deadline_department_id"))
        batch_op.drop_column("department_id")
