"""automatic-mail budgets: paused addresses, the global count's index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailticket.store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auto_pause",
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("since", mailticket.store.models.UTCDateTime(), nullable=False),
        sa.Column("until", mailticket.store.models.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_auto_created", ["automatic", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_auto_created")
    op.drop_table("auto_pause")
