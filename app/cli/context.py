"""Per-invocation state shared by every command: where the API is, output mode, consoles, the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import typer
from rich.console import Console

from app.cli.client import ApiClient
from app.cli.config import Connection, resolve
from app.cli.errors import CliError
from app.cli.render import stderr_console, stdout_console


@dataclass
class CliState:
    base_url: str | None = None
    api_key: str | None = None
    json: bool = False
    out: Console = field(default_factory=stdout_console)
    err: Console = field(default_factory=stderr_console)
    _client: ApiClient | None = None

    def connection(self) -> Connection:
        return resolve(self.base_url, self.api_key)

    def client(self) -> ApiClient:
        """The API client; asking for one without a key is an error the user can fix at once."""
        if self._client is None:
            connection = self.connection()
            if not connection.api_key:
                raise CliError(
                    f"No API key for {connection.base_url}.",
                    hint="Run `finetune login`, or pass --api-key / set FINETUNE_API_KEY.",
                )
            self._client = ApiClient(connection)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):  # a command invoked without the root group (only in library use)
        state = CliState()
        ctx.find_root().obj = state
    return state


def _json_mode(ctx: typer.Context, value: bool) -> bool:
    if value:
        state_of(ctx).json = True
    return value


JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print machine-readable JSON only (errors go to stderr as JSON).",
                 callback=_json_mode, is_eager=True),
]  # fmt: skip
