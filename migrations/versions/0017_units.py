"""branch hierarchy: units (company → branch / 管理处 / 网点), departments in units, escalation to head office

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-23 19:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("company", "branch", "management_office", "outlet", name="unitkind", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("head_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sort", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["unit.id"], name="fk_unit_parent_id", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["head_id"], ["staff.id"], name="fk_unit_head_id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.create_index("ix_unit_parent_id", ["parent_id"], unique=False)
        batch_op.create_index("ix_unit_head_id", ["head_id"], unique=False)

    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_department_unit_id", ["unit_id"], unique=False)
        batch_op.create_foreign_key("fk_department_unit_id", "unit", ["unit_id"], ["id"], ondelete="SET NULL")

    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalated_to_head_office_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_to_head_office_by_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_complaint_escalated_to_head_office_at", ["escalated_to_head_office_at"], unique=False
        )
        batch_op.create_foreign_key("fk_complaint_escalated_by_id", "ab_user", ["escalated_to_head_office_by_id"], ["id"])


def downgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_constraint("fk_complaint_escalated_by_id", type_="foreignkey")
        batch_op.drop_index("ix_complaint_escalated_to_head_office_at")
        batch_op.drop_column("escalated_to_head_office_by_id")
        batch_op.drop_column("escalated_to_head_office_at")

    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_constraint("fk_department_unit_id", type_="foreignkey")
        batch_op.drop_index("ix_department_unit_id")
        batch_op.drop_column("unit_id")

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_head_id")
        batch_op.drop_index("ix_unit_parent_id")
    op.drop_table("unit")
