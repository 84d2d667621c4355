"""Resource kinds known to the policies in `policies/resources/`, and the attributes they read."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    # User API: tenant objects, guarded by ownership and organization.
    FILE = "file"
    FINE_TUNING_JOB = "fine_tuning_job"
    CHECKPOINT = "checkpoint"
    MODEL = "model"  # a fine-tuned model
    BASE_MODEL = "base_model"  # the catalog: users read allowed entries, admins manage it
    SERVED_MODEL = "served_model"  # a model to generate with (chat completions), and serving's admin views
    EVAL = "eval"  # an eval (testing criteria, data source config); `run` starts a run of it
    EVAL_RUN = "eval_run"  # a run of an eval, with its output items
    # Admin API: admin does everything, operator reads and lists, user nothing.
    ORGANIZATION = "organization"
    USER = "user"
    API_KEY = "api_key"
    QUOTA = "quota"
    ADMIN_JOB = "admin_job"
    FLEET = "fleet"
    AUDIT_LOG = "audit_log"
    REGISTRY_MODEL = "registry_model"


# Every `R.attr.*` a policy reads. `check` sends these, `list_filter` maps them to columns:
# one list keeps a single check and a filtered list in agreement.
POLICY_ATTRIBUTES = ("owner_id", "organization_id", "allowed", "model_kind")


def resource_attributes(row: Any) -> dict[str, Any]:
    """The policy attributes a table row carries (a checkpoint passes its job here)."""
    return {name: getattr(row, name) for name in POLICY_ATTRIBUTES if hasattr(row, name)}
