"""merge heads: serving's inference usage and the request path's credential notices

Both branched from 3280d0ffe898 and reached main separately, leaving two heads (`upgrade head`
then refuses to run). No schema change of its own.

Revision ID: c4e8a1d7f203
Revises: 6b1f0c2d9a47, b7d3e1f4a925
Create Date: 2026-12-02 05:55:00.000000
"""

from collections.abc import Sequence

revision: str = 'c4e8a1d7f203'
down_revision: str | Sequence[str] | None = ('6b1f0c2d9a47', 'b7d3e1f4a925')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
