"""Authorization: every decision goes to Cerbos (policies in `policies/`)."""

from app.authz.errors import AuthorizationUnavailable, Forbidden, NotFound, hidden
from app.authz.filters import UntranslatablePlanError
from app.authz.kinds import POLICY_ATTRIBUTES, Kind, resource_attributes
from app.authz.principal import Principal
from app.authz.service import COLLECTION_ID, Authorizer
from app.authz.transport import ResourceCheck

__all__ = [
    "COLLECTION_ID",
    "POLICY_ATTRIBUTES",
    "AuthorizationUnavailable",
    "Authorizer",
    "Forbidden",
    "Kind",
    "NotFound",
    "Principal",
    "ResourceCheck",
    "UntranslatablePlanError",
    "hidden",
    "resource_attributes",
]
