"""One trained job seen through the console: upload, estimate, launch, live curves, checkpoints, models, files.

A single real job on the tiny model serves every page that needs one (training is the slow part).
"""

from __future__ import annotations

import asyncio
import io
import re
import tarfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.console.conftest import Console
from tests.dataset_intelligence.test_dataset_intelligence import TOPICS, conversation
from tests.jobs.datasets import chat_lines, jsonl

TRAINING = [*chat_lines(40), *(conversation(q, a) for q, a in TOPICS)]
TRAINING += [TRAINING[41], TRAINING[44]]  # lines 42 and 45 again, as lines 49 and 50
VALIDATION = [*chat_lines(6, offset=200), TRAINING[42], TRAINING[45]]  # two lines the training file holds too
HYPERPARAMETERS = {"n_epochs": 3, "batch_size": 1, "lora_r": 4, "eval_steps": 5, "learning_rate": 0.003}


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.4)


async def upload(page: Page, name: str, lines: list[dict[str, object]]) -> None:
    await page.get_by_label("Dataset (JSONL)").set_input_files(
        files=[{"name": name, "mimeType": "application/jsonl", "buffer": jsonl(lines)}]
    )
    await page.get_by_role("button", name="Upload").click()
    await expect(page.get_by_text(f"{name} was accepted: {len(lines)} examples.")).to_be_visible()


async def chart_points(page: Page) -> int:
    return int(await page.locator("#loss-chart").get_attribute("data-points") or 0)


def tar_names(payload: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        return archive.getnames()


async def download_of(page: Page, button_name: str, folder: Path) -> bytes:
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name=button_name).first.click()
    download = await waiting.value
    target = folder / download.suggested_filename
    await download.save_as(target)
    return target.read_bytes()


