"""API keys: random secrets shown once, stored only as a peppered hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

# 32 random bytes = 256 bits of entropy; the lookup prefix reveals 72 of them at most.
SECRET_BYTES = 32
LOOKUP_CHARS = 12


@dataclass(frozen=True)
class NewKey:
    secret: str
    lookup_prefix: str
    secret_hash: str


def hash_secret(secret: str, pepper: bytes) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def generate_key(prefix: str, pepper: bytes) -> NewKey:
    secret = prefix + secrets.token_urlsafe(SECRET_BYTES)
    return NewKey(secret=secret, lookup_prefix=lookup_prefix(secret, prefix), secret_hash=hash_secret(secret, pepper))


def lookup_prefix(secret: str, prefix: str) -> str:
    return secret[: len(prefix) + LOOKUP_CHARS]


def digests_match(digest: str, secret_hash: str) -> bool:
    """`digest` is `hash_secret` of the presented secret; compared in constant time."""
    return hmac.compare_digest(digest, secret_hash)
