"""evals: OpenAI's Evals API (evals, runs, output items) and a job's comparison with its base model

Revision ID: c4e8a1d2f305
Revises: b7d3e1f4a925
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c4e8a1d2f305'
down_revision: str | None = 'b7d3e1f4a925'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('comparison', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_table(
        'evals',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.String(length=64), nullable=False),
        sa.Column('organization_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('data_source_config', sa.JSON(), nullable=False),
        sa.Column('testing_criteria', sa.JSON(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('fine_tuning_job_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['fine_tuning_job_id'], ['jobs.id'], name=op.f('fk_evals_fine_tuning_job_id_jobs'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_evals_organization_id_organizations')),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_evals_owner_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_evals')),
    )
    op.create_index(op.f('ix_evals_organization_id'), 'evals', ['organization_id'], unique=False)
    op.create_index(op.f('ix_evals_owner_id'), 'evals', ['owner_id'], unique=False)
    op.create_table(
        'eval_runs',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('eval_id', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.String(length=64), nullable=False),
        sa.Column('organization_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('model', sa.String(length=300), nullable=True),
        sa.Column('data_source', sa.JSON(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('total_items', sa.Integer(), nullable=False),
        sa.Column('result_counts', sa.JSON(), nullable=False),
        sa.Column('per_model_usage', sa.JSON(), nullable=False),
        sa.Column('per_testing_criteria_results', sa.JSON(), nullable=False),
        sa.Column('error', sa.JSON(), nullable=True),
        sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
        sa.Column('fine_tuning_job_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['eval_id'], ['evals.id'], name=op.f('fk_eval_runs_eval_id_evals'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['fine_tuning_job_id'], ['jobs.id'],
                                name=op.f('fk_eval_runs_fine_tuning_job_id_jobs'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_eval_runs_organization_id_organizations')),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_eval_runs_owner_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_runs')),
    )
    op.create_index(op.f('ix_eval_runs_eval_id'), 'eval_runs', ['eval_id'], unique=False)
    op.create_index(op.f('ix_eval_runs_organization_id'), 'eval_runs', ['organization_id'], unique=False)
    op.create_index(op.f('ix_eval_runs_owner_id'), 'eval_runs', ['owner_id'], unique=False)
    op.create_index(op.f('ix_eval_runs_status'), 'eval_runs', ['status'], unique=False)
    op.create_table(
        'eval_output_items',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('eval_id', sa.String(length=64), nullable=False),
        sa.Column('datasource_item_id', sa.Integer(), nullable=False),
        sa.Column('datasource_item', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('results', sa.JSON(), nullable=False),
        sa.Column('sample', sa.JSON(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['eval_runs.id'], name=op.f('fk_eval_output_items_run_id_eval_runs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_output_items')),
        sa.UniqueConstraint('run_id', 'datasource_item_id', name=op.f('uq_eval_output_items_run_id')),
    )


def downgrade() -> None:
    op.drop_table('eval_output_items')
    op.drop_table('eval_runs')
    op.drop_table('evals')
    op.drop_column('jobs', 'comparison')
