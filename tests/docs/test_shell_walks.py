"""The README's quick start and docs/cli.md's first walk, run as written through `finetune` (typer's runner).

Only what a reader fills in is replaced: the base URL and key `make run` printed, the demo model's catalog id
(the suite registers the same tiny model as `tiny-llama`), and the placeholders `file-...` and `<id>` with the
ids the earlier commands printed. The organization is called `demo`, as on a `make run` stack, so the `ft:` ids
the pages spell out must be the ids the platform gives.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.docs.examples import ROOT

pytestmark = pytest.mark.slow

DEMO_MODEL = "tiny-llama-demo"
DOCS_BASE_URL = "http://127.0.0.1:8080"


def _bash_block(page: str, after: str = "") -> list[list[str]]:
    """The commands of the first bash block of `page` after the text `after`, as words."""
    text = (ROOT / page).read_text(encoding="utf-8").split(after, 1)[1] if after else (ROOT / page).read_text()
    block = re.search(r"^```bash\n(.*?)^```", text, re.S | re.M).group(1)  # type: ignore[union-attr]
    lines = [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]
    return [words for words in lines if words]


class Walk:
    """Runs a page's `finetune` lines in order, filling in the placeholders from what earlier lines printed."""

    def __init__(self, cli: Cli, model: str, key: str) -> None:
        self.cli, self.key = cli, key
        self.fill = {DOCS_BASE_URL: cli.base_url, "$USER_API_KEY": key, DEMO_MODEL: model}
        self.model = model
        self.outputs: list[str] = []
        self.uploads: list[str] = []

    def word(self, word: str) -> str:
        for placeholder, value in self.fill.items():
            word = word.replace(placeholder, value)
        assert "<" not in word and "..." not in word, f"a placeholder no earlier command filled: {word}"
        return word

    def run(self, words: list[str], input: str | None = None) -> str:
        assert words[0] == "finetune", words
        result = self.cli(*(self.word(word) for word in words[1:]), input=input)
        assert result.exit_code == 0, (words, result.output)
        output = result.stdout + result.stderr
        uploaded = re.search(r"Uploaded (?:\S+ as )?(file-\w+)", output)
        if uploaded:
            self.fill["file-..."] = uploaded.group(1)
            self.uploads.append(uploaded.group(1))
        created = re.search(r"Fine-tuned model: (ft:\S+)", output)
        if created:
            model = created.group(1)
            self.fill["<id>"] = model.rsplit(":", 1)[1]
            self.fine_tuned = model
        self.outputs.append(output)
        return output


@pytest.fixture
async def demo_user(make_user):  # type: ignore[no-untyped-def]
    return await make_user("demo@example.com", organization="demo")


def _walk(serving, tiny_model: str, demo_user, tmp_path: Path) -> Walk:  # type: ignore[no-untyped-def]
    # No key in the environment: `finetune login` must save the one every later command uses.
    cli = Cli(base_url=serving.user_api, api_key=None, config=tmp_path / "finetune" / "config.toml")
    return Walk(cli, tiny_model, demo_user.key)


@pytest.mark.timeout(900)
async def test_readme_quick_start_runs_as_written(  # type: ignore[no-untyped-def]
    serving, tiny_model, demo_user, cpu_worker, gpu_worker, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(ROOT)  # the quick start names examples/train.jsonl from the repository's root
    commands = _bash_block("README.md", "## Quick start")
    assert commands[0] == [".", ".venv/bin/activate"] and (ROOT / ".venv" / "bin" / "activate").is_file()
    commands = commands[1:]
    assert [words[1:3] for words in commands] == [
        ["login", "--base-url"], ["models", "list"], ["files", "upload"], ["jobs", "create"], ["jobs", "create"],
        ["models", "download"], ["chat", f"ft:{DEMO_MODEL}:demo:demo:<id>"],
    ]  # fmt: skip
    walk = _walk(serving, tiny_model, demo_user, tmp_path)
    target = tmp_path / "adapter"
    serving.wait_engine()
    for words in commands:
        if words[1] == "models" and words[2] == "download":
            words = [*words[:-1], str(target)]  # the page's ./adapter, out of the repository
        walk.run(words, input="What is the capital of France?\n" if words[1] == "chat" else None)
    logged_in, listed, uploaded, estimated, watched, downloaded, chatted = walk.outputs
    assert logged_in.startswith(f"Logged in to {serving.user_api} (1 model(s) visible)"), logged_in
    assert demo_user.key not in logged_in
    assert tiny_model in listed, listed
    # A local path is uploaded by each command given it (the estimate's upload is the file it estimated).
    outputs = (uploaded, estimated, watched)
    assert len(walk.uploads) == 3 and all(file in output for file, output in zip(walk.uploads, outputs, strict=True))
    assert "Resolved hyperparameters" in estimated and "estimated time" in estimated, estimated
    assert "succeeded" in watched and walk.fine_tuned == f"ft:{tiny_model}:demo:demo:{walk.fill['<id>']}"
    manifest = json.loads((target / "manifest.json").read_text())
    assert (target / "adapter_config.json").is_file() and manifest["files"], downloaded
    # The streamed answer of the fine-tune (exit 0 above): text, whatever a 12-line fine-tune of a tiny model says.
    assert chatted.strip(), chatted


@pytest.mark.timeout(900)
async def test_cli_page_walk_runs_as_written(  # type: ignore[no-untyped-def]
    serving, tiny_model, demo_user, cpu_worker, gpu_worker, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The page's train.jsonl and valid.jsonl are the reader's own: the repository's example stands in.
    examples = (ROOT / "examples" / "train.jsonl").read_text().splitlines(keepends=True)
    Path("train.jsonl").write_text("".join(examples))
    Path("valid.jsonl").write_text("".join(examples[:4]))
    commands = _bash_block("docs/cli.md")
    assert [words[1:3] for words in commands] == [
        ["login", "--base-url"], ["models", "list"], ["files", "upload"], ["jobs", "create"], ["jobs", "create"],
        ["models", "download"],
    ]  # fmt: skip
    walk = _walk(serving, tiny_model, demo_user, tmp_path)
    for words in commands:
        walk.run(words)
    *_, watched, downloaded = walk.outputs
    assert "succeeded" in watched and walk.fine_tuned == f"ft:{tiny_model}:demo:demo:{walk.fill['<id>']}"
    assert (tmp_path / "my-adapter" / "adapter_config.json").is_file(), downloaded
