"""docs/admin.md as a newcomer runs it: empty database -> first admin key -> local base model -> user key -> job.

Every `bash` block of the page runs, in order, in one shell. What differs from a compose host is said here
and nowhere else: `docker compose run --rm -T admin-api` runs its command on this host (the embedded stack
stands in for the containers; `python` is this virtual environment's), the published ports are the test
stack's, and `./models` (on the host) and `/models` (in the containers) are one folder of this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from app.catalog.tables import CatalogEntry
from app.finetuned.tables import FineTunedModel
from app.jobs.tables import Job
from app.users.tables import User
from tests.deploy import compose_rules as rules

PAGE = rules.REPO_ROOT / "docs" / "admin.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
COMPOSE_RUN = "docker compose run --rm -T admin-api "
# `./models` and `/models`, but not the `/models` of a route such as /admin/v1/models.
MODELS = re.compile(r"(?<![\w/])\.?/models\b")
# The page's `curl -sf` calls as written, but a failing one names itself and shows the body it got (stderr).
CURL_REPORTS = r"""
curl() {
  [ "$1" = -sf ] || { command curl "$@"; return; }
  local body rc=0
  body=$(mktemp)
  command curl -sS --fail-with-body -o "$body" "${@:2}" || rc=$?
  if [ "$rc" -ne 0 ]; then printf 'FAILED (curl exit %s): curl %s\n' "$rc" "$*" >&2; cat "$body" >&2; echo >&2; fi
  cat "$body"; rm -f "$body"; return "$rc"
}
"""


SPLIT = "## Fine-tuned models and the registry"  # from here on a GPU worker runs: the job trains


def page_scripts(admin_api: str, user_api: str, models: Path) -> tuple[str, str]:
    """The page's blocks before SPLIT and from it on, each a script; the second starts with what the first set."""
    before, after = PAGE.read_text(encoding="utf-8").split(SPLIT, 1)
    parts = []
    for text in (before, after):
        script = "\n".join(BLOCK.findall(text))
        script = script.replace(COMPOSE_RUN, "").replace("http://127.0.0.1:8010", admin_api)
        parts.append(MODELS.sub(str(models), script.replace("http://127.0.0.1:8080", user_api)))
    first, second = parts
    assert len(BLOCK.findall(before)) >= 6, "docs/admin.md lost its examples"
    assert COMPOSE_RUN not in first and admin_api in first and f"{models}/" in first and "registry" in second
    return first, second


def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", CURL_REPORTS + script], cwd=rules.REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


async def test_admin_page_runs_from_an_empty_database_to_a_job(  # type: ignore[no-untyped-def]
    admin_api,
    user_api,
    cpu_worker,
    no_gpu_worker,
    gpu_worker_process,
    tiny_model_path,
    sessionmaker,
    settings,
    tmp_path,
    mlflow,
) -> None:
    async with sessionmaker() as session:
        assert (await session.scalars(select(User))).all() == [], "the walk starts from no account at all"
    models = tmp_path / "models"
    values, state = tmp_path / "values", tmp_path / "state"
    first, second = page_scripts(admin_api, user_api, models)
    # What the first part set, for the second (one shell on the page; two here, a GPU worker started between).
    names = sorted(set(re.findall(r"^([A-Z][A-Z_]*)=", first, re.MULTILINE)))
    first += f"\ndeclare -p {' '.join(names)} > {state}\n"
    second = f". {state}\n{second}\n" + f'printf "%s\\n" "$ADMIN_API_KEY" "$USER_API_KEY" "$JOB_ID" > {values}\n'
    env = {**os.environ, "MODEL_FOLDER": str(tiny_model_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    done = run_script(first, env)
    # The second create-admin of the page created nothing and printed no key.
    assert done.stderr.count("Created admin ops@example.com") == 1, done.stderr
    assert "exists; nothing changed" in done.stderr, done.stderr
    # The health call of the page shows what is down (no GPU worker runs here) instead of failing the walk.
    assert '"status": "degraded"' in done.stdout and '"workers_gpu"' in done.stdout, done.stdout[:2000]

    async with sessionmaker() as session:
        entry = await session.get(CatalogEntry, "my-base-model")
        assert entry is not None and entry.source == str(models / "my-base-model")
        assert entry.download_status == "ready"
        job_id = (await session.scalars(select(Job.id))).one()
    # The CPU worker validates the job against the local folder: it leaves `validating_files` for `queued`.
    deadline = time.monotonic() + 180
    while True:
        async with sessionmaker() as session:
            job = await session.get(Job, job_id)
            assert job is not None
        if job.status != "validating_files":
            break
        assert time.monotonic() < deadline, "the job was never validated"
        time.sleep(0.5)
    assert job.status == "queued" and job.model == "my-base-model", (job.status, job.error)
    assert job.priority == 1, "the page's priority change reached the queued job"

    gpu_worker_process.ensure_running()
    done = run_script(second, env)
    admin_key, user_key, listed_job = values.read_text(encoding="utf-8").split()
    assert listed_job == job_id
    assert admin_key.startswith(settings.api_key_prefix) and user_key.startswith(settings.api_key_prefix)
    assert admin_key not in done.stdout, "the key is printed once, into the variable only"
    lines = done.stdout.splitlines()
    assert lines[0] == "succeeded", done.stdout
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        assert job is not None and job.fine_tuned_model is not None
        model = await session.get(FineTunedModel, job.fine_tuned_model)
        assert model is not None and model.registry_name and model.registry_version
    assert f"{model.id} my-base-model {model.registry_name} v{model.registry_version}" in lines, done.stdout
    # The alias the page moved is MLflow's own, on the job's version.
    assert mlflow.get_registered_model(model.registry_name).aliases == {"production": str(model.registry_version)}
    assert "120 from organization" in lines, done.stdout
