"""credential change notices: NOTIFY credentials_changed when a key or its user changes

Every API process keeps the keys it has checked for a short time; these triggers tell it, at the
commit of the change, to forget them (app/users/credential_cache.py). Statement-level triggers:
one notice per statement, and `UPDATE OF` only on the columns authentication reads, so the
minute-by-minute `last_used_at` updates stay silent.

Revision ID: b7d3e1f4a925
Revises: 6b1f0c2d9a47
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = 'b7d3e1f4a925'
down_revision: str | None = '6b1f0c2d9a47'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = {
    "api_keys": "revoked_at, expires_at, user_id, secret_hash, lookup_prefix",
    "users": "roles, disabled, organization_id",
}


def upgrade() -> None:
    op.execute("""
        CREATE FUNCTION notify_credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('credentials_changed', TG_TABLE_NAME || ' ' || TG_OP);
            RETURN NULL;
        END
        $$
    """)
    for table, columns in WATCHED.items():
        op.execute(f"""
            CREATE TRIGGER {table}_credentials_changed
            AFTER UPDATE OF {columns} OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION notify_credentials_changed()
        """)


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_credentials_changed ON {table}")
    op.execute("DROP FUNCTION notify_credentials_changed()")
