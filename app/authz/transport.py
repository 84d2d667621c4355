"""The two ways of asking Cerbos, behind one small interface: gRPC (the default) and HTTP.

Both keep one connection open for the life of the process (an HTTP/2 channel for gRPC, a
keep-alive pool for HTTP). Measured on this machine with the embedded Cerbos
(`python -m bench.request_stages`), a `CheckResources` call took 1.9 ms over gRPC against 4.6 ms
over HTTP, and a `PlanResources` call 3.8 ms against 7.0 ms: the HTTP client spends its time in
httpx and in `dataclasses_json` decoding, the gRPC one in protobuf's C code. So a configured gRPC
address wins; HTTP stays for a Cerbos reachable only over HTTP.

Either transport answers with plain values, or raises `AuthorizationUnavailable`: any failure to
get a decision (refused, unreachable, timed out, a malformed answer) denies, never allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import grpc
import httpx
from cerbos.effect.v1 import effect_pb2
from cerbos.engine.v1 import engine_pb2
from cerbos.request.v1 import request_pb2
from cerbos.sdk._async._grpc import AsyncCerbosClient as GrpcCerbosClient
from cerbos.sdk.client import AsyncCerbosClient as HttpCerbosClient
from cerbos.sdk.model import (
    CerbosRequestException,
    CerbosTypeError,
    PlanResourcesFilterKind,
    Resource,
    ResourceDesc,
    ResourceList,
)
from google.protobuf import struct_pb2

from app.authz.errors import AuthorizationUnavailable
from app.authz.principal import Principal

logger = logging.getLogger(__name__)

PlanOutcome = Literal["allowed", "denied", "conditional"]


@dataclass(frozen=True)
class ResourceCheck:
    """One resource and the actions asked about it, within a `CheckResources` call."""

    kind: str
    resource_id: str
    attrs: Mapping[str, Any]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """A `PlanResources` answer: its outcome, and the SDK's own response for `cerbos_sqlalchemy`.

    `condition_key`: the conditional filter's condition as Cerbos sent it (deterministic protobuf
    bytes), so that two identical answers are known to make the same SQL; None where not known.
    """

    outcome: PlanOutcome
    resource_kind: str
    response: Any
    condition_key: bytes | None = None


class Transport(Protocol):
    async def check(
        self, principal: Principal, checks: Sequence[ResourceCheck], request_id: str | None
    ) -> list[frozenset[str]]:
        """The allowed subset of each check's actions, in the order of `checks`."""
        ...

    async def plan(self, principal: Principal, kind: str, action: str, request_id: str | None) -> Plan: ...

    async def connect(self) -> None:
        """Open the connection now rather than in the first request."""
        ...

    async def close(self) -> None: ...


def _allowed_in_order(
    checks: Sequence[ResourceCheck], answered: Mapping[tuple[str, str], Mapping[str, bool]]
) -> list[frozenset[str]]:
    """Results are matched by (kind, id), never by position: a missing one is an error, not a denial."""
    allowed = []
    for check in checks:
        decisions = answered.get((check.kind, check.resource_id))
        if decisions is None:
            raise _unavailable(f"Cerbos returned no decision for {check.kind} {check.resource_id!r}")
        allowed.append(frozenset(action for action in check.actions if decisions.get(action, False)))
    return allowed


