"""Two tenants with files, jobs in every state, checkpoints and models, for the fuzzers to reach.

Rows are seeded the way tests/api and tests/admin seed them (their Seeders are reused), so
the fuzzers get past 404 on operations that act on an existing object. The GPU queue is held
(tests/admin's fixture) while the user API is fuzzed: a job created or resumed there is validated but
never trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.admin.conftest import Seeder as AdminSeeder
from tests.admin.conftest import gpu_queue_held  # noqa: F401 - a fixture, used by the tests' mark
from tests.api.conftest import Seeder as ApiSeeder
from tests.fuzz.schemathesis_run import FuzzTarget, Identity

SEEDED_JOB_STATUSES = ("running", "paused", "succeeded", "failed", "cancelled")


@dataclass
class Tenant:
    user: Any
    files: list[str]
    jobs: list[str]
    checkpoints: list[str]
    models: list[str]

    def ids(self) -> list[str]:
        return [*self.files, *self.jobs, *self.checkpoints, *self.models]


async def seed_tenant(seed: ApiSeeder, user: Any, base_model: str) -> Tenant:
    """Several files (the fuzzer deletes some), one job per state, two checkpoints and a model."""
    files = [await seed.file(user, filename=f"fuzz-{index}.jsonl") for index in range(4)]
    jobs = [await seed.job(user, base_model, files[0], status=status) for status in SEEDED_JOB_STATUSES]
    done = jobs[SEEDED_JOB_STATUSES.index("succeeded")]
    checkpoints = [await seed.checkpoint(done, step) for step in (4, 8)]
    models = [await seed.model(user, done, base_model)]
    return Tenant(user, files, jobs, checkpoints, models)


@pytest.fixture
async def user_api_target(user_api, make_user, tiny_model, sessionmaker, settings, tmp_path, cpu_worker) -> FuzzTarget:  # type: ignore[no-untyped-def]
    """Alice fuzzes; Bob (another organization) is the peer whose objects she must never see."""
    seed = ApiSeeder(sessionmaker, settings, tmp_path)
    alice = await seed_tenant(seed, await make_user("alice@acme.example.com", "acme"), tiny_model)
    bob = await seed_tenant(seed, await make_user("bob@globex.example.com", "globex"), tiny_model)
    both = (alice, bob)
    return FuzzTarget(
        base_url=user_api,
        identities=[Identity("alice", alice.user.key), Identity("bob", bob.user.key)],
        known_ids={
            "file_id": [i for t in both for i in t.files],
            "fine_tuning_job_id": [i for t in both for i in t.jobs],
            "checkpoint_id": [i for t in both for i in t.checkpoints],
            "model": [i for t in both for i in t.models] + [tiny_model],
        },
        foreign_ids=bob.ids(),
    )


async def _key_ids(sessionmaker: Any, user_id: str) -> list[str]:
    from app.users.tables import ApiKey

    async with sessionmaker() as session:
        return list((await session.scalars(select(ApiKey.id).where(ApiKey.user_id == user_id))).all())


@pytest.fixture
async def admin_api_target(admin_api, make_user, tiny_model, sessionmaker, settings, tmp_path: Path,  # type: ignore[no-untyped-def]
                           cpu_worker, gpu_worker) -> FuzzTarget:  # fmt: skip
    """The admin fuzzes; a plain user is the peer who must be refused what the admin reads.

    Both workers run, as in production: the fleet and health operations then answer as they
    should, and a 503 from them would be a real finding rather than a missing worker.
    """
    admin = await make_user("root@ops.example.com", "ops", ["admin"])
    plain = await make_user("carol@acme.example.com", "acme")
    tenant = await seed_tenant(ApiSeeder(sessionmaker, settings, tmp_path), plain, tiny_model)
    extra_model = await AdminSeeder(sessionmaker).base_model("fuzz-base-model")
    return FuzzTarget(
        base_url=admin_api,
        identities=[Identity("admin", admin.key), Identity("user", plain.key)],
        known_ids={
            "organization_id": [admin.organization_id, plain.organization_id],
            "user_id": [admin.id, plain.id],
            # Only the plain user's keys: revoking the fuzzer's own key would end the run's access.
            "key_id": await _key_ids(sessionmaker, plain.id),
            "model_id": [tiny_model, extra_model.id, *tenant.models],
            "job_id": tenant.jobs,
        },
    )
