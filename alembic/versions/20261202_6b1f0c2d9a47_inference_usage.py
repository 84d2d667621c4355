"""inference usage and rate limits

Revision ID: 6b1f0c2d9a47
Revises: 3280d0ffe898
Create Date: 2026-12-02 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '6b1f0c2d9a47'
down_revision: str | None = '3280d0ffe898'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'inference_usage',
        sa.Column('organization_id', sa.String(length=64), nullable=False),
        sa.Column('model', sa.String(length=300), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('requests', sa.BigInteger(), nullable=False),
        sa.Column('prompt_tokens', sa.BigInteger(), nullable=False),
        sa.Column('completion_tokens', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_inference_usage_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('organization_id', 'model', 'day', name=op.f('pk_inference_usage')),
    )
    op.create_table(
        'inference_rate_limits',
        sa.Column('organization_id', sa.String(length=64), nullable=False),
        sa.Column('requests_per_minute', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_inference_rate_limits_organization_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_inference_rate_limits')),
    )


def downgrade() -> None:
    op.drop_table('inference_rate_limits')
    op.drop_table('inference_usage')