@pytest.mark.slow
async def test_a_job_from_upload_to_model_through_the_console(  # type: ignore[no-untyped-def]
    served_console: Console, serving, cpu_worker, gpu_worker, tiny_model, make_user, tmp_path
) -> None:
    console = served_console  # the user API that serves the tiny model on vLLM, for the playground at the end
    # The engine loads first: while it compiles on these 2 cores, the CPU worker's estimate RPC waited past 120 s.
    await asyncio.to_thread(serving.wait_engine)
    user = await make_user("console-flow@acme.example.com")
    api = httpx.Client(base_url=serving.user_api, headers=user.headers, timeout=120)
    page = console.page
    await console.sign_in(user.key)

    # Files: two uploads through the page.
    await page.get_by_role("link", name="Files").click()
    await upload(page, "train.jsonl", TRAINING)
    await upload(page, "valid.jsonl", VALIDATION)
    files = {item["filename"]: item["id"] for item in api.get("/v1/files").json()["data"]}
    await expect(page.get_by_role("link", name="train.jsonl")).to_be_visible()

    # New job: the estimate comes first, and only then can the job be created.
    await page.get_by_role("link", name="Jobs").click()
    await page.get_by_role("link", name="New job").click()
    await page.get_by_label("Training file").select_option(files["train.jsonl"])
    await page.get_by_label("Validation file").select_option(files["valid.jsonl"])
    await page.get_by_label("Epochs").fill(str(HYPERPARAMETERS["n_epochs"]))
    await page.get_by_label("Batch size").fill(str(HYPERPARAMETERS["batch_size"]))
    await page.get_by_text("Advanced hyperparameters").click()
    await page.get_by_label("LoRA rank").fill(str(HYPERPARAMETERS["lora_r"]))
    await page.get_by_label("Evaluate every N steps").fill(str(HYPERPARAMETERS["eval_steps"]))
    await page.get_by_label("Learning rate (absolute)").fill(str(HYPERPARAMETERS["learning_rate"]))
    await page.get_by_label("Suffix").fill("console")
    create = page.get_by_role("button", name="Create job")
    await expect(create).to_be_disabled()
    await page.get_by_role("button", name="Estimate").click()
    method = {"type": "supervised", "supervised": {"hyperparameters": HYPERPARAMETERS}}
    body = {"model": tiny_model, "training_file": files["train.jsonl"], "validation_file": files["valid.jsonl"],
            "suffix": "console", "method": method}  # fmt: skip
    estimate = api.post("/v1/fine_tuning/jobs/estimate", json=body).json()
    await expect(page.locator("dt:text-is('Steps') + dd")).to_have_text(str(estimate["total_steps"]))
    await expect(create).to_be_enabled()
    await console.screenshot("new-job")
    await create.click()
    await expect(page).to_have_url(re.compile(r"#/jobs/ftjob-\w+$"))
    job_id = page.url.rsplit("/", 1)[1]

    # The jobs list follows the job without a reload: validating -> queued -> running.
    await page.get_by_role("link", name="Jobs").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=job_id))
    await expect(row.locator(".badge")).to_have_text("running", timeout=240_000)
    await console.screenshot("jobs")

    # The job page: its chart gains points while the job runs, from the live event stream.
    await row.get_by_role("link", name=job_id).click()
    await expect(page.locator(".live-state")).to_have_text("live")
    first = await eventually(lambda: chart_points(page), "a first point on the chart")
    assert api.get(f"/v1/fine_tuning/jobs/{job_id}").json()["status"] == "running"
    await eventually(lambda: _more_points(page, first), "more points while the job runs", timeout=120)
    await console.screenshot("job-running", phone=False)

    await expect(page.locator(".live-state")).to_have_text("finished", timeout=300_000)
    await expect(page.locator(".panel").first.locator(".badge")).to_have_text("succeeded")
    events = api.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 1000}).json()["data"]
    values = [key for event in events if event["type"] == "metrics"
              for key in ("train_loss", "valid_loss") if event["data"].get(key) is not None]  # fmt: skip
    assert await chart_points(page) == len(values)
    assert any(key == "valid_loss" for key in values)
    checkpoints = api.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json()["data"]
    await expect(page.get_by_role("button", name=f"Download step {checkpoints[0]['step_number']}")).to_be_visible()
    await console.screenshot("job")
    archive = await download_of(page, f"Download step {checkpoints[0]['step_number']}", tmp_path)
    assert any(name.endswith("adapter_model.safetensors") for name in tar_names(archive))

    # Models: the fine-tuned model, its adapter's files and a download.
    model = api.get(f"/v1/fine_tuning/jobs/{job_id}").json()["fine_tuned_model"]
    await page.get_by_role("link", name="Models").click()
    await expect(page.get_by_role("heading", name=model)).to_be_visible()
    await page.get_by_role("button", name="List adapter files").click()
    await expect(page.get_by_role("button", name="Download adapter_config.json")).to_be_visible()
    await console.screenshot("models")
    adapter = await download_of(page, "Download adapter (.tar)", tmp_path)
    assert any(name.endswith("adapter_config.json") for name in tar_names(adapter))

    # The training file: its report, duplicates, the overlap with the validation file, semantic search.
    await page.get_by_role("link", name="Files").click()
    await page.get_by_role("link", name="train.jsonl").click()
    await expect(page.get_by_text(f"Every line is valid: {len(TRAINING)} chat examples")).to_be_visible()
    duplicates = api.get(f"/v1/files/{files['train.jsonl']}/duplicates").json()
    assert duplicates["index_status"] == "indexed"
    exact_groups = page.get_by_role("table", name="Exact duplicates").get_by_role("row")
    await expect(exact_groups).to_have_count(1 + len(duplicates["report"]["exact"]))
    await expect(exact_groups.filter(has_text="42, 49")).to_contain_text("What is the capital of France?")
    await expect(exact_groups.filter(has_text="45, 50")).to_be_visible()
    overlap = api.get(f"/v1/fine_tuning/jobs/{job_id}").json()["estimate"]["validation_overlap"]
    assert overlap["count"] >= 2
    await expect(page.get_by_text(f"{overlap['count']} of {len(VALIDATION)} validation examples")).to_be_visible()
    await page.get_by_label("Search the examples by meaning").fill("capital city of France")
    await page.get_by_role("button", name="Search").click()
    hits = page.get_by_role("table", name="Examples nearest to “capital city of France”")
    await expect(hits.get_by_role("row").nth(1)).to_contain_text("Paris")
    await console.screenshot("file")

    # The playground offers every model the key may use, the fine-tuned one first chosen, and streams its answer
    # from vLLM: the same answer the API gives for the same greedy request.
    await page.get_by_role("link", name="Playground").click()
    await expect(page.get_by_label("Model", exact=True)).to_have_value(model)
    question = TRAINING[0]["messages"][1]["content"]  # a training question, asked as it was trained
    await page.get_by_label("System prompt").fill("You answer briefly.")
    await page.get_by_label("Temperature").fill("0")
    await page.get_by_label("Max tokens").fill("12")
    await page.get_by_label("Message").fill(question)
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_text(re.compile(r"^Finished \((stop|length)\)\.$"))).to_be_visible(timeout=120_000)
    shown = await page.locator(".message-assistant[data-done='true'] .content").text_content()
    messages = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": question}]
    request = {"model": model, "messages": messages, "temperature": 0, "max_tokens": 12}
    answer = api.post("/v1/chat/completions", json=request).json()["choices"][0]["message"]["content"]
    assert shown == answer and answer
    await console.screenshot("playground")
    api.close()
    console.assert_no_script_errors()


async def _more_points(page: Page, than: int) -> bool:
    return await chart_points(page) > than
