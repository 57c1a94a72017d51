"""clock pause (暂停计时) and the extension policy: pause records, paused minutes, customer consent

A pause record per pause of a case's clock, the paused minutes of each clock, the case's
paused flag; extensions record the customer's consent and whether they were asked late.

Revision ID: 0010
Revises: 0015
Create Date: 2026-11-23 17:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "clock_pause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expected_resume", sa.Date(), nullable=True),
        sa.Column("customer_informed", sa.Text(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("working_minutes", sa.Integer(), nullable=True),
        sa.Column("natural_minutes", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["approved_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clock_pause", schema=None) as batch_op:
        batch_op.create_index("ix_clock_pause_complaint_id", ["complaint_id"], unique=False)
        batch_op.create_index("ix_clock_pause_state", ["state"], unique=False)
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("consent_method", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("late_request", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("extension", schema=None) as batch_op:
        batch_op.drop_column("late_request")
        batch_op.drop_column("consent_method")
        batch_op.drop_column("consent_at")
        batch_op.drop_column("consent_by")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("paused_since")
    with op.batch_alter_table("deadline", schema=None) as batch_op:
        batch_op.drop_column("paused_minutes")
    with op.batch_alter_table("clock_pause", schema=None) as batch_op:
        batch_op.drop_index("ix_clock_pause_state")
        batch_op.drop_index("ix_clock_pause_complaint_id")
    op.drop_table("clock_pause")
