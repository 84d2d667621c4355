"""A permission taken out of a Cerbos policy is refused on the next request: no decision is kept.

A Cerbos of its own (policies copied to a scratch directory, Admin API on) and a user API
process deciding with it over gRPC. The owner reads her job and lists it; an operator then
removes `read` from the job policy and reloads the store as `cerbosctl store reload --wait`
does; the very next read answers 404 and the list is empty. Restored, both come back.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cerbos.sdk._async._grpc import AsyncCerbosAdminClient

from app.catalog.tables import CatalogEntry
from app.core import ids
from app.devstack.cerbos import POLICIES_DIR, CerbosServer, cerbos_binary
from app.files.tables import File
from app.jobs.tables import Job

JOB_POLICY = Path("resources") / "fine_tuning_job.yaml"


@pytest.fixture(scope="module")
def own_cerbos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CerbosServer]:
    scratch = tmp_path_factory.mktemp("cerbos-policy-change")
    shutil.copytree(POLICIES_DIR, scratch / "policies")
    with CerbosServer(scratch / "work", policies_dir=scratch / "policies", binary=cerbos_binary(),
                      admin_api=True) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def deciding_api(own_cerbos: CerbosServer, spawn_user_api: Callable[..., str]) -> str:
    return spawn_user_api("user-api-own-cerbos", CERBOS_URL=own_cerbos.url,
                          CERBOS_GRPC_ADDRESS=own_cerbos.grpc_address)  # fmt: skip


def without_owner_reads(policy: dict) -> dict:  # type: ignore[type-arg]
    """The job policy minus every rule's `read` (what a tightening edit would do)."""
    for rule in policy["resourcePolicy"]["rules"]:
        rule["actions"] = [action for action in rule["actions"] if action not in ("read", "*")] or ["update"]
    return policy


async def reload(server: CerbosServer) -> None:
    async with AsyncCerbosAdminClient(server.grpc_address, timeout_secs=30) as admin:
        await admin.reload_store(wait=True)


async def test_a_removed_permission_is_refused_on_the_next_request(  # type: ignore[no-untyped-def]
    own_cerbos: CerbosServer, deciding_api: str, make_user, sessionmaker
) -> None:
    alice = await make_user("alice@acme.example.com")
    async with sessionmaker() as session:
        session.add(CatalogEntry(id="any-model", source="/models/any", max_seq_length=256, allowed=True,
                                 download_status="ready"))  # fmt: skip
        training = File(id=ids.file_id(), owner_id=alice.id, organization_id=alice.organization_id,
                        filename="train.jsonl", purpose="fine-tune", bytes=10, sha256="0" * 64,
                        storage_name="train.jsonl", status="processed", data_format="chat", statistics={})  # fmt: skip
        session.add(training)
        await session.flush()
        job = Job(id=ids.job_id(), owner_id=alice.id, organization_id=alice.organization_id, model="any-model",
                  training_file=training.id, method="supervised", hyperparameters={}, seed=1,
                  status="queued")  # fmt: skip
        session.add(job)
        await session.commit()
    policy_path = own_cerbos.policies_dir / JOB_POLICY
    original = policy_path.read_text()

    with httpx.Client(base_url=deciding_api, headers=alice.headers, timeout=30) as client:

        def visible() -> tuple[int, list[str]]:
            listed = client.get("/v1/fine_tuning/jobs").json()["data"]
            return client.get(f"/v1/fine_tuning/jobs/{job.id}").status_code, [item["id"] for item in listed]

        for _ in range(3):
            assert visible() == (200, [job.id])
        try:
            policy_path.write_text(yaml.safe_dump(without_owner_reads(yaml.safe_load(original))))
            await reload(own_cerbos)
            assert visible() == (404, [])
        finally:
            policy_path.write_text(original)
            await reload(own_cerbos)
        assert visible() == (200, [job.id])
