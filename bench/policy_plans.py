"""What a policy's shape costs Cerbos: `PlanResources` of the job policy as it is, against the same
rules written as derived roles (how they were written until session 33), in one Cerbos, in one run.

    python -m bench.policy_plans [--requests 500] [--out bench/out/policy_plans.json]

Starts one embedded Cerbos on a copy of `policies/` with one more resource policy,
`fine_tuning_job_derived_roles`: the job policy's rules as derived roles (`owner`, `org_member`),
which give the same answers (checked here: both plans must be the same condition). The same user
then asks for a `read` plan of each kind over one gRPC channel, interleaved, `--requests` times
each, in alternating blocks of 50. Printed per shape: the round trip p50 from this process and
Cerbos' own planning time (`cerbos_dev_engine_plan_latency_milliseconds` from its metrics, sum
over count of each block), and each as a ratio to the current policy's. `CheckResources` of one
job is measured alongside, as the floor of a decision.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

from app.devstack.cerbos import POLICIES_DIR, CerbosServer
from bench.common import report_head, write_report

OLD_KIND = "fine_tuning_job_derived_roles"
BLOCK = 50  # plans of one shape between two snapshots of Cerbos' metrics
DERIVED_ROLES = """apiVersion: api.cerbos.dev/v1
derivedRoles:
  name: bench_roles
  definitions:
    - name: owner
      parentRoles: ["user"]
      condition:
        match:
          expr: R.attr.owner_id == P.id
    - name: org_member
      parentRoles: ["user"]
      condition:
        match:
          all:
            of:
              - expr: P.attr.organization_id != null
              - expr: R.attr.organization_id == P.attr.organization_id
"""
OLD_POLICY = f"""apiVersion: api.cerbos.dev/v1
resourcePolicy:
  resource: {OLD_KIND}
  version: default
  importDerivedRoles: [bench_roles]
  rules:
    - actions: ["create", "read", "update", "cancel", "pause", "resume", "delete"]
      effect: EFFECT_ALLOW
      derivedRoles: ["owner"]
    - actions: ["read"]
      effect: EFFECT_ALLOW
      derivedRoles: ["org_member"]
    - actions: ["*"]
      effect: EFFECT_ALLOW
      roles: ["admin"]
"""


def policies_with_the_old_shape(scratch: Path) -> Path:
    policies = scratch / "policies"
    shutil.copytree(POLICIES_DIR, policies, ignore=shutil.ignore_patterns("tests"))
    (policies / "derived_roles").mkdir(exist_ok=True)
    (policies / "derived_roles" / "bench_roles.yaml").write_text(DERIVED_ROLES)
    (policies / "resources" / f"{OLD_KIND}.yaml").write_text(OLD_POLICY)
    return policies


def engine_plan_milliseconds(server: CerbosServer) -> tuple[float, float]:
    """Cerbos' own (sum, count) of planning time so far."""
    total = count = 0.0
    for line in httpx.get(f"{server.url}/_cerbos/metrics", timeout=5).text.splitlines():
        if line.startswith("cerbos_dev_engine_plan_latency_milliseconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("cerbos_dev_engine_plan_latency_milliseconds_count"):
            count += float(line.split()[-1])
    return total, count


async def measure(server: CerbosServer, requests: int) -> dict[str, Any]:
    from cerbos.engine.v1 import engine_pb2
    from cerbos.request.v1 import request_pb2
    from cerbos.sdk._async._grpc import AsyncCerbosClient
    from google.protobuf.struct_pb2 import Value

    client = AsyncCerbosClient(server.grpc_address, timeout_secs=5)
    organization = {"organization_id": Value(string_value="org-a")}
    principal = engine_pb2.Principal(id="user-alice", roles=["user"], attr=organization)
    job = engine_pb2.Resource(id="ftjob-1", kind="fine_tuning_job",
                              attr={"owner_id": Value(string_value="user-alice"), **organization})  # fmt: skip
    entry = request_pb2.CheckResourcesRequest.ResourceEntry(actions=["read"], resource=job)
    kinds = {"current": "fine_tuning_job", "derived_roles": OLD_KIND}
    try:
        conditions = {}
        for shape, kind in kinds.items():
            answer = await client.plan_resources("read", principal, engine_pb2.PlanResourcesInput.Resource(kind=kind))
            conditions[shape] = answer.filter.condition.SerializeToString(deterministic=True)
        if conditions["current"] != conditions["derived_roles"]:
            raise SystemExit("the two shapes plan different conditions: the comparison would mean nothing")
        rounds: dict[str, list[float]] = {shape: [] for shape in (*kinds, "check")}
        engine = {shape: [0.0, 0.0] for shape in kinds}  # Cerbos' planning: sum of ms, count
        for block in range(requests // BLOCK + 1):  # the first block warms up
            for shape, kind in kinds.items():
                resource = engine_pb2.PlanResourcesInput.Resource(kind=kind)
                before = engine_plan_milliseconds(server)
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    await client.plan_resources("read", principal, resource)
                    if block:
                        rounds[shape].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await client.check_resources(principal, [entry])
                    if block:
                        rounds["check"].append(time.perf_counter() - started)
                after = engine_plan_milliseconds(server)
                if block:
                    engine[shape][0] += after[0] - before[0]
                    engine[shape][1] += after[1] - before[1]
    finally:
        await client.close()
    current = statistics.median(rounds["current"])
    report: dict[str, Any] = {}
    for shape, values in rounds.items():
        report[shape] = {"round_trip_p50_ms": round(1000 * statistics.median(values), 3),
                         "round_trip_ratio_to_current": round(statistics.median(values) / current, 2)}  # fmt: skip
    for shape, (total, count) in engine.items():
        report[shape]["cerbos_planning_mean_ms"] = round(total / count, 3)
    report["derived_roles"]["cerbos_planning_ratio_to_current"] = round(
        report["derived_roles"]["cerbos_planning_mean_ms"] / report["current"]["cerbos_planning_mean_ms"], 2
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("bench/out/policy_plans.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="policy-plans-") as scratch:
        policies = policies_with_the_old_shape(Path(scratch))
        with CerbosServer(Path(scratch) / "cerbos", policies_dir=policies) as server:
            result = uvloop.run(measure(server, args.requests))
    write_report(args.out, {**report_head("bench.policy_plans"), "shapes": result})


if __name__ == "__main__":
    main()
