"""The MLflow model registry, asked through MlflowClient (blocking: callers run it in a thread)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from mlflow.exceptions import MlflowException

from app.core.errors import BadRequest, NotFound, ServiceUnavailable
from app.core.mlflow_clients import mlflow_client

T = TypeVar("T")


def describe(tracking_uri: str, name: str) -> dict[str, Any]:
    """A registered model: its aliases (alias -> version) and every version, newest first."""
    client = mlflow_client(tracking_uri)
    registered = client.get_registered_model(name)
    aliases = {alias: int(version) for alias, version in (registered.aliases or {}).items()}
    versions = client.search_model_versions(filter_string=f"name = '{_quoted(name)}'")
    return {
        "name": registered.name,
        "description": registered.description,
        "aliases": aliases,
        "versions": sorted(
            (
                {
                    "version": int(version.version),
                    "status": version.status,
                    "source": version.source,
                    "run_id": version.run_id,
                    "created_at": int((version.creation_timestamp or 0) / 1000),
                    "aliases": sorted(alias for alias, number in aliases.items() if number == int(version.version)),
                }
                for version in versions
            ),
            key=lambda item: -item["version"],
        ),
    }


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def set_alias(tracking_uri: str, name: str, alias: str, version: int) -> None:
    """Point `alias` at `version`; an alias held by another version moves here."""
    client = mlflow_client(tracking_uri)
    client.get_model_version(name, str(version))  # a clear 404 for a missing version
    client.set_registered_model_alias(name, alias, str(version))


def delete_alias(tracking_uri: str, name: str, alias: str) -> None:
    client = mlflow_client(tracking_uri)
    if alias not in (client.get_registered_model(name).aliases or {}):
        raise NotFound(f"Registered model '{name}' has no alias '{alias}'.", param="alias")
    client.delete_registered_model_alias(name, alias)


def delete_version(tracking_uri: str, name: str, version: int) -> bool:
    """Delete one version; False when it was gone already."""
    try:
        mlflow_client(tracking_uri).delete_model_version(name, str(version))
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


async def call(work: Callable[..., T], *args: Any) -> T:
    """Run a registry call off the event loop, with MLflow's errors turned into platform errors."""
    try:
        return await anyio.to_thread.run_sync(work, *args)
    except MlflowException as error:
        raise _platform_error(error) from error


def _platform_error(error: MlflowException) -> Exception:
    message = error.message if hasattr(error, "message") else str(error)
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return NotFound(f"MLflow registry: {message}", code="registry_not_found")
    if error.error_code == "INVALID_PARAMETER_VALUE":
        return BadRequest(f"MLflow registry: {message}", code="registry_invalid")
    return ServiceUnavailable(f"The MLflow registry did not answer properly: {message}")
