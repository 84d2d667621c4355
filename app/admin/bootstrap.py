"""Operator commands run in a container with the platform's settings, no admin key needed: the first admin
of a fresh deployment, and the dataset vectors built again (after a lost or restored Qdrant).

    docker compose run --rm -T admin-api python -m app.admin.bootstrap create-admin --email ops@example.com
    docker compose run --rm -T admin-api python -m app.admin.bootstrap reindex-vectors --all

Prints the new key alone on stdout, once (messages go to stderr), so `ADMIN_API_KEY=$(...)` keeps it.
Running it again creates nothing and prints no key; `--new-key` issues another key to that admin
(a lost key: revoke the old one afterwards with DELETE /admin/v1/api-keys/{id}).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import get_settings
from app.core.errors import PlatformError
from app.core.migrations import masked
from app.core.outbox import relay
from app.files import service as files
from app.users.bootstrap import ADMIN_ORGANIZATION, AdminAccount, ensure_admin

cli = typer.Typer(add_completion=False, no_args_is_help=True)


@contextmanager
def _refusals(command: str) -> Iterator[None]:
    """What keeps a command from the database, said in one line (exit 1), never a traceback."""
    try:
        yield
    except ValidationError as error:  # the settings: a missing or placeholder secret
        typer.echo(f"{command}: the configuration is refused: {error}", err=True)
        raise typer.Exit(1) from None
    except PlatformError as error:
        typer.echo(f"{command}: {error.message}", err=True)
        raise typer.Exit(1) from None
    except ProgrammingError as error:  # no tables: the schema was never migrated
        typer.echo(f"{command}: the database has no platform schema; run the migrations first "
                   f"(docker compose run --rm migrate). {type(error.orig).__name__}", err=True)  # fmt: skip
        raise typer.Exit(1) from None
    except (DBAPIError, OSError) as error:
        url = masked(get_settings().async_database_url)
        typer.echo(f"{command}: cannot reach the database at {url}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(1) from None


@cli.callback()
def commands() -> None:
    """Operator commands that need no admin key: the first admin, the dataset vectors."""


@asynccontextmanager
async def _database() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database, for one command (no pool left behind)."""
    engine = create_async_engine(get_settings().async_database_url, poolclass=NullPool)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _ensure(email: str, name: str, organization: str, new_key: bool) -> AdminAccount:
    async with _database() as sessionmaker, sessionmaker() as session:
        account = await ensure_admin(session, get_settings(), email, name=name, organization=organization,
                                     new_key=new_key)  # fmt: skip
        await session.commit()
        return account


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (their login name in the audit log).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
    organization: Annotated[str, typer.Option(help="Organization the admin belongs to.")] = ADMIN_ORGANIZATION,
    new_key: Annotated[bool, typer.Option("--new-key", help="Issue another key to an existing admin.")] = False,
) -> None:
    """Create the admin EMAIL (idempotent) and print its API key once."""
    with _refusals("create-admin"):
        account = asyncio.run(_ensure(email, name, organization, new_key))
    user = account.user
    if account.created:
        typer.echo(f"Created admin {user.email} ({user.id}). Its API key follows, shown this once:", err=True)
    elif account.key:
        typer.echo(f"Issued another API key to admin {user.email} ({user.id}), shown this once:", err=True)
    else:
        typer.echo(f"Admin {user.email} ({user.id}) exists; nothing changed. Keys are shown only when issued "
                   "(--new-key issues another).", err=True)  # fmt: skip
    if account.key:
        sys.stdout.write(account.key + "\n")


async def _reindex(everything: bool, since: datetime | None) -> tuple[int, int, int]:
    """How many files were queued, how many of them are deleted, how many messages went out at once."""
    async with _database() as sessionmaker:
        async with sessionmaker() as session:
            rows, messages = await files.reindex(session, everything, since)
            await session.commit()
        # Committed: what does not go out now (the broker away), the reconciler publishes within a minute.
        sent = await relay(sessionmaker, messages)
        return len(rows), sum(row.deleted_at is not None for row in rows), sent


@cli.command("reindex-vectors")
def reindex_vectors(
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every stored file, indexed or not (a lost or emptied Qdrant); deleted files' vectors are removed.",
        ),
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Also every file uploaded at or after this time (UTC), e.g. the time of the Qdrant snapshot restored."
        ),
    ] = None,
) -> None:
    """Build the dataset vectors again from the stored files, on the CPU workers.

    Without options: the files whose indexing never finished (pending, failed, cut short).
    """
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with _refusals("reindex-vectors"):
        count, deleted, sent = asyncio.run(_reindex(everything, since))
    gone = f" ({deleted} deleted: their vectors are removed)" if deleted else ""
    if sent < count:
        typer.echo(f"reindex-vectors: {count - sent} message(s) could not be published now (the broker?); "
                   "the reconciler sends them shortly.", err=True)  # fmt: skip
    typer.echo(f"Queued {count} file(s) for indexing{gone}; the CPU workers index them now "
               "(GET /v1/files/{id}: index_status).", err=True)  # fmt: skip
    sys.stdout.write(f"{count}\n")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
