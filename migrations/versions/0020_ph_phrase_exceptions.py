"""service phrases: exceptions (compound words in which a forbidden phrase is harmless)

Revision ID: 0020_ph
Revises: 0019
Create Date: 2026-12-05 20:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0020_ph"
down_revision = "0019"
branch_labels = None
depends_on = None

# The policy's item 1 (老头、老太婆、神经病): the defaults of app/seed/defaults.py.
DEFAULT_EXCEPTIONS = "老头乐、神经病学、神经病学科"


def upgrade():
    with op.batch_alter_table("service_phrase") as batch:
        batch.add_column(sa.Column("exceptions", sa.Text(), nullable=True))
    # Only the seeded row of item 1 gets the default exceptions; added rows stay as they are.
    op.execute(
        sa.text(
            "UPDATE service_phrase SET exceptions = :words "
            "WHERE kind = 'forbidden' AND number = 1 AND phrase = '老头、老太婆、神经病' AND exceptions IS NULL"
        ).bindparams(words=DEFAULT_EXCEPTIONS)
    )


def downgrade():
    with op.batch_alter_table("service_phrase") as batch:
        batch.drop_column("exceptions")
