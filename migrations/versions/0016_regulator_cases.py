"""regulator-transferred cases (监管转办): transferring body and its reference number

Revision ID: 0016
Revises: 0010
Create Date: 2026-11-23 17:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regulator_body", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("regulator_ref", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_complaint_regulator_ref", ["regulator_ref"], unique=False)


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_regulator_ref")
        batch_op.drop_column("regulator_ref")
        batch_op.drop_column("regulator_body")
