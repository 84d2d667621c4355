"""Role x action decisions through `Authorizer`, against the real Cerbos server.

The expected rights are restated here from the product rules, independently of
the YAML policies, so a policy edit that changes who may do what fails here too.
"""

from __future__ import annotations

import pytest

from app.authz import (
    AuthorizationUnavailable,
    Authorizer,
    Forbidden,
    Kind,
    NotFound,
    Principal,
    hidden,
)
from app.devstack.processes import free_port
from tests.authz.conftest import PEOPLE

ALICE_OBJECT = {"owner_id": "user-alice", "organization_id": "org-a"}

# kind -> (every action, what the owner may do, what a colleague may do). Operators: nothing (they operate
# through the admin API, policies/README.md).
TENANT_KINDS: dict[Kind, tuple[set[str], set[str], set[str]]] = {
    Kind.FILE: (
        {"create", "read", "download", "use", "update", "delete"},
        {"create", "read", "download", "use", "update", "delete"},
        {"read", "download", "use"},  # as on OpenAI, a colleague may train on the organization's files
    ),
    Kind.FINE_TUNING_JOB: (
        {"create", "read", "update", "cancel", "pause", "resume", "delete"},
        {"create", "read", "update", "cancel", "pause", "resume", "delete"},
        {"read"},
    ),
    Kind.CHECKPOINT: ({"read", "download", "delete"}, {"read", "download", "delete"}, {"read", "download"}),
    Kind.MODEL: (
        {"read", "download", "update", "delete"},
        {"read", "download", "update", "delete"},
        {"read", "download"},
    ),
}
ADMIN_KINDS: dict[Kind, set[str]] = {
    Kind.ORGANIZATION: {"read", "list", "create", "update", "delete"},
    Kind.USER: {"read", "list", "create", "update", "disable", "delete"},
    Kind.API_KEY: {"read", "list", "create", "revoke", "delete"},
    Kind.QUOTA: {"read", "list", "create", "update", "delete"},
    Kind.ADMIN_JOB: {"read", "list", "cancel", "pause", "resume", "retry", "prioritize", "update", "delete"},
    Kind.FLEET: {"read", "list", "drain", "undrain", "update"},
    Kind.AUDIT_LOG: {"read", "list", "export"},
    Kind.REGISTRY_MODEL: {"read", "list", "create", "update", "transition", "delete"},
    Kind.BASE_MODEL: {"read", "list", "use", "create", "update", "delete", "download"},
}


def tenant_rights(kind: Kind, person: str) -> set[str]:
    every, owner, reader = TENANT_KINDS[kind]
    return {"alice": owner, "bob": reader, "carol": set(), "olga": set(), "adam": every}[person]


def admin_rights(kind: Kind, person: str) -> set[str]:
    operator = {"read", "list"} | ({"cancel", "retry", "prioritize"} if kind == Kind.ADMIN_JOB else set())
    return {"olga": operator, "adam": ADMIN_KINDS[kind]}.get(person, set())


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("kind", list(TENANT_KINDS))
async def test_tenant_object_rights(authorizer: Authorizer, kind: Kind, person: str) -> None:
    every = TENANT_KINDS[kind][0]
    allowed = await authorizer.check_many(PEOPLE[person], kind, {"obj-1": ALICE_OBJECT}, every)
    assert allowed == {"obj-1": frozenset(tenant_rights(kind, person))}


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("kind", [kind for kind in ADMIN_KINDS if kind != Kind.BASE_MODEL])
async def test_admin_api_rights(authorizer: Authorizer, kind: Kind, person: str) -> None:
    allowed = await authorizer.check_many(PEOPLE[person], kind, {"*": {}}, ADMIN_KINDS[kind])
    assert allowed["*"] == frozenset(admin_rights(kind, person))


@pytest.mark.parametrize("person", sorted(PEOPLE))
async def test_base_model_catalog_rights(authorizer: Authorizer, person: str) -> None:
    every = ADMIN_KINDS[Kind.BASE_MODEL]
    catalog = {"tiny-llama": {"allowed": True}, "huge-llama": {"allowed": False}}
    allowed = await authorizer.check_many(PEOPLE[person], Kind.BASE_MODEL, catalog, every)
    users_see = {"read", "use"} if PEOPLE[person].roles == ("user",) else set()
    assert allowed["tiny-llama"] == frozenset(admin_rights(Kind.BASE_MODEL, person) | users_see)
    assert allowed["huge-llama"] == frozenset(admin_rights(Kind.BASE_MODEL, person))


async def test_check_single_action(authorizer: Authorizer) -> None:
    assert await authorizer.check(PEOPLE["alice"], Kind.FILE, "file-1", ALICE_OBJECT, "delete")
    assert not await authorizer.check(PEOPLE["bob"], Kind.FILE, "file-1", ALICE_OBJECT, "delete")
    assert not await authorizer.check(PEOPLE["carol"], Kind.FILE, "file-1", ALICE_OBJECT, "read")


async def test_unknown_action_and_kind_are_denied(authorizer: Authorizer) -> None:
    assert not await authorizer.check(PEOPLE["alice"], Kind.FILE, "file-1", ALICE_OBJECT, "share")
    admin = PEOPLE["adam"]
    assert not await authorizer.check(admin, "invoice", "inv-1", {}, "read")  # type: ignore[arg-type]


async def test_no_role_means_no_right(authorizer: Authorizer) -> None:
    disabled = Principal(id="user-alice", roles=(), organization_id="org-a")
    assert not await authorizer.check(disabled, Kind.FILE, "file-1", ALICE_OBJECT, "read")


