"""posts (岗位) with holders over time; 通报 by rule (circular_due_at, tier 5 not circulated by default)

- ``post`` and ``post_holding``: filled from today's staff superiors, one post per person who
  has a superior or is one, held by that person since before the records (no loss: the chain
  read from the posts today is the chain read from ``staff.superior``).
- ``penalty.circular_due_at``: the case awaits its 通报 (set when the notice is issued).
- The seeded tier-5 rules of 第六条 (辞退/开除) were marked ``circular_required`` although the
  seed's text does not say so; rows still exactly as seeded are corrected, edited rows are kept.

Revision ID: 0020_h6
Revises: 0020_h5
Create Date: 2026-12-05 20:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020_h6"
down_revision = "0020_h5"
branch_labels = None
depends_on = None

# The seeded tier-5 items (app/seed/defaults.py), as seeded.
TIER5 = {
    "第六条第5款A": "辱骂、殴打客户",
    "第六条第5款B": "对投诉客户进行打击报复",
    "第六条第5款C": "因未能妥善处理客户投诉，对公司或发展商声誉造成重大损失",
    "第六条第5款D": "对客户给予不实之承诺，导致公司或发展商受损失",
}


def upgrade():
    op.create_table(
        "post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("superior_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sort", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"]),
        sa.ForeignKeyConstraint(["superior_id"], ["post.id"], name="fk_post_superior_id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_superior_id"), ["superior_id"], unique=False)

    op.create_table(
        "post_holding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("post_holding", schema=None) as batch_op:
        batch_op.create_index("ix_post_holding_post_from", ["post_id", "valid_from"], unique=False)
        batch_op.create_index("ix_post_holding_staff_from", ["staff_id", "valid_from"], unique=False)

    with op.batch_alter_table("penalty", schema=None) as batch_op:
        batch_op.add_column(sa.Column("circular_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_penalty_circular_due_at"), ["circular_due_at"], unique=False)

    _posts_from_superiors()
    _tier5_not_circulated()


def _posts_from_superiors():
    """One post per person in a superior relation, reporting to the post of their superior."""
    bind = op.get_bind()
    staff = bind.execute(sa.text("SELECT id, name, position, department_id, superior_id FROM staff ORDER BY id")).all()
    by_id = {row.id: row for row in staff}
    involved = set()
    for row in staff:
        if row.superior_id is not None and row.superior_id in by_id:
            involved.update((row.id, row.superior_id))
    post_of = {}
    for sid in sorted(involved):
        row = by_id[sid]
        name = (row.position or "").strip() or "岗位"
        post_of[sid] = bind.execute(
            sa.text("INSERT INTO post (name, department_id, active, sort) VALUES (:n, :d, true, 0) RETURNING id"),
            {"n": name[:64], "d": row.department_id},
        ).scalar_one()
        bind.execute(
            sa.text("INSERT INTO post_holding (post_id, staff_id, note) VALUES (:p, :s, :note)"),
            {"p": post_of[sid], "s": sid, "note": "由员工档案的直接上级生成"},
        )
    for sid in sorted(involved):
        superior = by_id[sid].superior_id
        if superior in post_of:
            bind.execute(
                sa.text("UPDATE post SET superior_id = :sup WHERE id = :id"), {"sup": post_of[superior], "id": post_of[sid]}
            )


def _tier5_not_circulated():
    bind = op.get_bind()
    for clause, description in TIER5.items():
        bind.execute(
            sa.text(
                "UPDATE penalty_rule SET circular_required = false "
                "WHERE clause = :clause AND description = :description AND tier = 5 AND sanction = 'dismissal' "
                "AND fine_min = 0 AND fine_max = 0 AND score_deduction = 0 AND withhold_performance_pay = false "
                "AND legal_referral = true AND circular_required = true"
            ),
            {"clause": clause, "description": description},
        )


def downgrade():
    with op.batch_alter_table("penalty", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_penalty_circular_due_at"))
        batch_op.drop_column("circular_due_at")
    with op.batch_alter_table("post_holding", schema=None) as batch_op:
        batch_op.drop_index("ix_post_holding_staff_from")
        batch_op.drop_index("ix_post_holding_post_from")
    op.drop_table("post_holding")
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_superior_id"))
        batch_op.drop_index(batch_op.f("ix_post_department_id"))
    op.drop_table("post")
