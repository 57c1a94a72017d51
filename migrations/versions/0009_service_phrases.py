"""service phrases: forbidden (服务忌语) and civil (文明用语) phrase lists, confirmed hits per staff

Revision ID: 0009
Revises: 0012
Create Date: 2026-11-23 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "service_phrase",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum("forbidden", "civil", name="phrasekind", native_enum=False, create_constraint=False, length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("phrase", sa.String(length=255), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("suggestion", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("is_guideline", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sort", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "phrase", name="uq_service_phrase_kind_phrase"),
    )
    with op.batch_alter_table("service_phrase", schema=None) as batch_op:
        batch_op.create_index("ix_service_phrase_kind_sort", ["kind", "sort"], unique=False)
    op.create_table(
        "phrase_hit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("phrase", sa.String(length=255), nullable=False),
        sa.Column("phrase_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["phrase_id"], ["service_phrase.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("phrase_hit", schema=None) as batch_op:
        batch_op.create_index("ix_phrase_hit_at", ["at"], unique=False)
        batch_op.create_index("ix_phrase_hit_staff_at", ["staff_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_phrase_hit_complaint_id"), ["complaint_id"], unique=False)


def downgrade():
    with op.batch_alter_table("phrase_hit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phrase_hit_complaint_id"))
        batch_op.drop_index("ix_phrase_hit_staff_at")
        batch_op.drop_index("ix_phrase_hit_at")
    op.drop_table("phrase_hit")
    with op.batch_alter_table("service_phrase", schema=None) as batch_op:
        batch_op.drop_index("ix_service_phrase_kind_sort")
    op.drop_table("service_phrase")
