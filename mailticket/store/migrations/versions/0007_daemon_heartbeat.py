"""daemon heartbeat for `mailticket status`; outbox claims name their daemon

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailticket.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daemon",
        sa.Column("instance", sa.String(length=300), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", mailticket.store.models.UTCDateTime(), nullable=False),
        sa.Column("beat_at", mailticket.store.models.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", mailticket.store.models.UTCDateTime(), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("listeners", sa.Text(), nullable=False),
        sa.Column("pollers", sa.Text(), nullable=False),
        sa.Column("last_sweep_at", mailticket.store.models.UTCDateTime(), nullable=True),
        sa.Column("outbox_at", mailticket.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("instance"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    op.drop_table("daemon")
