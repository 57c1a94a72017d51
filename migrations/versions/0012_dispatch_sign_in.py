"""dispatch sign-in: when the receiving department signed for a dispatched case (签收)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 17:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    # Cases already under investigation were taken over by their department: signed then.
    op.execute(
        "UPDATE complaint SET signed_at = investigation_started_at "
        "WHERE signed_at IS NULL AND investigation_started_at IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("signed_at")
