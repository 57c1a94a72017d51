"""Pages at a million cases: stat_daily.revision and attitude_by_staff, indexes of open cases

stat_daily.attitude_by_staff is filled here from the complaints (valid 服务态度 complaints naming
each staff member, by received day and department), so the service-attitude limits read from
the aggregates at once after the upgrade.

Revision ID: 0025_dash
Revises: 0020_h7
Create Date: 2026-12-05 23:20:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0025_dash"
down_revision = "0020_h7"
branch_labels = None
depends_on = None

OPEN_PREDICATE = (
    "status IN ('registered', 'judged', 'dispatched', 'investigating', 'planned', 'replied', 'fed_back', 'followed_up')"
)


def upgrade():
    with op.batch_alter_table("stat_daily", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("attitude_by_staff", sa.JSON(), nullable=True))
    _fill_attitude()
    op.create_index(
        "ix_complaint_open_received",
        "complaint",
        ["received_at"],
        postgresql_include=["department_id", "overdue", "supervised", "first_responder_id"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )
    op.create_index(
        "ix_complaint_open_due",
        "complaint",
        ["next_due_at", "received_at"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_first_responder_id")
        batch_op.create_index("ix_complaint_first_responder_status", ["first_responder_id", "status"], unique=False)
    op.create_index(
        "ix_complaint_valid_category_received",
        "complaint",
        ["category_id", "received_at"],
        postgresql_include=["id"],
        postgresql_where=sa.text("validity = 'valid'"),
        sqlite_where=sa.text("validity = 'valid'"),
    )


def _fill_attitude():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        day, aggregate = "date(timezone('Asia/Shanghai', c.received_at))", "json_object_agg(x.staff_id::text, x.n)"
    else:
        day, aggregate = "date(c.received_at, '+8 hours')", "json_group_object(CAST(x.staff_id AS TEXT), x.n)"
    counts = (
        f"SELECT {day} AS day, c.department_id AS department_id, cs.staff_id AS staff_id, count(*) AS n "
        "FROM complaint c JOIN complaint_staff cs ON cs.complaint_id = c.id "
        "JOIN category k ON k.id = c.category_id "
        "WHERE k.code = 'attitude' AND c.validity = 'valid' "
        f"GROUP BY {day}, c.department_id, cs.staff_id"
    )
    # UPDATE … FROM: PostgreSQL, and SQLite from 3.33.
    op.execute(
        sa.text(
            f"UPDATE stat_daily SET attitude_by_staff = a.counts FROM "
            f"(SELECT x.day AS day, x.department_id AS department_id, {aggregate} AS counts "
            f"FROM ({counts}) x GROUP BY x.day, x.department_id) a "
            "WHERE a.day = stat_daily.day AND a.department_id = stat_daily.department_id"
        )
    )


def downgrade():
    op.drop_index("ix_complaint_valid_category_received", table_name="complaint")
    with op.batch_alter_table("complaint", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_first_responder_status")
        batch_op.create_index("ix_complaint_first_responder_id", ["first_responder_id"], unique=False)
    op.drop_index("ix_complaint_open_due", table_name="complaint")
    op.drop_index("ix_complaint_open_received", table_name="complaint")
    with op.batch_alter_table("stat_daily", schema=None) as batch_op:
        batch_op.drop_column("attitude_by_staff")
        batch_op.drop_column("revision")
