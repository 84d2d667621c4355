"""The base-model catalog: local folders checked at once, hub models prepared by the CPU worker, offline-safe."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests.admin.conftest import Cast, Seeder


def _wait_prepared(client: httpx.Client, model_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        entry = client.get(f"/admin/v1/base-models/{model_id}").json()
        if entry["download_status"] in ("ready", "failed") or time.monotonic() > deadline:
            return entry  # type: ignore[no-any-return]
        time.sleep(0.5)


def _seed_hf_cache(hub_id: str) -> None:
    """Put a snapshot in the shared cache the way huggingface_hub lays it out (the test machine is offline)."""
    root = Path(os.environ["HF_HOME"]) / "hub" / f"models--{hub_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    # What the CPU worker checks of a download before it says `ready`: a config, weights, a tokenizer.
    (snapshot / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (snapshot / "model.safetensors").write_bytes(b"")
    (snapshot / "tokenizer.json").write_text("{}")


async def test_local_models_are_checked_when_registered(
    as_admin: httpx.Client, user_api: str, cast: Cast, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "my-llama"
    folder.mkdir()
    missing_config = as_admin.post("/admin/v1/base-models", json={"source": str(folder)})
    assert missing_config.status_code == 400 and "config.json" in missing_config.json()["error"]["message"]
    assert as_admin.post("/admin/v1/base-models", json={"source": str(tmp_path / "nope")}).status_code == 400
    assert as_admin.post("/admin/v1/base-models", json={"source": "not a path"}).status_code == 400

    (folder / "config.json").write_text("{}")
    # A folder copied in part is named for what it lacks, before any job tries to load it.
    no_weights = as_admin.post("/admin/v1/base-models", json={"source": str(folder)}).json()["error"]["message"]
    assert "no weights" in no_weights, no_weights
    (folder / "model.safetensors").write_bytes(b"")
    no_tokenizer = as_admin.post("/admin/v1/base-models", json={"source": str(folder)}).json()["error"]["message"]
    assert "no tokenizer" in no_tokenizer, no_tokenizer
    (folder / "tokenizer.json").write_text("{}")
    created = as_admin.post("/admin/v1/base-models", json={
        "source": str(folder), "chat_template": "{{ messages }}", "max_seq_length": 4096, "parameter_count": 1_100_000,
    })  # fmt: skip
    assert created.status_code == 200, created.text
    entry = created.json()
    assert entry["id"] == "my-llama" and entry["source_type"] == "local" and entry["download_status"] == "ready"
    assert (entry["max_seq_length"], entry["parameter_count"]) == (4096, 1_100_000)

    def visible_to_users() -> bool:
        models = httpx.get(f"{user_api}/v1/models", headers=cast.user.headers, timeout=30).json()["data"]
        return "my-llama" in [model["id"] for model in models]

    assert visible_to_users()
    assert as_admin.patch("/admin/v1/base-models/my-llama", json={"allowed": False}).json()["allowed"] is False
    assert not visible_to_users()
    assert [e["id"] for e in as_admin.get("/admin/v1/base-models", params={"allowed": False}).json()["data"]] == [
        "my-llama"
    ]
    assert as_admin.post("/admin/v1/base-models", json={"source": str(folder)}).status_code == 409


async def test_hub_models_are_prepared_by_the_cpu_worker_offline(
    as_admin: httpx.Client, cpu_worker, no_gpu_worker
) -> None:  # type: ignore[no-untyped-def]
    absent = as_admin.post("/admin/v1/base-models", json={"source": "acme-labs/never-cached", "revision": "main"})
    assert absent.status_code == 200 and absent.json()["download_status"] == "queued"
    failed = _wait_prepared(as_admin, "acme-labs/never-cached")
    assert failed["download_status"] == "failed"
    assert "unreachable" in failed["download_error"] and "not in the shared cache" in failed["download_error"]

    _seed_hf_cache("acme-labs/tiny-cached")
    as_admin.post("/admin/v1/base-models", json={"source": "acme-labs/tiny-cached", "download": False})
    assert as_admin.get("/admin/v1/base-models/acme-labs/tiny-cached").json()["download_status"] == "not_downloaded"
    queued = as_admin.post("/admin/v1/base-models/acme-labs/tiny-cached/download")
    assert queued.status_code == 200 and queued.json()["download_status"] == "queued"
    ready = _wait_prepared(as_admin, "acme-labs/tiny-cached")
    assert ready["download_status"] == "ready" and ready["download_error"] is None, ready


async def test_a_model_in_use_cannot_be_deleted(as_admin: httpx.Client, cast: Cast, seed: Seeder) -> None:
    model = (await seed.base_model("used-model")).id
    await seed.job(cast.user, model, (await seed.training_file(cast.user)).id, "succeeded")
    await seed.base_model("unused-model")
    assert as_admin.delete("/admin/v1/base-models/used-model").status_code == 409
    assert as_admin.delete("/admin/v1/base-models/unused-model").json()["deleted"] is True
    assert as_admin.get("/admin/v1/base-models/unused-model").status_code == 404