class GrpcTransport:
    """Cerbos' gRPC API (port 3593) through the SDK's asyncio client: one channel per process."""

    def __init__(self, address: str, timeout_seconds: float) -> None:
        self._client = GrpcCerbosClient(address, timeout_secs=timeout_seconds)
        self._timeout_seconds = timeout_seconds

    async def check(
        self, principal: Principal, checks: Sequence[ResourceCheck], request_id: str | None
    ) -> list[frozenset[str]]:
        entries = [
            request_pb2.CheckResourcesRequest.ResourceEntry(
                actions=list(check.actions),
                resource=engine_pb2.Resource(kind=check.kind, id=check.resource_id, attr=_values(check.attrs)),
            )
            for check in checks
        ]
        async with _grpc_call():
            response = await self._client.check_resources(_grpc_principal(principal), entries, request_id)
        answered = {
            (result.resource.kind, result.resource.id): {
                action: effect == effect_pb2.EFFECT_ALLOW for action, effect in result.actions.items()
            }
            for result in response.results
        }
        return _allowed_in_order(checks, answered)

    async def plan(self, principal: Principal, kind: str, action: str, request_id: str | None) -> Plan:
        resource = engine_pb2.PlanResourcesInput.Resource(kind=kind)
        async with _grpc_call():
            response = await self._client.plan_resources(action, _grpc_principal(principal), resource, request_id)
        outcome: PlanOutcome = "denied"
        if response.HasField("filter"):
            outcome = {
                engine_pb2.PlanResourcesFilter.KIND_ALWAYS_ALLOWED: "allowed",
                engine_pb2.PlanResourcesFilter.KIND_CONDITIONAL: "conditional",
            }.get(response.filter.kind, "denied")  # type: ignore[assignment]
        key = response.filter.condition.SerializeToString(deterministic=True) if outcome == "conditional" else None
        return Plan(outcome, response.resource_kind, response, key)

    async def connect(self) -> None:
        # A channel connects on its first call: a cheap one (ServerInfo) here, so that a request
        # never spends its deadline on the TCP and HTTP/2 handshakes of a just-started process.
        async with _grpc_call():
            await asyncio.wait_for(self._client.server_info(), self._timeout_seconds)

    async def close(self) -> None:
        await self._client.close()


class HttpTransport:
    """Cerbos' HTTP API (port 3592) through the SDK's httpx client: one keep-alive pool per process."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self._client = HttpCerbosClient(url, timeout_secs=timeout_seconds)

    async def check(
        self, principal: Principal, checks: Sequence[ResourceCheck], request_id: str | None
    ) -> list[frozenset[str]]:
        request = ResourceList()
        for check in checks:
            request.add(Resource(id=check.resource_id, kind=check.kind, attr=dict(check.attrs)), set(check.actions))
        async with _http_call():
            response = await self._client.check_resources(principal.to_cerbos(), request, request_id)
            response.raise_if_failed()
        answered = {
            (result.resource.kind, result.resource.id): {action: result.is_allowed(action) for action in result.actions}
            for result in response.results or []
        }
        return _allowed_in_order(checks, answered)

    async def plan(self, principal: Principal, kind: str, action: str, request_id: str | None) -> Plan:
        async with _http_call():
            response = await self._client.plan_resources(action, principal.to_cerbos(), ResourceDesc(kind=kind),
                                                         request_id)  # fmt: skip
            response.raise_if_failed()
        outcome: PlanOutcome = "denied"
        if response.filter is not None:
            outcome = {
                PlanResourcesFilterKind.ALWAYS_ALLOWED: "allowed",
                PlanResourcesFilterKind.CONDITIONAL: "conditional",
            }.get(response.filter.kind, "denied")  # type: ignore[assignment]
        return Plan(outcome, response.resource_kind, response)

    async def connect(self) -> None:
        """Nothing to open ahead: a keep-alive connection costs one TCP handshake, made by the first call."""

    async def close(self) -> None:
        await self._client.close()


def _values(attrs: Mapping[str, Any]) -> dict[str, struct_pb2.Value]:
    """Python values as protobuf `Value`s (None, bools, numbers, strings, lists, dicts)."""
    struct = struct_pb2.Struct()
    struct.update(attrs)
    return dict(struct.fields)


def _grpc_principal(principal: Principal) -> engine_pb2.Principal:
    attrs = _values({"organization_id": principal.organization_id})
    return engine_pb2.Principal(id=principal.id, roles=list(principal.roles), attr=attrs)


def _unavailable(message: str) -> AuthorizationUnavailable:
    # The client sees a bare 503; the operator needs to know it was Cerbos, and why.
    logger.warning("no authorization decision: %s", message)
    return AuthorizationUnavailable(message)


@asynccontextmanager
async def _grpc_call() -> AsyncIterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
        details = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
        raise _unavailable(f"Cerbos did not decide (gRPC {code}): {details}") from error
    except (CerbosTypeError, ValueError) as error:
        raise _unavailable(f"Cerbos refused the request: {error}") from error
    except TimeoutError as error:
        raise _unavailable("Cerbos did not answer in time") from error


@asynccontextmanager
async def _http_call() -> AsyncIterator[None]:
    try:
        yield
    except CerbosRequestException as error:
        raise _unavailable(f"Cerbos refused the request: {error}") from error
    except (httpx.HTTPError, ValueError, KeyError) as error:
        # ValueError/KeyError: the SDK parses an error body that was not Cerbos JSON.
        raise _unavailable(f"Cerbos is unreachable: {error}") from error
