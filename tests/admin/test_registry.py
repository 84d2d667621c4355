"""Fine-tuned models with their MLflow registry versions; aliases set and moved; delete with files."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from mlflow import MlflowClient

from app.finetuned.tables import FineTunedModel
from tests.admin.conftest import Cast, Seeder


def _register_versions(tracking_uri: str, name: str, adapter: Path, count: int) -> list[int]:
    """Versions made the way the platform makes them: artifacts logged to a run, then create_model_version."""
    client = MlflowClient(tracking_uri)
    client.create_registered_model(name)
    experiment = client.create_experiment(f"{name}-runs")
    versions = []
    for _ in range(count):
        run = client.create_run(experiment)
        client.log_artifacts(run.info.run_id, str(adapter), "adapter")
        made = client.create_model_version(name, source=f"{run.info.artifact_uri}/adapter", run_id=run.info.run_id)
        versions.append(int(made.version))
    return versions


async def test_models_with_registry_versions_and_aliases(
    as_admin: httpx.Client, cast: Cast, seed: Seeder, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 2048)
    registry_name = f"ft-colors-{secrets.token_hex(4)}"
    v1, v2 = _register_versions(settings.mlflow_tracking_uri, registry_name, adapter, 2)

    model = (await seed.base_model()).id
    job = await seed.job(cast.user, model, (await seed.training_file(cast.user)).id, "succeeded")
    model_id = f"ft:{model}:acme:colors:{job.id}"
    owner = {"owner_id": cast.user.id, "organization_id": cast.user.organization_id}
    registry = {"registry_name": registry_name, "registry_version": v2}
    row = FineTunedModel(id=model_id, job_id=job.id, base_model=model, adapter_path=str(adapter), **owner, **registry)
    await seed.add(row)

    set_v1 = as_admin.put(f"/admin/v1/registry/{registry_name}/aliases/champion", json={"version": v1})
    assert set_v1.status_code == 200, set_v1.text
    assert set_v1.json()["aliases"] == {"champion": v1}
    moved = as_admin.put(f"/admin/v1/registry/{registry_name}/aliases/champion", json={"version": v2}).json()
    assert moved["aliases"] == {"champion": v2}
    assert [(v["version"], v["aliases"]) for v in moved["versions"]] == [(v2, ["champion"]), (v1, [])]
    assert as_admin.put(f"/admin/v1/registry/{registry_name}/aliases/latest", json={"version": v1}).status_code == 400
    assert as_admin.put(f"/admin/v1/registry/{registry_name}/aliases/x", json={"version": 99}).status_code == 404

    listed = as_admin.get("/admin/v1/models", params={"user_id": cast.user.id}).json()["data"]
    assert [m["id"] for m in listed] == [model_id]
    link = listed[0]["registry"]
    assert link["name"] == registry_name and link["version"] == v2 and link["aliases"] == ["champion"]
    assert [v["version"] for v in link["model"]["versions"]] == [v2, v1]
    assert as_admin.get(f"/admin/v1/models/{model_id}").json()["registry"]["aliases"] == ["champion"]

    assert as_admin.delete(f"/admin/v1/registry/{registry_name}/aliases/champion").json()["aliases"] == {}
    assert as_admin.delete(f"/admin/v1/registry/{registry_name}/aliases/champion").status_code == 404

    deleted = as_admin.delete(f"/admin/v1/models/{model_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["registry_version_deleted"] is True
    assert not adapter.exists()
    assert (await seed.get(FineTunedModel, model_id)).deleted_at is not None
    assert [v["version"] for v in as_admin.get(f"/admin/v1/registry/{registry_name}").json()["versions"]] == [v1]
    assert as_admin.get("/admin/v1/models").json()["data"] == []
    assert len(as_admin.get("/admin/v1/models", params={"include_deleted": True}).json()["data"]) == 1
    assert as_admin.delete(f"/admin/v1/models/{model_id}").status_code == 404
