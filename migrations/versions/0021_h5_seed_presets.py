"""presets that match their seeds: level approver and contact cap, rule average, incident date, batch

Revision ID: 0020_h5
Revises: 0020_ph
Create Date: 2026-12-05 20:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020_h5"
down_revision = "0020_ph"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("level", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension_approver", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("max_contacts", sa.Integer(), nullable=True))
    with op.batch_alter_table("sla_rule", schema=None) as batch_op:
        batch_op.add_column(sa.Column("average_amount", sa.Integer(), nullable=True))
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("batch_no", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_complaint_batch_no"), ["batch_no"], unique=False)


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_batch_no"))
        batch_op.drop_column("batch_no")
        batch_op.drop_column("incident_date")
    with op.batch_alter_table("sla_rule", schema=None) as batch_op:
        batch_op.drop_column("average_amount")
    with op.batch_alter_table("level", schema=None) as batch_op:
        batch_op.drop_column("max_contacts")
        batch_op.drop_column("extension_approver")