async def test_check_many_spans_several_cerbos_requests(authorizer: Authorizer) -> None:
    """More resources than one Cerbos request takes: every one still gets its own answer."""
    files = {f"file-{n}": {"owner_id": "user-alice" if n % 3 else "user-bob", "organization_id": "org-a"}
             for n in range(120)}  # fmt: skip
    allowed = await authorizer.check_many(PEOPLE["alice"], Kind.FILE, files, ["read", "delete"])
    assert len(allowed) == 120
    for file_id, attrs in files.items():
        expected = {"read", "delete"} if attrs["owner_id"] == "user-alice" else {"read"}
        assert allowed[file_id] == expected, file_id


async def test_require_hides_forbidden_objects_as_missing(authorizer: Authorizer) -> None:
    await authorizer.require(PEOPLE["bob"], Kind.FILE, "file-1", ALICE_OBJECT, "read")
    with pytest.raises(NotFound) as forbidden:
        await authorizer.require(PEOPLE["carol"], Kind.FILE, "file-1", ALICE_OBJECT, "read")
    with pytest.raises(NotFound) as missing:
        await authorizer.require(PEOPLE["carol"], Kind.FILE, "file-1", None, "read")
    with pytest.raises(NotFound) as missing_row:
        await authorizer.require_row(PEOPLE["carol"], Kind.FILE, "file-1", None, "read")
    with pytest.raises(NotFound) as not_readable:  # an action other than read, on what the caller cannot see
        await authorizer.require(PEOPLE["carol"], Kind.FILE, "file-1", ALICE_OBJECT, "delete")
    assert forbidden.value.status_code == missing.value.status_code == missing_row.value.status_code == 404
    assert forbidden.value.body() == missing.value.body() == missing_row.value.body() == not_readable.value.body()
    assert forbidden.value.body() == hidden(Kind.FILE, "file-1").body()


async def test_require_names_the_refused_action_on_what_the_caller_can_see(authorizer: Authorizer) -> None:
    """A colleague reads alice's job: cancelling it is a 403 that says why, not a 404 contradicting the read."""
    with pytest.raises(Forbidden) as refused:
        await authorizer.require(PEOPLE["bob"], Kind.FINE_TUNING_JOB, "ftjob-1", ALICE_OBJECT, "cancel")
    assert refused.value.status_code == 403 and refused.value.type == "permission_error"
    assert refused.value.param == "fine_tuning_job_id"
    assert "may not cancel" in refused.value.message and "owner" in refused.value.message


async def test_a_refused_create_names_no_id(authorizer: Authorizer) -> None:
    await authorizer.require_create(PEOPLE["alice"], Kind.FINE_TUNING_JOB, ALICE_OBJECT)
    with pytest.raises(Forbidden) as refused:
        await authorizer.require_create(PEOPLE["olga"], Kind.FINE_TUNING_JOB, {"owner_id": "user-olga",
                                                                             "organization_id": "org-ops"})  # fmt: skip
    assert refused.value.status_code == 403 and "ftjob" not in refused.value.message
    assert refused.value.param is None


async def test_require_row_uses_the_deciding_object(authorizer: Authorizer) -> None:
    class Row:
        owner_id = "user-alice"
        organization_id = "org-a"

    job = Row()
    checkpoint = object()  # a checkpoint row has no owner: its job decides
    assert await authorizer.require_row(PEOPLE["alice"], Kind.FILE, "file-1", job, "delete") is job
    returned = await authorizer.require_row(
        PEOPLE["bob"], Kind.CHECKPOINT, "ftckpt_1", checkpoint, "download", attrs_from=job
    )
    assert returned is checkpoint
    with pytest.raises(Forbidden):  # bob reads alice's checkpoint, so deleting it is refused, not hidden
        await authorizer.require_row(PEOPLE["bob"], Kind.CHECKPOINT, "ftckpt_1", checkpoint, "delete", attrs_from=job)
    with pytest.raises(NotFound):
        await authorizer.require_row(PEOPLE["carol"], Kind.CHECKPOINT, "ftckpt_1", checkpoint, "read", attrs_from=job)


async def test_model_not_found_speaks_like_openai(authorizer: Authorizer) -> None:
    with pytest.raises(NotFound) as error:
        await authorizer.require(PEOPLE["carol"], Kind.MODEL, "ft:tiny:org-a::ftjob-1", ALICE_OBJECT, "read")
    assert error.value.code == "model_not_found"
    assert error.value.type == "invalid_request_error"
    assert error.value.param == "model"


async def test_require_admin(authorizer: Authorizer) -> None:
    await authorizer.require_admin(PEOPLE["adam"], Kind.USER, "create")
    await authorizer.require_admin(PEOPLE["olga"], Kind.USER, "list")
    with pytest.raises(Forbidden) as error:
        await authorizer.require_admin(PEOPLE["olga"], Kind.USER, "create")
    assert error.value.status_code == 403
    with pytest.raises(Forbidden):
        await authorizer.require_admin(PEOPLE["alice"], Kind.AUDIT_LOG, "read")


async def test_unreachable_cerbos_fails_closed() -> None:
    authorizer = Authorizer(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    try:
        with pytest.raises(AuthorizationUnavailable) as error:
            await authorizer.check(PEOPLE["adam"], Kind.FILE, "file-1", ALICE_OBJECT, "read")
        assert error.value.status_code == 503
    finally:
        await authorizer.close()
