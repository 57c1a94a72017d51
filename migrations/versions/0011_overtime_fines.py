"""overtime fines: fine per time-limit rule, automatic penalty drafts once per miss

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-23 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sla_rule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overtime_fine", sa.Integer(), nullable=True))
    with op.batch_alter_table("penalty", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_key", sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint("uq_penalty_source_key", ["source_key"])


def downgrade():
    with op.batch_alter_table("penalty", schema=None) as batch_op:
        batch_op.drop_constraint("uq_penalty_source_key", type_="unique")
        batch_op.drop_column("source_key")
    with op.batch_alter_table("sla_rule", schema=None) as batch_op:
        batch_op.drop_column("overtime_fine")
