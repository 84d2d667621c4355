"""One real Cerbos server on free ports for the whole session, and the cast of the tests.

The cast mirrors policies/tests/testdata/principals.yaml, so the Python tests and
the Cerbos policy tests speak about the same people.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.authz import Authorizer, Principal
from app.devstack.cerbos import REPO_ROOT, CerbosNotInstalledError, CerbosServer, cerbos_binary

PEOPLE = {
    "alice": Principal(id="user-alice", roles=("user",), organization_id="org-a"),
    "bob": Principal(id="user-bob", roles=("user",), organization_id="org-a"),  # alice's colleague
    "carol": Principal(id="user-carol", roles=("user",), organization_id="org-b"),  # another tenant
    "olga": Principal(id="user-olga", roles=("operator",), organization_id="org-ops"),  # read-only admin
    "adam": Principal(id="user-adam", roles=("admin",), organization_id="org-ops"),
}


@pytest.fixture(scope="session")
def cerbos_path() -> Path:
    """The pinned binary; installed from npm on a fresh machine, as `make` would."""
    try:
        return cerbos_binary()
    except CerbosNotInstalledError:
        subprocess.run([str(REPO_ROOT / "scripts" / "install-cerbos.sh")], check=True, stdout=subprocess.DEVNULL)
        return cerbos_binary()


@pytest.fixture(scope="session")
def cerbos_server(cerbos_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CerbosServer]:
    with CerbosServer(tmp_path_factory.mktemp("cerbos"), binary=cerbos_path) as server:
        yield server


@pytest.fixture(scope="session")
def cerbos_url(cerbos_server: CerbosServer) -> str:
    return cerbos_server.url


@pytest.fixture(scope="session")
async def authorizer(cerbos_url: str) -> AsyncIterator[Authorizer]:
    authorizer = Authorizer(cerbos_url)
    yield authorizer
    await authorizer.close()


@pytest.fixture(scope="session")
async def grpc_authorizer(cerbos_server: CerbosServer) -> AsyncIterator[Authorizer]:
    """The same server asked over gRPC, as the APIs do."""
    authorizer = Authorizer(cerbos_server.url, grpc_address=cerbos_server.grpc_address)
    yield authorizer
    await authorizer.close()
