"""clustered complaints (集中性投诉): clusters of cases, complainant count of a 群体性投诉

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23 18:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "cluster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=120), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"]),
        sa.ForeignKeyConstraint(["category_id"], ["category.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("cluster", schema=None) as batch_op:
        batch_op.create_index("ix_cluster_department_status", ["department_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_cluster_first_seen"), ["first_seen"], unique=False)

    op.create_table(
        "cluster_complaint",
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id", "complaint_id"),
    )
    with op.batch_alter_table("cluster_complaint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cluster_complaint_complaint_id"), ["complaint_id"], unique=False)

    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("complainant_count", sa.Integer(), server_default=sa.text("1"), nullable=False))


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_column("complainant_count")
    with op.batch_alter_table("cluster_complaint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_complaint_complaint_id"))
    op.drop_table("cluster_complaint")
    with op.batch_alter_table("cluster", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cluster_first_seen"))
        batch_op.drop_index("ix_cluster_department_status")
    op.drop_table("cluster")
