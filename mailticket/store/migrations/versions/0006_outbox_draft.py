"""outbox drafts: a mail is composed when it is delivered, not when it is queued

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft", sa.Text(), nullable=True))


def downgrade() -> None:
    # a row still waiting as a draft has no bytes the old schema could send: refuse
    # rather than lose it (deliver the outbox first)
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM outbox WHERE draft IS NOT NULL"))
    if waiting.scalar():
        raise RuntimeError("outbox rows still wait as drafts: deliver them before downgrading")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("draft")
