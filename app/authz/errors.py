"""The errors an authorization decision ends in, on the platform's one error base.

A user-API object the caller may not see answers exactly like a missing one
(`hidden`), so ids of other tenants cannot be probed. One the caller can see but
may not act on answers 403 with the reason (`refused`): hiding what they just read
gains nothing. Admin endpoints answer 403.
"""

from __future__ import annotations

from app.authz.kinds import Kind
from app.core.errors import Forbidden, NotFound, ServiceUnavailable, not_found

__all__ = ["AuthorizationUnavailable", "Forbidden", "NotFound", "hidden", "refused", "refused_create"]

# (name in the message, param) per kind; OpenAI names the offending parameter.
_NOT_FOUND_WORDING: dict[Kind, tuple[str, str]] = {
    Kind.FILE: ("file", "file_id"),
    Kind.FINE_TUNING_JOB: ("fine-tuning job", "fine_tuning_job_id"),
    Kind.CHECKPOINT: ("checkpoint", "checkpoint_id"),
    Kind.MODEL: ("model", "model"),
    Kind.BASE_MODEL: ("model", "model"),
    Kind.SERVED_MODEL: ("model", "model"),
    Kind.EVAL: ("eval", "eval_id"),
    Kind.EVAL_RUN: ("eval run", "run_id"),
}


class AuthorizationUnavailable(ServiceUnavailable):
    """Cerbos did not answer: fail closed with a retryable 503, never with an allow."""

    code = "authorization_unavailable"


def hidden(kind: Kind, resource_id: str) -> NotFound:
    """The 404 for an object that is missing or that the caller may not see: the two must match."""
    noun, param = _NOT_FOUND_WORDING.get(kind, (str(kind).replace("_", " "), "id"))
    error = not_found(noun, resource_id, param=param)
    if kind in (Kind.MODEL, Kind.BASE_MODEL, Kind.SERVED_MODEL):
        error.code = "model_not_found"  # what OpenAI answers for an unknown model
    return error


def refused(kind: Kind, resource_id: str, action: str) -> Forbidden:
    """The 403 for an object the caller can read but may not `action`: its owner (or an admin) may."""
    noun, param = _NOT_FOUND_WORDING.get(kind, (str(kind).replace("_", " "), "id"))
    return Forbidden(
        f"You can see {noun} '{resource_id}' but may not {action} it: only its owner or an administrator can.",
        param=param,
    )


def refused_create(kind: Kind) -> Forbidden:
    noun, _ = _NOT_FOUND_WORDING.get(kind, (str(kind).replace("_", " "), "id"))
    return Forbidden(f"Your role may not create a {noun} through this API.")
