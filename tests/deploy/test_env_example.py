"""`.env.example`, the Settings class and docker-compose.yml name the same variables."""

from __future__ import annotations

import ast
import itertools
import re
from typing import Any

import pytest
from pydantic import TypeAdapter

from app.core.config import Settings
from tests.deploy import compose_rules as rules

ENV_EXAMPLE = rules.REPO_ROOT / ".env.example"
COMPOSE_FILES = (
    rules.COMPOSE_FILE,
    *(rules.REPO_ROOT / "docker" / name for name in ("compose.dev.yml", "compose.cpu.yml", "compose.tls.yml")),
)
# Read by a tool itself rather than by the application or by a ${VAR} of compose.
READ_BY_TOOLS = {
    "COMPOSE_PROJECT_NAME": "docker compose",
    "COMPOSE_FILE": "docker compose",
    "HF_HUB_OFFLINE": "huggingface_hub",
    "FORWARDED_ALLOW_IPS": "uvicorn",
    "WEB_CONCURRENCY": "uvicorn",
}
# Set in containers for libraries and the runtime, not settings of the application.
RUNTIME_VARIABLES = {
    "HF_HOME",
    "XDG_CACHE_HOME",
    "TRITON_CACHE_DIR",
    "MPLCONFIGDIR",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
}
LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def example_entries() -> dict[str, tuple[bool, str]]:
    """NAME → (commented out, value) for every assignment in .env.example."""
    entries: dict[str, tuple[bool, str]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match:
            name = match.group(2)
            assert name not in entries, f"{name} appears twice in .env.example"
            entries[name] = (match.group(1) is not None, match.group(3))
    return entries


def settings_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def compose_variables() -> set[str]:
    names: set[str] = set()
    for path in COMPOSE_FILES:
        # $${VAR} is an escaped dollar, left for the container's shell.
        text = path.read_text(encoding="utf-8").replace("$$", "")
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    return names


def test_every_setting_is_documented() -> None:
    assert sorted(settings_names() - set(example_entries())) == []


def test_every_compose_variable_is_documented() -> None:
    assert sorted(compose_variables() - set(example_entries())) == []


def test_no_stale_names() -> None:
    known = settings_names() | compose_variables() | set(READ_BY_TOOLS)
    assert sorted(set(example_entries()) - known) == []


def _attributes_read(tree: ast.AST) -> set[str]:
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def settings_read_by_the_code() -> set[str]:
    """Settings fields some module of app/ reads: directly, or through a property of Settings that it reads.

    The validator's fields count as read: it checks them whenever settings are loaded.
    """
    config_path = rules.REPO_ROOT / "app" / "core" / "config.py"
    read: set[str] = set()
    for path in (rules.REPO_ROOT / "app").rglob("*.py"):
        if path != config_path:
            read |= _attributes_read(ast.parse(path.read_text(encoding="utf-8")))
    settings_class = next(
        node for node in ast.parse(config_path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )  # fmt: skip
    for member in settings_class.body:
        if isinstance(member, ast.FunctionDef) and (member.name in read or member.name.startswith("_check")):
            read |= _attributes_read(member)
    return read & set(Settings.model_fields)


def test_every_setting_is_read_by_the_code() -> None:
    """A variable documented in .env.example changes something: no setting is declared and then ignored."""
    assert sorted(set(Settings.model_fields) - settings_read_by_the_code()) == []


def test_every_entry_has_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for above, line in itertools.pairwise(lines):
        if LINE.match(line):
            assert above.startswith("# ") and not LINE.match(above), f"{line} has no comment of its own"


def test_commented_values_are_the_code_defaults() -> None:
    for name, (commented, value) in example_entries().items():
        field = Settings.model_fields.get(name.lower())
        if field is None or field.annotation is None or field.default is None or not commented:
            continue
        parsed = TypeAdapter[Any](field.annotation).validate_python(value)
        assert parsed == field.default, f"{name}={value} but the code default is {field.default!r}"


def test_required_secrets_hold_placeholders_the_app_refuses() -> None:
    entries = example_entries()
    for name in rules.REQUIRED_SECRETS:
        commented, value = entries[name]
        assert not commented and "changeme" in value, name
        assert re.search(rf"\$\{{{name}:\?", rules.COMPOSE_FILE.read_text(encoding="utf-8")), name


def test_production_settings_refuse_the_example_values(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = example_entries()
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgresql+asyncpg://finetune:{entries['POSTGRES_PASSWORD'][1]}@postgres:5432/finetune",
    )
    monkeypatch.setenv("API_KEY_PEPPER", entries["API_KEY_PEPPER"][1])
    with pytest.raises(ValueError, match="placeholder"):
        Settings(_env_file=None)


def _app_environment(service: dict[str, Any]) -> set[str]:
    return set(service.get("environment") or {})


@pytest.mark.parametrize("service_name", (*rules.APP_SERVICES, "migrate"))
def test_compose_sets_only_real_settings(service_name: str) -> None:
    service = rules.services(rules.load_compose())[service_name]
    unknown = _app_environment(service) - settings_names() - RUNTIME_VARIABLES
    assert sorted(unknown) == []
    assert service.get("env_file") == ".env"
