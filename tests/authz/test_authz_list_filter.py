"""`list_filter` on the harness's PostgreSQL and the real tables: the database returns exactly the rows a check allows.

The plan's SQL runs where it runs in production (PostgreSQL, the `files` and `base_models`
tables with their real types), not on a stand-in dialect.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

from app.authz import (
    AuthorizationUnavailable,
    Authorizer,
    Kind,
    Principal,
    UntranslatablePlanError,
    resource_attributes,
)
from app.catalog.tables import CatalogEntry
from app.devstack.processes import free_port
from app.files.tables import File
from app.users.tables import Organization, User
from tests.authz.conftest import PEOPLE

FILES = File.__table__
BASE_MODELS = CatalogEntry.__table__
FILE_ROWS = [
    {"id": "file-alice-1", "owner_id": "user-alice", "organization_id": "org-a"},
    {"id": "file-alice-2", "owner_id": "user-alice", "organization_id": "org-a"},
    {"id": "file-bob", "owner_id": "user-bob", "organization_id": "org-a"},
    {"id": "file-carol", "owner_id": "user-carol", "organization_id": "org-b"},
]
ALL_FILES = {row["id"] for row in FILE_ROWS}
ORG_A_FILES = {"file-alice-1", "file-alice-2", "file-bob"}
DAVE = Principal(id="user-dave", roles=("user",), organization_id="org-c")  # owns nothing, shares nothing


def _file(row: dict[str, str]) -> dict[str, object]:
    return {**row, "filename": "t.jsonl", "purpose": "fine-tune", "bytes": 1, "sha256": "0" * 64,
            "storage_name": f"{row['id']}.jsonl", "status": "processed", "statistics": {},
            "index_status": "skipped"}  # fmt: skip


@pytest.fixture
def db(stack: object) -> Iterator[Connection]:
    """The harness's PostgreSQL (emptied before each test), with the files and models of the cast."""
    engine = create_engine(os.environ["DATABASE_URL"].replace("+asyncpg", "+psycopg2"), poolclass=NullPool)
    people = {person.id: person for person in [*PEOPLE.values(), DAVE]}
    with engine.begin() as connection:
        organizations = sorted({person.organization_id for person in people.values()})
        connection.execute(insert(Organization.__table__), [{"id": org, "name": org} for org in organizations])
        connection.execute(insert(User.__table__), [
            {"id": person.id, "organization_id": person.organization_id, "email": f"{person.id}@example.com",
             "roles": list(person.roles)} for person in people.values()
        ])  # fmt: skip
        connection.execute(insert(FILES), [_file(row) for row in FILE_ROWS])
        connection.execute(insert(BASE_MODELS), [
            {"id": "tiny-llama", "source": "/models/tiny", "allowed": True},
            {"id": "huge-llama", "source": "/models/huge", "allowed": False},
        ])  # fmt: skip
    with engine.connect() as connection:
        yield connection
    engine.dispose()


async def visible(db: Connection, authorizer: Authorizer, principal: Principal, kind: Kind, action: str) -> set[str]:
    table = BASE_MODELS if kind == Kind.BASE_MODEL else FILES
    condition = await authorizer.list_filter(principal, kind, action, table)
    assert db.dialect.name == "postgresql"
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
