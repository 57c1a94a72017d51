"""first-contact ownership (customer told before closing), escalated re-complaints, dissatisfaction tickets

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "case_type",
                sa.Enum(
                    "complaint", "escalated", "appeal", "revisit", "supervision",
                    name="casetype", native_enum=False, create_constraint=False, length=16,
                ),
                server_default=sa.text("'complaint'"),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("original_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("customer_informed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("customer_informed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("customer_informed_method", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("customer_informed_note", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_complaint_case_type"), ["case_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_complaint_original_id"), ["original_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_complaint_original_id", "complaint", ["original_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            "fk_complaint_customer_informed_by_id", "ab_user", ["customer_informed_by_id"], ["id"], ondelete="SET NULL"
        )
    # Cases closed before the rule existed count as told (their follow-up visit told the customer).
    op.execute(
        "UPDATE complaint SET customer_informed_at = closed_at "
        "WHERE customer_informed_at IS NULL AND closed_at IS NOT NULL"
    )
    op.create_table(
        "grievance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("accepted", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["channel.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaint.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("complaint_id"),
    )
    with op.batch_alter_table("grievance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grievance_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_grievance_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grievance_recorded_by_id"), ["recorded_by_id"], unique=False)
        batch_op.create_index("ix_grievance_department_received", ["department_id", "received_at"], unique=False)


def downgrade():
    with op.batch_alter_table("grievance", schema=None) as batch_op:
        batch_op.drop_index("ix_grievance_department_received")
        batch_op.drop_index(batch_op.f("ix_grievance_recorded_by_id"))
        batch_op.drop_index(batch_op.f("ix_grievance_customer_id"))
        batch_op.drop_index(batch_op.f("ix_grievance_received_at"))
    op.drop_table("grievance")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_constraint("fk_complaint_customer_informed_by_id", type_="foreignkey")
        batch_op.drop_constraint("fk_complaint_original_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_complaint_original_id"))
        batch_op.drop_index(batch_op.f("ix_complaint_case_type"))
        batch_op.drop_column("customer_informed_note")
        batch_op.drop_column("customer_informed_method")
        batch_op.drop_column("customer_informed_by_id")
        batch_op.drop_column("customer_informed_at")
        batch_op.drop_column("original_id")
        batch_op.drop_column("case_type")
