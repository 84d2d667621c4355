"""`python -m app.core.secrets_check`: refuse to start a stack whose secrets are still examples.

Run by the `secrets-check` one-shot of docker-compose.yml, which every other service waits for,
PostgreSQL included: a `docker compose up` before `.env` was edited stops here instead of
initialising the database with the passwords of `.env.example`. The application's own settings
refuse the same values again at every start (app/core/config.py).
"""

from __future__ import annotations

import os
import sys

from app.core.config import looks_like_placeholder

# Every secret the stack reads from .env; empty optional ones (HF_TOKEN, FLOWER_BASIC_AUTH) pass.
SECRETS = (
    "POSTGRES_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "REDIS_PASSWORD",
    "QDRANT_API_KEY",
    "API_KEY_PEPPER",
    "HF_TOKEN",
    "FLOWER_BASIC_AUTH",
)


def placeholders(environ: dict[str, str]) -> list[str]:
    """The secrets in `environ` that still hold an example or placeholder value."""
    return [name for name in SECRETS if environ.get(name) and looks_like_placeholder(environ[name])]


def main() -> int:
    found = placeholders(dict(os.environ))
    if not found:
        print("secrets-check: no example secret in use")
        return 0
    print(
        f"secrets-check: {', '.join(found)} still hold the example value of .env.example (or a placeholder). "
        "Set each to a random value, e.g. `openssl rand -hex 32`, in .env, then start again. If PostgreSQL was "
        "already initialised with the example passwords, see docs/operations.md, 'Changing passwords'.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
