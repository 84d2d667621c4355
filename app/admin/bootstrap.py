"""Operator commands that need no admin key yet: the first admin of a fresh deployment.

    docker compose run --rm -T admin-api python -m app.admin.bootstrap create-admin --email ops@example.com

Prints the new key alone on stdout, once (messages go to stderr), so `ADMIN_API_KEY=$(...)` keeps it.
Running it again creates nothing and prints no key; `--new-key` issues another key to that admin
(a lost key: revoke the old one afterwards with DELETE /admin/v1/api-keys/{id}).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import get_settings
from app.core.errors import PlatformError
from app.core.migrations import masked
from app.users.bootstrap import ADMIN_ORGANIZATION, AdminAccount, ensure_admin

cli = typer.Typer(add_completion=False, no_args_is_help=True)


@cli.callback()
def commands() -> None:
    """Operator commands that need no admin key yet."""


async def _ensure(email: str, name: str, organization: str, new_key: bool) -> AdminAccount:
    settings = get_settings()
    engine = create_async_engine(settings.async_database_url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            account = await ensure_admin(session, settings, email, name=name, organization=organization,
                                         new_key=new_key)  # fmt: skip
            await session.commit()
            return account
    finally:
        await engine.dispose()


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (their login name in the audit log).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
    organization: Annotated[str, typer.Option(help="Organization the admin belongs to.")] = ADMIN_ORGANIZATION,
    new_key: Annotated[bool, typer.Option("--new-key", help="Issue another key to an existing admin.")] = False,
) -> None:
    """Create the admin EMAIL (idempotent) and print its API key once."""
    try:
        account = asyncio.run(_ensure(email, name, organization, new_key))
    except ValidationError as error:  # the settings: a missing or placeholder secret
        typer.echo(f"create-admin: the configuration is refused: {error}", err=True)
        raise typer.Exit(1) from None
    except PlatformError as error:
        typer.echo(f"create-admin: {error.message}", err=True)
        raise typer.Exit(1) from None
    except ProgrammingError as error:  # no tables: the schema was never migrated
        typer.echo(f"create-admin: the database has no platform schema; run the migrations first "
                   f"(docker compose run --rm migrate). {type(error.orig).__name__}", err=True)  # fmt: skip
        raise typer.Exit(1) from None
    except (DBAPIError, OSError) as error:
        url = masked(get_settings().async_database_url)
        typer.echo(f"create-admin: cannot reach the database at {url}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(1) from None
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
