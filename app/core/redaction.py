"""What a user may read: the text the platform shows (error messages, job events) without host paths or secrets.

Trainer output and library exceptions carry whatever they met on the way: the local path of a
base model ("loaded /srv/data/models/base/tiny-llama-demo on CPU"), a job's work directory, a URL
with its password, a token. Every message of the user API leaves through `user_readable` (the
error shape, job events and job errors), whichever process wrote it and whenever: rows written
before this rule existed are shown clean too.

- An absolute path keeps only its last component ("tiny-llama-demo", "train.jsonl"): enough to
  recognise the file, nothing about the host. Relative names (hub ids "org/model") are left alone.
- Credentials in URLs, platform API keys and the values of the secret settings become "[redacted]".
"""

from __future__ import annotations

import re
from functools import cache

from pydantic import ValidationError

from app.core.config import Settings, get_settings

REDACTED = "[redacted]"
# One path component: no whitespace, no slash, none of the quotes and brackets that end a path in prose.
_COMPONENT = r"[^\s/'\"`()\[\]{}<>,;:|]+"
# A "/" that starts a path: not after a word (4/12, org/model), a URL (://), another path or "~";
# and not the API's own routes (/v1/..., /admin/v1/...), which messages name on purpose.
_ABSOLUTE_PATH = re.compile(rf"(?<![\w:/.~-])(?!/(?:admin/)?v1/)(?:/{_COMPONENT})+/?")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.IGNORECASE)
# Shorter values could be ordinary words: secrets are far longer than this.
MIN_SECRET_CHARACTERS = 8


def _settings() -> Settings | None:
    try:
        return get_settings()
    except ValidationError:  # a process without a configuration (a unit test, a tool) has no secrets to hide
        return None


@cache
def _secrets() -> tuple[str, ...]:
    """The secret settings' values, longest first (a value may contain another)."""
    settings = _settings()
    if settings is None:
        return ()
    held = (settings.api_key_pepper, settings.hf_token, settings.qdrant_api_key, settings.database_url)
    values = [secret.get_secret_value() for secret in held if secret]
    return tuple(sorted((value for value in values if len(value) >= MIN_SECRET_CHARACTERS), key=len, reverse=True))


@cache
def _api_key_pattern() -> re.Pattern[str]:
    settings = _settings()
    prefix = settings.api_key_prefix if settings else Settings.model_fields["api_key_prefix"].default
    return re.compile(re.escape(prefix) + r"[A-Za-z0-9_-]{8,}")


def _last_component(match: re.Match[str]) -> str:
    return match.group(0).rstrip("/").rsplit("/", 1)[-1]


def user_readable(text: str) -> str:
    """`text` with every secret and host path taken out (see the module docstring)."""
    for secret in _secrets():
        text = text.replace(secret, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda match: f"{match.group('scheme')}{REDACTED}@", text)
    text = _api_key_pattern().sub(REDACTED, text)
    return _ABSOLUTE_PATH.sub(_last_component, text)
