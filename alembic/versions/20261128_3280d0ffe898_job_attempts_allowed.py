"""job attempts allowed

Revision ID: 3280d0ffe898
Revises: 50c1e9008845
Create Date: 2026-11-28 23:01:55.724818
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '3280d0ffe898'
down_revision: str | None = '50c1e9008845'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('attempts_allowed', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'attempts_allowed')
