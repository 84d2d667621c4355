"""Every command in the `bash` blocks of README.md and docs/*.md names what exists, checked without Docker.

docs/admin.md runs as a whole (test_admin_walk.py). Here, statically, for every page: a `docker compose`
command names services and files of the compose files, a `finetune` command is a command of the CLI with
options it takes, `python -m` names a module of app/, `make` a target of the Makefile, and a repository
path the commands use exists.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from app.cli.main import app as cli_app
from tests.deploy import compose_rules as rules

ROOT = rules.REPO_ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# An override the page has the operator write: a yaml block that starts with `# <name>.yml`.
WRITTEN = re.compile(r"^```yaml\n# ([\w.-]+\.yml)\b", re.MULTILINE)
OVERLAYS = [ROOT / "docker" / name for name in ("compose.dev.yml", "compose.cpu.yml", "compose.tls.yml")]
# docker compose options that take a value (the others are flags).
COMPOSE_VALUE_OPTIONS = {
    "-f", "--file", "--profile", "-p", "--project-name", "--env-file", "-e", "-u", "--user", "-w", "--workdir",
    "--tail", "--since", "--until", "--scale", "--entrypoint", "-t", "--timeout", "-v", "--volume",
}  # fmt: skip
# Subcommands followed by service names: all of them, or (run, exec) one and then its command.
SERVICE_LISTS = {"up", "stop", "start", "restart", "logs", "build", "ps", "pull", "rm", "kill"}
ONE_SERVICE = {"run", "exec", "cp"}
SHELL_BREAKS = {"|", "||", "&&", ";", ">", "2>&1", ")"}


def commands(page: Path) -> Iterator[list[str]]:
    """Each command line of the page's bash blocks as words (continuations joined, comments dropped)."""
    for block in BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # a quote spanning lines (a loop body): nothing of ours to check there
                continue
            if words:
                yield words


def compose_services() -> set[str]:
    names = set(rules.services(rules.load_compose()))
    for overlay in OVERLAYS:
        names |= set(rules.services(rules.load_compose(overlay)))
    return names


def compose_problems(words: list[str], services: set[str], written: set[str]) -> list[str]:
    rest = words[2:]
    problems, index = [], 0
    while index < len(rest) and rest[index].startswith("-"):
        given = rest[index + 1] if index + 1 < len(rest) else ""
        if rest[index] in ("-f", "--file") and given not in written and not (ROOT / given).is_file():
            problems.append(f"no compose file {given}")
        index += 2 if rest[index] in COMPOSE_VALUE_OPTIONS else 1
    if index >= len(rest):
        return problems
    subcommand, arguments = rest[index], rest[index + 1 :]
    named = []
    position = 0
    while position < len(arguments) and arguments[position] not in SHELL_BREAKS:
        word = arguments[position]
        if word.startswith("-"):
            position += 2 if word in COMPOSE_VALUE_OPTIONS else 1
            continue
        named.append(word)
        if subcommand in ONE_SERVICE:
            break
        position += 1
    if subcommand in ONE_SERVICE | SERVICE_LISTS:
        problems += [f"no service {name!r}" for name in named if name.split(":")[0] not in services]
    return problems


def finetune_problems(words: list[str]) -> list[str]:
    # typer 0.29 vendors click: its groups are told apart by what they do, not by click's classes.
    command: Any = typer.main.get_command(cli_app)
    path = ["finetune"]
    for word in words[1:]:
        if word in SHELL_BREAKS:
            break
        if hasattr(command, "list_commands") and not word.startswith("-"):
            found = command.get_command(command.context_class(command), word)
            if found is None:
                return [f"{' '.join(path)} has no command {word!r}"]
            command, path = found, [*path, word]
            continue
        option = word.split("=")[0]
        if option.startswith("-") and not any(option in p.opts + p.secondary_opts for p in command.params):
            return [f"{' '.join(path)} takes no option {option}"]
    return []


def module_problems(words: list[str]) -> list[str]:
    if "-m" not in words:
        return []
    module = words[words.index("-m") + 1]
    if not module.startswith("app.") or importlib.util.find_spec(module) is not None:
        return []
    return [f"no module {module}"]


def make_problems(words: list[str]) -> list[str]:
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE))
    named = [word for word in words[1:] if not word.startswith("-") and "=" not in word and word not in SHELL_BREAKS]
    return [f"no make target {name!r}" for name in named[:1] if name not in targets]


def path_problems(words: list[str]) -> list[str]:
    used = [word.split("=", 1)[-1].lstrip("@") for word in words]
    ours = [word for word in used if word.startswith(("scripts/", "docker/", "examples/", "policies/"))]
    return [f"no file {word}" for word in ours if not (ROOT / word).exists()]


def page_problems(page: Path) -> list[str]:
    services = compose_services()
    written = set(WRITTEN.findall(page.read_text(encoding="utf-8")))
    problems = []
    for words in commands(page):
        found = path_problems(words)
        if words[:2] == ["docker", "compose"]:
            found += compose_problems(words, services, written)
        elif words[0] == "finetune":
            found += finetune_problems(words)
        elif words[0] == "make":
            found += make_problems(words)
        found += module_problems(words)
        problems += [f"{page.name}: `{' '.join(words)[:100]}`: {problem}" for problem in found]
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_page_commands_name_what_exists(page: Path) -> None:
    assert page_problems(page) == []


def test_the_checks_see_a_wrong_command(tmp_path: Path) -> None:
    """A check that cannot fail would prove nothing: each kind of mistake is reported."""
    wrong = tmp_path / "wrong.md"
    wrong.write_text(
        "```bash\n"
        "docker compose restart celery-gpu-worker\n"
        "docker compose -f docker/compose.gpu.yml up -d\n"
        "finetune jobs launch --model x\n"
        "finetune jobs create --epoch 3\n"
        "python -m app.admin.bootstrapper create-admin\n"
        "make deploy\n"
        "finetune files upload examples/missing.jsonl\n"
        "```\n",
        encoding="utf-8",
    )
    found = "\n".join(page_problems(wrong))
    for expected in ("no service 'celery-gpu-worker'", "no compose file docker/compose.gpu.yml",
                     "has no command 'launch'", "takes no option --epoch", "no module app.admin.bootstrapper",
                     "no make target 'deploy'", "no file examples/missing.jsonl"):  # fmt: skip
        assert expected in found, found
