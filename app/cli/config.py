"""Where the client finds the API: flags, then environment, then the file `finetune login` writes."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.cli.errors import CliError

DEFAULT_BASE_URL = "http://localhost:8080"
ENV_BASE_URL = "FINETUNE_BASE_URL"
ENV_API_KEY = "FINETUNE_API_KEY"
ENV_CONFIG = "FINETUNE_CONFIG"


@dataclass(frozen=True)
class Connection:
    base_url: str
    api_key: str | None


def config_path() -> Path:
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "finetune" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"Cannot read the config file {path}: {error}", hint="Run `finetune login` again.") from None
    return {key: value for key, value in data.items() if isinstance(value, str)}


def write_config(path: Path, base_url: str, api_key: str) -> None:
    """Write the file with mode 0600 from the first byte: the key must never be readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JSON strings are valid TOML basic strings, so quoting is exact without a TOML writer.
    text = f"base_url = {json.dumps(base_url)}\napi_key = {json.dumps(api_key)}\n"
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(partial, 0o600)  # the umask cannot have widened it, but an older file may have other modes
    os.replace(partial, path)


def normalise_base_url(url: str) -> str:
    """Accept `host:8080`, a trailing slash or a trailing `/v1`: every path the client sends starts with /v1."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = f"http://{url}"
    return url.removesuffix("/v1")


def resolve(base_url: str | None, api_key: str | None) -> Connection:
    """Flags and environment arrive already merged (typer reads the env vars); the file fills what is left."""
    stored = read_config(config_path()) if base_url is None or api_key is None else {}
    stored_url = normalise_base_url(stored["base_url"]) if stored.get("base_url") else None
    chosen_url = normalise_base_url(base_url) if base_url else stored_url or DEFAULT_BASE_URL
    # A saved key is only ever sent to the server it was saved for.
    stored_key = stored.get("api_key") if stored_url in (None, chosen_url) else None
    return Connection(base_url=chosen_url, api_key=api_key or stored_key or None)
