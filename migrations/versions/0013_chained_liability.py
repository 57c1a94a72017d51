"""chained liability (连带扣分): staff superiors, rule chains, the frozen chain of a penalty

Revision ID: 0013
Revises: 0016
Create Date: 2026-11-23 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0016"
branch_labels = None
depends_on = None

CHAIN_COLUMNS = (
    "chain_head_points",
    "chain_head_fine",
    "chain_superior_points",
    "chain_superior_fine",
    "chain_superior2_points",
    "chain_superior2_fine",
)


def upgrade():
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superior_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_staff_superior_id", "staff", ["superior_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index(batch_op.f("ix_staff_superior_id"), ["superior_id"], unique=False)
    with op.batch_alter_table("penalty_rule", schema=None) as batch_op:
        for name in CHAIN_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "penalty_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("penalty_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("points", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("fine", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("vacant", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("counted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["penalty_id"], ["penalty.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("penalty_id", "role", name="uq_penalty_link_role"),
    )
    with op.batch_alter_table("penalty_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_penalty_link_penalty_id"), ["penalty_id"], unique=False)
        batch_op.create_index("ix_penalty_link_staff", ["staff_id", "counted"], unique=False)


def downgrade():
    with op.batch_alter_table("penalty_link", schema=None) as batch_op:
        batch_op.drop_index("ix_penalty_link_staff")
        batch_op.drop_index(batch_op.f("ix_penalty_link_penalty_id"))
    op.drop_table("penalty_link")
    with op.batch_alter_table("penalty_rule", schema=None) as batch_op:
        for name in reversed(CHAIN_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_superior_id"))
        batch_op.drop_constraint("fk_staff_superior_id", type_="foreignkey")
        batch_op.drop_column("superior_id")
