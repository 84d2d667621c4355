"""Schemathesis against both running APIs: no server error, no schema violation, no auth bypass.

CI runs a few examples per operation (every phase still runs); FULL_CHAOS=1 or
FUZZ_MAX_EXAMPLES raises it for the evidence run. What Schemathesis reports beyond those
three groups (lenient input, semantic refusals) is recorded and discussed in docs/evidence.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.evidence import record
from tests.fuzz.schemathesis_run import FuzzResult, FuzzTarget, max_examples, run

pytestmark = pytest.mark.slow


def assert_clean(result: FuzzResult) -> None:
    summary = result.summary()
    found = {key: summary[key] for key in ("server_errors", "schema_violations", "auth_bypasses", "errors")}
    assert found == {"server_errors": {}, "schema_violations": {}, "auth_bypasses": {}, "errors": []}, (
        f"{found}\n{' '.join(result.argv)}\nSchemathesis' output: {result.output_path}"
    )
    assert summary["operations_tested"] == summary["operations_total"], result.output_path


# The GPU queue is held: a job the fuzzer creates or resumes is validated, never trained. (Not for the
# admin API: its health check rightly reports a GPU worker that consumes nothing as down.)
@pytest.mark.usefixtures("gpu_queue_held")
def test_user_api_survives_fuzzing(user_api_target: FuzzTarget, tmp_path: Path) -> None:
    result = run(user_api_target, tmp_path, max_examples())
    record("fuzz_user_api", result.summary())
    assert_clean(result)


def test_admin_api_survives_fuzzing(admin_api_target: FuzzTarget, tmp_path: Path) -> None:
    result = run(admin_api_target, tmp_path, max_examples())
    record("fuzz_admin_api", result.summary())
    assert_clean(result)
