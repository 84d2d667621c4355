"""The `finetune` command: login, files, jobs, models, evals, chat (entry point `app.cli.main:app`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from app.cli.chat import chat
from app.cli.client import ApiClient
from app.cli.config import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    Connection,
    config_path,
    normalise_base_url,
    read_config,
    write_config,
)
from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import CliError, ExitCode
from app.cli.evals import evals_app
from app.cli.files import files_app
from app.cli.jobs import jobs_app
from app.cli.models import models_app
from app.cli.render import emit_json, show_error


class CliGroup(TyperGroup):
    """Turns every `CliError` of any subcommand into one printed message and a non-zero exit, no traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context type is private
        try:
            return super().invoke(ctx)
        except CliError as error:
            state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
            if state.json:
                state.err.print_json(data=error.as_json())
            else:
                show_error(state.err, error)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        finally:
            if isinstance(ctx.obj, CliState):
                ctx.obj.close()


app = typer.Typer(
    cls=CliGroup,
    help="Fine-tune open LLMs on your platform: upload data, launch and watch jobs, download weights.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(files_app, name="files")
app.add_typer(jobs_app, name="jobs")
app.add_typer(models_app, name="models")
app.add_typer(evals_app, name="evals")
app.command("chat")(chat)


@app.callback()
def main(
    ctx: typer.Context,
    base_url: Annotated[
        str | None, typer.Option("--base-url", envvar=ENV_BASE_URL, help=f"API address (default {DEFAULT_BASE_URL}).")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar=ENV_API_KEY, help="Platform API key.")] = None,
) -> None:
    """Flags win over environment variables, which win over the file `finetune login` writes."""
    ctx.obj = CliState(base_url=base_url, api_key=api_key)


@app.command()
def login(
    ctx: typer.Context,
    base_url: Annotated[str | None, typer.Option("--base-url", help="API address to log in to.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key (prompted, hidden, if missing).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Check an API key against the API (GET /v1/models) and save it (mode 0600) for later commands."""
    state = state_of(ctx)
    stored = read_config(config_path())
    url = base_url or state.base_url or typer.prompt("API base URL", default=stored.get("base_url", DEFAULT_BASE_URL))
    key = api_key or state.api_key or typer.prompt("API key", hide_input=True)
    connection = Connection(base_url=normalise_base_url(url), api_key=key.strip())
    client = ApiClient(connection)
    try:
        models = client.get("/v1/models")["data"]
    finally:
        client.close()
    path = config_path()
    write_config(path, connection.base_url, str(connection.api_key))
    if state.json:
        emit_json({"base_url": connection.base_url, "config_path": str(path), "models": len(models)})
        return
    state.out.print(f"Logged in to {connection.base_url} ({len(models)} model(s) visible). Saved to {path}.")


@app.command()
def logout(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Forget the saved API key."""
    state = state_of(ctx)
    path = config_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    if state.json:
        emit_json({"config_path": str(path), "removed": existed})
        return
    state.out.print(f"Removed {path}." if existed else f"Nothing to remove at {path}.")


def run() -> None:
    app()


__all__ = ["ExitCode", "app", "run"]
