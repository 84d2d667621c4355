"""Run `finetune` in-process (typer's CliRunner) against the real user API started by the harness."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from app.cli.main import app


@dataclass
class Cli:
    base_url: str
    api_key: str | None
    config: Path

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        environment: dict[str, str | None] = {
            "FINETUNE_BASE_URL": self.base_url,
            "FINETUNE_API_KEY": self.api_key,
            "FINETUNE_CONFIG": str(self.config),
            "COLUMNS": "200",
            **(env or {}),
        }
        result = CliRunner(env=environment).invoke(app, list(args), input=input, prog_name="finetune")
        # Whatever happened, the user must never see a traceback.
        assert "Traceback" not in result.output, result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"finetune {' '.join(args)} raised {result.exception!r}\n{result.output}")
        return result

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
async def cli_user(make_user):  # type: ignore[no-untyped-def]
    return await make_user("cli@example.com", organization="cli-org")


@pytest.fixture
def cli(user_api: str, cli_user, tmp_path: Path) -> Cli:  # type: ignore[no-untyped-def]
    return Cli(base_url=user_api, api_key=cli_user.key, config=tmp_path / "finetune" / "config.toml")


def chat_examples(count: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """Small, distinct arithmetic chats: enough for a tiny model to show a falling loss."""
    examples = []
    for index in range(offset, offset + count):
        left, right = index % 7 + 2, index // 7 + 3
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": "You add numbers."},
                    {"role": "user", "content": f"What is {left} plus {right}? (case {index})"},
                    {"role": "assistant", "content": f"{left} plus {right} is {left + right}."},
                ]
            }
        )
    return examples


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, list[Any]], Path]:
    def write(name: str, rows: list[Any]) -> Path:
        path = tmp_path / name
        path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
        return path

    return write
