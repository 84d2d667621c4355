"""served model notices: NOTIFY served_models_changed when a base model or a fine-tuned model changes

Every user API process keeps what serving needs of the models it has been asked for (who owns a
fine-tuned model, whether it was deleted, its adapter; whether a base model is allowed, its chat
template) for a short time; these triggers tell it, at the commit of the change, to forget them
(app/inference/served_models.py). Inserts need no notice: a model is cached only once it exists.

Revision ID: d9a3f6b1c027
Revises: c4e8a1d2f305
Create Date: 2026-12-04 04:30:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = 'd9a3f6b1c027'
down_revision: str | None = 'c4e8a1d2f305'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = {
    "base_models": "id, allowed, chat_template",
    "fine_tuned_models": "id, owner_id, organization_id, base_model, adapter_path, deleted_at",
}


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION notify_served_models_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('served_models_changed', TG_TABLE_NAME || ' ' || TG_OP);
            RETURN NULL;
        END
        $$
    """)
    for table, columns in WATCHED.items():
        op.execute(f"""
            CREATE TRIGGER {table}_served_models_changed
            AFTER UPDATE OF {columns} OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION notify_served_models_changed()
        """)


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_served_models_changed ON {table}")
    op.execute("DROP FUNCTION notify_served_models_changed()")
