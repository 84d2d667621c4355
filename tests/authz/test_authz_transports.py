"""gRPC, the transport the APIs use, decides exactly as HTTP does; several objects go in one call.

`test_authz_decisions.py` and `test_authz_list_filter.py` pin every decision over HTTP against
the product rules; here every one of those decisions and plans is asked again over gRPC and must
be the same.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Column, ColumnElement, MetaData, String, Table
from sqlalchemy.dialects import postgresql

from app.authz import AuthorizationUnavailable, Authorizer, Kind, Principal, ResourceCheck
from app.authz.filters import TranslatedPlans
from app.devstack.cerbos import CerbosServer
from app.devstack.processes import free_port
from app.files.tables import File
from app.jobs.tables import Job
from tests.authz.conftest import PEOPLE
from tests.authz.test_authz_decisions import ADMIN_KINDS, ALICE_OBJECT, TENANT_KINDS


def compiled(condition: ColumnElement[bool]) -> str:
    return str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("person", sorted(PEOPLE))
async def test_every_decision_is_the_same_over_grpc(
    authorizer: Authorizer, grpc_authorizer: Authorizer, person: str
) -> None:
    principal = PEOPLE[person]
    for kind, (every, _, _) in TENANT_KINDS.items():
        over_http = await authorizer.check_many(principal, kind, {"obj-1": ALICE_OBJECT}, every)
        assert await grpc_authorizer.check_many(principal, kind, {"obj-1": ALICE_OBJECT}, every) == over_http
    for kind, actions in ADMIN_KINDS.items():
        over_http = await authorizer.check_many(principal, kind, {"*": {}}, actions)
        assert await grpc_authorizer.check_many(principal, kind, {"*": {}}, actions) == over_http


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize(("kind", "table"), [(Kind.FILE, File), (Kind.FINE_TUNING_JOB, Job)])
async def test_every_plan_is_the_same_over_grpc(
    authorizer: Authorizer, grpc_authorizer: Authorizer, person: str, kind: Kind, table: type
) -> None:
    for action in ("read", "delete"):
        over_http = compiled(await authorizer.list_filter(PEOPLE[person], kind, action, table))
        assert compiled(await grpc_authorizer.list_filter(PEOPLE[person], kind, action, table)) == over_http


async def test_connecting_ahead_opens_the_channel(grpc_authorizer: Authorizer) -> None:
    await grpc_authorizer.connect()
    assert await grpc_authorizer.check(PEOPLE["alice"], Kind.FILE, "file-1", ALICE_OBJECT, "read")


async def test_a_conditional_plan_over_grpc_is_a_where_clause(grpc_authorizer: Authorizer) -> None:
    condition = await grpc_authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "read", File)
    assert compiled(condition) == "files.owner_id = 'user-alice' OR files.organization_id = 'org-a'"


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_objects_of_several_kinds_in_one_call(
    authorizer: Authorizer, grpc_authorizer: Authorizer, transport: str
) -> None:
    chosen = grpc_authorizer if transport == "grpc" else authorizer
    carols = {"owner_id": "user-carol", "organization_id": "org-b"}
    checks = [
        ResourceCheck(str(Kind.FINE_TUNING_JOB), "ftjob-new", ALICE_OBJECT, ("create",)),
        ResourceCheck(str(Kind.FILE), "file-1", ALICE_OBJECT, ("read",)),
        ResourceCheck(str(Kind.FILE), "file-2", carols, ("read",)),
        ResourceCheck(str(Kind.FILE), "file-1", ALICE_OBJECT, ("read", "delete")),  # the same file again
    ]
    answers = await chosen.check_all(PEOPLE["alice"], checks)
    assert answers == [frozenset({"create"}), frozenset({"read"}), frozenset(), frozenset({"read", "delete"})]
    assert await chosen.check_all(PEOPLE["bob"], checks[:2]) == [frozenset(), frozenset({"read"})]


async def test_more_objects_than_one_call_takes(grpc_authorizer: Authorizer) -> None:
    files = {f"file-{n}": ALICE_OBJECT if n % 2 else {"owner_id": "x", "organization_id": "y"} for n in range(120)}
    allowed = await grpc_authorizer.check_many(PEOPLE["alice"], Kind.FILE, files, ["read"])
    assert {file_id for file_id, actions in allowed.items() if actions} == {f"file-{n}" for n in range(1, 120, 2)}


async def test_no_role_is_denied_without_asking(grpc_authorizer: Authorizer) -> None:
    disabled = Principal(id="user-alice", roles=(), organization_id="org-a")
    assert not await grpc_authorizer.check(disabled, Kind.FILE, "file-1", ALICE_OBJECT, "read")
    assert compiled(await grpc_authorizer.list_filter(disabled, Kind.FILE, "read", File)) == "false"


async def test_unreachable_grpc_fails_closed() -> None:
    authorizer = Authorizer("http://127.0.0.1:9", grpc_address=f"127.0.0.1:{free_port()}", timeout_seconds=0.5)
    try:
        started = time.monotonic()
        await authorizer.connect()  # at start-up an absent Cerbos is reported, not fatal
        with pytest.raises(AuthorizationUnavailable) as error:
            await authorizer.check(PEOPLE["adam"], Kind.FILE, "file-1", ALICE_OBJECT, "read")
        assert error.value.status_code == 503
        with pytest.raises(AuthorizationUnavailable):
            await authorizer.list_filter(PEOPLE["adam"], Kind.FILE, "read", File)
        assert time.monotonic() - started < 5
    finally:
        await authorizer.close()


async def test_an_identical_plan_reuses_its_sql_and_cerbos_is_still_asked(
    cerbos_server: CerbosServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL built from a plan is found again only by the same answer for the same table and columns."""
    authorizer = Authorizer(cerbos_server.url, grpc_address=cerbos_server.grpc_address)
    asked: list[str] = []
    transport_plan = authorizer._transport.plan

    async def counted(principal: Principal, kind: str, action: str, request_id: str | None) -> object:
        asked.append(principal.id)
        return await transport_plan(principal, kind, action, request_id)

    monkeypatch.setattr(authorizer._transport, "plan", counted)
    uploads = Table("uploads", MetaData(), Column("id", String), Column("created_by", String),
                    Column("organization_id", String))  # fmt: skip
    try:
        first = await authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "read", File)
        assert await authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "read", File) is first
        assert len(asked) == 2 and len(authorizer.translated) == 1  # asked twice, translated once

        renamed = {"owner_id": uploads.c.created_by}
        others = {
            "bob's": await authorizer.list_filter(PEOPLE["bob"], Kind.FILE, "read", File),
            "jobs": await authorizer.list_filter(PEOPLE["alice"], Kind.FINE_TUNING_JOB, "read", Job),
            "delete": await authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "delete", File),
            "renamed": await authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "delete", uploads, columns=renamed),
        }
        assert {name: compiled(condition) for name, condition in others.items()} == {
            "bob's": "files.owner_id = 'user-bob' OR files.organization_id = 'org-a'",
            "jobs": "jobs.owner_id = 'user-alice' OR jobs.organization_id = 'org-a'",
            "delete": "files.owner_id = 'user-alice'",
            "renamed": "uploads.created_by = 'user-alice'",
        }
        assert compiled(await authorizer.list_filter(PEOPLE["adam"], Kind.FILE, "read", File)) == "true"
        assert len(authorizer.translated) == 5  # an unconditional answer is not kept
        assert len(asked) == 7
    finally:
        await authorizer.close()


async def test_translated_plans_keep_the_newest(grpc_authorizer: Authorizer) -> None:
    translated = TranslatedPlans(size=2)
    plans = {person: await grpc_authorizer._transport.plan(PEOPLE[person], "file", "read", None)
             for person in ("alice", "bob", "carol")}  # fmt: skip
    conditions = {person: translated.condition(plan, File) for person, plan in plans.items()}
    assert len(translated) == 2
    assert translated.condition(plans["carol"], File) is conditions["carol"]
    assert translated.condition(plans["alice"], File) is not conditions["alice"]  # the oldest went first
    assert compiled(translated.condition(plans["alice"], File)) == compiled(conditions["alice"])
