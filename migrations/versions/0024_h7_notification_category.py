"""notification.category: 待办 (todo: the recipient must act) or 知会 (info: progress)

Revision ID: 0020_h7
Revises: 0020_h2
Create Date: 2026-12-05 20:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020_h7"
down_revision = "0020_h2"
branch_labels = None
depends_on = None

# Messages that never asked anyone to act: progress sent to the first responder, digests, reports.
INFO_KINDS = ("judge_invalid", "close", "digest", "report")


def upgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=8), server_default="todo", nullable=False))
        batch_op.create_index("ix_notification_user_category", ["user_id", "category", "read_at"], unique=False)
    notification = sa.table("notification", sa.column("kind", sa.String), sa.column("category", sa.String))
    op.execute(notification.update().where(notification.c.kind.in_(INFO_KINDS)).values(category="info"))


def downgrade():
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_user_category")
        batch_op.drop_column("category")
