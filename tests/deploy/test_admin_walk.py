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


def page_script(admin_api: str, user_api: str, models: Path) -> str:
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 6, "docs/admin.md lost its examples"
    script = "\n".join(blocks)
    assert COMPOSE_RUN in script and "http://127.0.0.1:8010" in script and "/models/" in script
    script = script.replace(COMPOSE_RUN, "").replace("http://127.0.0.1:8010", admin_api)
    script = MODELS.sub(str(models), script.replace("http://127.0.0.1:8080", user_api))
    return CURL_REPORTS + script


async def test_admin_page_runs_from_an_empty_database_to_a_job(  # type: ignore[no-untyped-def]
    admin_api, user_api, cpu_worker, no_gpu_worker, tiny_model_path, sessionmaker, settings, tmp_path
) -> None:
    async with sessionmaker() as session:
        assert (await session.scalars(select(User))).all() == [], "the walk starts from no account at all"
    models = tmp_path / "models"
    values = tmp_path / "values"
    script = page_script(admin_api, user_api, models)
    script += f'\nprintf "%s\\n" "$ADMIN_API_KEY" "$USER_API_KEY" "$JOB_ID" > {values}\n'
    env = {**os.environ, "MODEL_FOLDER": str(tiny_model_path),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=rules.REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    admin_key, user_key, job_id = values.read_text(encoding="utf-8").split()
    assert admin_key.startswith(settings.api_key_prefix) and user_key.startswith(settings.api_key_prefix)
    # The second create-admin of the page created nothing and printed no key.
    assert done.stderr.count("Created admin ops@example.com") == 1, done.stderr
    assert "exists; nothing changed" in done.stderr, done.stderr
    assert admin_key not in done.stdout, "the key is printed once, into the variable only"
    # The health call of the page shows what is down (no GPU worker runs here) instead of failing the walk.
    assert '"status": "degraded"' in done.stdout and '"workers_gpu"' in done.stdout, done.stdout[:2000]

    async with sessionmaker() as session:
        entry = await session.get(CatalogEntry, "my-base-model")
        assert entry is not None and entry.source == str(models / "my-base-model")
        assert entry.download_status == "ready"
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
