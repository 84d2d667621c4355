"""Where a full fine-tune is served: by an engine of its own when one is named for it, else a clear 404.

A full fine-tune has no adapter to load into its base model's engine; its weights are a model of
their own. These are the platform's routing decisions, on a real PostgreSQL; the engine itself is
the same vLLM that serves a base model (tests/inference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.finetuned.tables import FineTunedModel
from app.inference.service import ModelNotServed, target_for

BASE = "tiny-base-for-full"


async def full_fine_tune(seed: Any, sessionmaker: Any, owner: Any, tmp_path: Path) -> str:
    from app.catalog.tables import CatalogEntry

    async with sessionmaker() as session:
        session.add(CatalogEntry(id=BASE, source="/models/none"))
        await session.commit()
    job = await seed.job(owner, BASE, await seed.file(owner), status="succeeded")
    weights = tmp_path / "full"
    weights.mkdir()
    (weights / "config.json").write_text("{}")  # a whole model: no adapter_config.json
    name = f"ft:{BASE}:acme::{job}"
    await seed._add(FineTunedModel(id=name, job_id=job, owner_id=owner.id, organization_id=owner.organization_id,
                                   base_model=BASE, adapter_path=None, merged_path=str(weights)))  # fmt: skip
    return name


async def test_a_full_fine_tune_needs_an_engine_of_its_own(  # type: ignore[no-untyped-def]
    settings: Settings, seed, sessionmaker, make_user, tmp_path: Path
) -> None:
    owner = await make_user("full@acme.example.com")
    model = await full_fine_tune(seed, sessionmaker, owner, tmp_path)
    base_only = settings.model_copy(update={"inference_engines": {BASE: "http://base-engine:8000"}})
    async with sessionmaker() as session:
        with pytest.raises(ModelNotServed) as refused:
            await target_for(session, base_only, model)
    assert refused.value.param == "model" and "full fine-tune" in refused.value.message
    assert "INFERENCE_ENGINES" in refused.value.message and "downloaded" in refused.value.message

    own = settings.model_copy(update={"inference_engines": {BASE: "http://base-engine:8000",
                                                            model: "http://own-engine:8000"}})  # fmt: skip
    async with sessionmaker() as session:
        target = await target_for(session, own, model)
    # Its own engine, under its own name (the engine's --served-model-name), with no adapter to load.
    assert (target.engine_url, target.engine_model, target.adapter_path) == ("http://own-engine:8000", model, None)
    assert target.model == model and target.base_model == BASE
