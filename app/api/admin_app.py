"""The internal admin API (`uvicorn app.api.admin_app:app`); never published on a public network."""

from __future__ import annotations

from app.admin.endpoints import routers
from app.api.application import create_app
from app.inference.lifespan import inference_gateway

app = create_app("Fine-tuning MLOps — admin API", "admin", routers, extensions=[inference_gateway])
