"""The public user API: OpenAI's fine-tuning API and what it lacks (`uvicorn app.api.user_app:app`)."""

from __future__ import annotations

from app.api.application import create_app
from app.console.routes import mount_console
from app.evals.endpoints import router as evals_router
from app.files.endpoints import router as files_router
from app.finetuned.endpoints import router as models_router
from app.inference.endpoints import router as chat_router
from app.inference.lifespan import inference_gateway
from app.jobs.endpoints import router as jobs_router

app = create_app(
    "Fine-tuning MLOps — user API",
    "user",
    [files_router, jobs_router, models_router, chat_router, evals_router],
    extensions=[inference_gateway],
)
mount_console(app)  # the web console at `/` (static files; it calls only the /v1 API above)
