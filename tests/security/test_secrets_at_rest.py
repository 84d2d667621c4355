"""After real traffic, no API key is stored in plain text: not in the database, the logs, MLflow or anywhere on disk.

Keys are issued both ways (directly, and through the admin API, whose answer is the only place a
secret may appear), used for uploads and a real training job (so MLflow has a run with params,
tags, metrics and artifacts), sent wrong, and sent where they do not belong (a query string, an
unknown header). Then every store is searched for each secret, for the pepper, and for anything
shaped like a key: a dump of every table (pg_dump), every log file of the data dir, every MLflow
run's params, tags and artifacts and every registered model version, and every file under the data
dir (PostgreSQL's pages and WAL, the broker's append-only file, MLflow's database included).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from tests.api.conftest import sdk
from tests.chaos.conftest import start_short_job
from tests.chaos.evidence import record
from tests.jobs.helpers import TERMINAL, wait_status

pytestmark = pytest.mark.slow
# A whole key: the prefix and more characters than the stored lookup prefix (12) keeps.
KEY_SHAPE = re.compile(rb"sk-ft-[A-Za-z0-9_-]{20,}")


@dataclass
class Search:
    """What was searched, and every place a secret was found."""

    secrets: list[bytes]
    scanned: dict[str, int] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)

    def look(self, store: str, where: str, content: bytes) -> None:
        self.scanned[store] = self.scanned.get(store, 0) + len(content)
        for secret in self.secrets:
            if secret in content:
                self.found.append(f"{store}: {where}: a secret ({secret[:10].decode()}...)")
        for match in KEY_SHAPE.finditer(content):
            self.found.append(f"{store}: {where}: something shaped like a key ({match.group()[:10].decode()}...)")


def _exercise(user_api: str, admin_api: str, admin: Any, user: Any) -> str:
    """Issue a key through the admin API and use every key the ways clients do (and some they should not)."""
    with httpx.Client(base_url=admin_api, headers=admin.headers, timeout=60) as http:
        issued = http.post(f"/admin/v1/users/{user.id}/api-keys", json={"name": "issued-by-admin"}).json()
        assert issued["secret"].startswith("sk-ft-")
        assert issued["secret"] not in http.get(f"/admin/v1/users/{user.id}/api-keys").text
    secret = issued["secret"]
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    with httpx.Client(base_url=user_api, timeout=60) as http:
        assert http.get("/v1/files", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert http.get("/v1/files", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
        assert http.get("/v1/files", params={"api_key": secret}).status_code == 401
        assert http.get("/v1/files", headers={"X-Api-Key": secret}).status_code == 401
        assert http.get(f"/v1/files/{secret}", headers=user.headers).status_code == 404
    return secret


def _dump_database(search: Search, database_url: str) -> None:
    from app.devstack.postgres import _bin_dir

    url = database_url.replace("+asyncpg", "")
    dump = subprocess.run([str(_bin_dir() / "pg_dump"), "--data-only", "--dbname", url], capture_output=True,
                          check=True).stdout  # fmt: skip
    search.look("database", "pg_dump --data-only", dump)
    search.scanned["database_tables"] = dump.count(b"\nCOPY ")


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _search_mlflow(search: Search, tracking_uri: str, scratch: Path) -> None:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiments = client.search_experiments()
    runs = client.search_runs([experiment.experiment_id for experiment in experiments]) if experiments else []
    for run in runs:
        search.look("mlflow", f"run {run.info.run_id} params", repr(run.data.params).encode())
        search.look("mlflow", f"run {run.info.run_id} tags", repr(run.data.tags).encode())
        target = scratch / run.info.run_id
        target.mkdir(parents=True)
        client.download_artifacts(run.info.run_id, "", str(target))
        for path in _files_under(target):
            search.look("mlflow", f"artifact {path.relative_to(scratch)}", path.read_bytes())
    for version in client.search_model_versions():
        search.look("mlflow", f"model version {version.name}/{version.version}", repr(version).encode())
    search.scanned["mlflow_runs"] = len(runs)


async def test_no_api_key_is_stored_in_plain_text(  # type: ignore[no-untyped-def]
    stack, user_api, admin_api, make_user, cpu_worker, gpu_worker, tiny_model, settings, tmp_path
) -> None:
    admin = await make_user("keeper@ops.example.com", "ops", ["admin"])
    user = await make_user("owner@acme.example.com", "acme")
    issued = _exercise(user_api, admin_api, admin, user)
    client = sdk(user_api, issued)
    job = wait_status(client, start_short_job(client, tiny_model), TERMINAL, timeout=420)
    assert job.status == "succeeded", job.error

    pepper = settings.api_key_pepper.get_secret_value().encode()
    search = Search([key.encode() for key in (admin.key, user.key, issued)] + [pepper])
    _dump_database(search, os.environ["DATABASE_URL"])
    for path in _files_under(stack.data_dir / "logs"):
        search.look("logs", str(path.relative_to(stack.data_dir)), path.read_bytes())
    _search_mlflow(search, settings.mlflow_tracking_uri, tmp_path / "mlflow")
    data_files = _files_under(stack.data_dir)
    for path in data_files:
        search.look("data_dir", str(path.relative_to(stack.data_dir)), path.read_bytes())
    figures = {"bytes_scanned": search.scanned, "data_dir_files": len(data_files), "secrets_searched": 4,
               "plain_text_secrets_found": len(search.found), "found": search.found[:20]}  # fmt: skip
    record("secrets_at_rest", figures)
    assert search.found == [], figures
    assert search.scanned["mlflow_runs"] >= 1 and search.scanned["database_tables"] >= 5, figures


def test_the_search_finds_a_secret_and_anything_shaped_like_a_key() -> None:
    """The search above can fail: a secret, or any whole key, in any store is reported."""
    search = Search([b"sk-ft-known0123456789abcdefghijklmnopqrstuvwxyzABC"])
    search.look("logs", "a.log", b"... Authorization: Bearer sk-ft-known0123456789abcdefghijklmnopqrstuvwxyzABC ...")
    search.look("logs", "b.log", b"lookup prefix sk-ft-abcdefghijkl only")
    search.look("mlflow", "params", b"{'token': 'sk-ft-other_key_of_another_test_0123456789'}")
    assert [entry.split(":")[0:2] for entry in search.found] == [["logs", " a.log"], ["logs", " a.log"],
                                                                 ["mlflow", " params"]]  # fmt: skip
