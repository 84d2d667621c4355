"""The one way the platform makes an MLflow client: tracking and the model registry on the same server.

`MlflowClient` is blocking: async callers run its calls in a thread.
"""

from __future__ import annotations

from mlflow import MlflowClient


def mlflow_client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
