# syntax=docker/dockerfile:1
# Image of the user API, the admin API and the `migrate` one-shot (docker-compose.yml).
#
#   docker build -t finetune-api:local .
#
# Base dependencies only: no torch and nothing of the `train` extra, so the image stays
# small and an API process can never initialise a GPU.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- dependencies: a layer that changes only when pyproject.toml or the pins change ---
FROM ${PYTHON_IMAGE} AS dependencies

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
COPY pyproject.toml docker/pyproject_requirements.py docker/constraints.txt ./
RUN python pyproject_requirements.py pyproject.toml > requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-virtualenv -r requirements.txt -c constraints.txt

# --- runtime ---
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    DATASETS_DIR=/data/datasets \
    MODELS_DIR=/data/models/finetuned \
    LOGS_DIR=/data/logs/finetuning

# UID 1000, as in the worker image: the data volumes are shared by both, and a fresh named
# volume takes the owner of the folder it is first mounted over.
RUN groupadd --gid 1000 app \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && mkdir -p /data/datasets /data/models/finetuned /data/logs/finetuning \
    && chown -R 1000:1000 /data

COPY --from=dependencies /opt/venv /opt/venv
COPY --chmod=0755 docker/healthcheck.py /usr/local/bin/healthcheck

WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
COPY app ./app

USER 1000:1000
EXPOSE 8001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["healthcheck", "http", "http://127.0.0.1:8001/health"]

CMD ["uvicorn", "app.api.user_app:app", "--host", "0.0.0.0", "--port", "8001"]
