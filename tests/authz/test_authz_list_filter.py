"""`list_filter` on real SQL: the database returns exactly the rows a check would allow."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    create_engine,
    select,
)
from sqlalchemy.dialects import postgresql

from app.authz import (
    AuthorizationUnavailable,
    Authorizer,
    Kind,
    Principal,
    UntranslatablePlanError,
    resource_attributes,
)
from app.devstack.processes import free_port
from app.files.tables import File
from tests.authz.conftest import PEOPLE

METADATA = MetaData()
# SQLite copies of the columns the policies read; the real tables use Postgres-only types.
FILES = Table(
    "files",
    METADATA,
    Column("id", String, primary_key=True),
    Column("owner_id", String, nullable=False),
    Column("organization_id", String, nullable=False),
)
BASE_MODELS = Table(
    "base_models",
    METADATA,
    Column("id", String, primary_key=True),
    Column("allowed", Boolean, nullable=False),
)
FILE_ROWS = [
    {"id": "file-alice-1", "owner_id": "user-alice", "organization_id": "org-a"},
    {"id": "file-alice-2", "owner_id": "user-alice", "organization_id": "org-a"},
    {"id": "file-bob", "owner_id": "user-bob", "organization_id": "org-a"},
    {"id": "file-carol", "owner_id": "user-carol", "organization_id": "org-b"},
]
ALL_FILES = {row["id"] for row in FILE_ROWS}
ORG_A_FILES = {"file-alice-1", "file-alice-2", "file-bob"}
DAVE = Principal(id="user-dave", roles=("user",), organization_id="org-c")  # owns nothing, shares nothing


@pytest.fixture(scope="module")
def db() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(FILES.insert(), FILE_ROWS)
        connection.execute(
            BASE_MODELS.insert(),
            [{"id": "tiny-llama", "allowed": True}, {"id": "huge-llama", "allowed": False}],
        )
    with engine.connect() as connection:
        yield connection
    engine.dispose()


async def visible(db: Connection, authorizer: Authorizer, principal: Principal, kind: Kind, action: str) -> set[str]:
    table = BASE_MODELS if kind == Kind.BASE_MODEL else FILES
    condition = await authorizer.list_filter(principal, kind, action, table)
    return set(db.scalars(select(table.c.id).where(condition).order_by(table.c.id)))


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("alice", ORG_A_FILES),  # her own, and her colleague's
        ("bob", ORG_A_FILES),
        ("carol", {"file-carol"}),
        ("olga", set()),  # operators read no tenant's files
        ("adam", ALL_FILES),
    ],
)
async def test_readable_files(db: Connection, authorizer: Authorizer, person: str, expected: set[str]) -> None:
    assert await visible(db, authorizer, PEOPLE[person], Kind.FILE, "read") == expected


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        ("alice", {"file-alice-1", "file-alice-2"}),  # only the owner deletes
        ("bob", {"file-bob"}),
        ("carol", {"file-carol"}),
        ("olga", set()),
        ("adam", ALL_FILES),
    ],
)
async def test_deletable_files(db: Connection, authorizer: Authorizer, person: str, expected: set[str]) -> None:
    assert await visible(db, authorizer, PEOPLE[person], Kind.FILE, "delete") == expected


async def test_stranger_sees_nothing(db: Connection, authorizer: Authorizer) -> None:
    assert await visible(db, authorizer, DAVE, Kind.FILE, "read") == set()
    no_roles = Principal(id="user-alice", roles=(), organization_id="org-a")
    assert await visible(db, authorizer, no_roles, Kind.FILE, "read") == set()


@pytest.mark.parametrize("action", ["read", "download", "use", "update", "delete"])
@pytest.mark.parametrize("principal", [*PEOPLE.values(), DAVE], ids=[*PEOPLE, "dave"])
async def test_list_agrees_with_check(
    db: Connection, authorizer: Authorizer, principal: Principal, action: str
) -> None:
    """Whatever a list returns, a check on each row allows; whatever it leaves out, a check denies."""
    rows = {row["id"]: resource_attributes(SimpleNamespace(**row)) for row in FILE_ROWS}
    checked = await authorizer.check_many(principal, Kind.FILE, rows, [action])
    allowed_by_check = {file_id for file_id, actions in checked.items() if action in actions}
    assert await visible(db, authorizer, principal, Kind.FILE, action) == allowed_by_check


async def test_base_model_catalog(db: Connection, authorizer: Authorizer) -> None:
    assert await visible(db, authorizer, PEOPLE["carol"], Kind.BASE_MODEL, "read") == {"tiny-llama"}
    assert await visible(db, authorizer, PEOPLE["olga"], Kind.BASE_MODEL, "list") == {
        "tiny-llama",
        "huge-llama",
    }
    assert await visible(db, authorizer, PEOPLE["carol"], Kind.BASE_MODEL, "list") == set()


def compiled(condition: ColumnElement[bool]) -> str:
    return str(condition.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


async def test_condition_on_the_real_table(authorizer: Authorizer) -> None:
    """On the ORM table the filter is one WHERE over indexed columns: no row is fetched to decide."""
    condition = await authorizer.list_filter(PEOPLE["alice"], Kind.FILE, "read", File)
    assert compiled(condition) == "files.owner_id = 'user-alice' OR files.organization_id = 'org-a'"
    assert compiled(await authorizer.list_filter(PEOPLE["adam"], Kind.FILE, "read", File)) == "true"
    assert compiled(await authorizer.list_filter(PEOPLE["olga"], Kind.FILE, "delete", File)) == "false"


async def test_columns_with_other_names(db: Connection, authorizer: Authorizer) -> None:
    """A table whose owner column is named differently maps it explicitly."""
    uploads = Table(
        "uploads",
        MetaData(),
        Column("id", String),
        Column("created_by", String),
        Column("organization_id", String),
    )
    condition = await authorizer.list_filter(
        PEOPLE["alice"], Kind.FILE, "delete", uploads, columns={"owner_id": uploads.c.created_by}
    )
    assert compiled(condition) == "uploads.created_by = 'user-alice'"


async def test_missing_column_fails_loudly(authorizer: Authorizer) -> None:
    """A table lacking a column the policy needs must raise, never fall back to allowing."""
    ownerless = Table("checkpoints", MetaData(), Column("id", String), Column("job_id", String))
    with pytest.raises(UntranslatablePlanError):
        await authorizer.list_filter(PEOPLE["alice"], Kind.CHECKPOINT, "read", ownerless)


async def test_unreachable_cerbos_fails_closed() -> None:
    authorizer = Authorizer(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    try:
        with pytest.raises(AuthorizationUnavailable):
            await authorizer.list_filter(PEOPLE["adam"], Kind.FILE, "read", FILES)
    finally:
        await authorizer.close()
