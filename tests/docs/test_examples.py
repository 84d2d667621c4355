"""README.md and docs/*.md: every Python example runs as written (tests/docs/examples.py).

The serving examples need the vLLM engine and a trained model: tests/inference/test_chat.py runs
them inside its scenario, where both exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openai import OpenAI

from app.training.config import TrainingConfig
from tests.docs.examples import ROOT, RUNS, examples, run_example
from tests.jobs.datasets import chat_lines, jsonl
from tests.training.conftest import RecordingProgress, make_config, write_chat_file


def test_every_python_example_is_run_by_a_test() -> None:
    assert set(examples()) == set(RUNS), "an example no test runs, or a test of an example that is gone"
    for key, test in RUNS.items():
        path, name = test.split("::")
        text = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"def {name}\(", text) and f'"{key}"' in text, f"{test} does not run {key}"


@pytest.mark.slow
async def test_readme_sdk_example(  # type: ignore[no-untyped-def]
    user_api, cpu_worker, tiny_model, make_user, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The README's SDK example: its hyperparameters all reach the job (none dropped by the SDK's merge)."""
    user = await make_user("readme@acme.example.com")
    monkeypatch.chdir(tmp_path)
    Path("train.jsonl").write_bytes(jsonl(chat_lines(12)))
    replace = {"http://127.0.0.1:8080/v1": f"{user_api}/v1", "<USER_API_KEY>": user.key,
               '"tiny-llama-demo"': f'"{tiny_model}"'}  # fmt: skip
    names = await run_example("README.md#1", replace)
    client = OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)
    try:
        job = client.fine_tuning.jobs.retrieve(names["job"].id)
        assert job.training_file == names["training"].id
        hyperparameters = job.method.supervised.hyperparameters  # type: ignore[union-attr]
        assert hyperparameters.n_epochs == 3 and hyperparameters.model_extra["lora_r"] == 8, hyperparameters
        messages = {event.message for event in client.fine_tuning.jobs.list_events(job.id)}
        printed = capsys.readouterr().out.splitlines()
        assert printed and set(printed) <= messages, printed
    finally:
        client.fine_tuning.jobs.cancel(names["job"].id)  # nothing left for a later test's GPU worker


async def test_training_progress_example(tiny_model_path: Path, tmp_path: Path) -> None:
    """docs/training.md: the recipe driven from Python, its progress in any ProgressCallback."""
    training_file = write_chat_file(tmp_path / "train.jsonl", 8)
    config: TrainingConfig = make_config(tmp_path, tiny_model_path, training_file)
    progress = RecordingProgress()
    await run_example("docs/training.md#1", given={"config": config, "my_callback": progress})
    assert progress.of("started") and progress.of("step") and progress.of("done")
    assert (config.output_dir / "adapter" / "adapter_config.json").is_file()
