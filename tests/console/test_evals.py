"""The evals pages: the list, an eval's criteria and runs (followed live), a run's items with their grades and the
failed-only filter, reached through the run's `report_url`, and a job's comparison with its base model.

The data is made with the official SDK; the runs are jsonl runs (the samples are given) graded by the real evals
worker. Text from the API is only ever text: an answer crafted as HTML is shown as it was written.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from openai import OpenAI
from playwright.async_api import Locator, expect
from sqlalchemy import update

from tests.console.conftest import Console
from tests.evals.test_evals_api import wait_run
from tests.jobs.datasets import chat_lines, jsonl

CRAFTED = "<img src=x onerror=alert(1)>"
ITEM_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
CRITERIA = [
    {"type": "string_check", "name": "exact answer", "input": "{{sample.output_text}}", "reference": "{{item.answer}}",
     "operation": "eq"},
]  # fmt: skip
FINE_TUNED_ANSWERS = [  # (question, reference, what the model said): two pass, two fail
    ("Capital of France?", "Paris", "Paris"),
    ("Colour of a clear sky?", "blue", "blue"),
    ("Opposite of hot?", "cold", CRAFTED),
    ("Two plus two?", "4", "four"),
]
BASE_ANSWERS = [(question, answer, "Paris") for question, answer, _ in FINE_TUNED_ANSWERS]  # one pass


def jsonl_source(rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    content = [{"item": {"question": q, "answer": a}, "sample": {"output_text": said}} for q, a, said in rows]
    return {"type": "jsonl", "source": {"type": "file_content", "content": content}}


async def cell_texts(rows: Locator) -> list[list[str]]:
    return [await rows.nth(index).locator("td").all_text_contents() for index in range(await rows.count())]


async def wait_status(client: OpenAI, job_id: str, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status != status:
        assert time.monotonic() < deadline, job.status
        await asyncio.sleep(0.5)


@pytest.mark.timeout(900)
async def test_eval_run_and_comparison_pages(  # type: ignore[no-untyped-def]
    served_console: Console, serving, evals_worker, no_gpu_worker, tiny_model, make_user, sessionmaker
) -> None:
    console = served_console  # the user API the evals worker's runs are made on
    page = console.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    user = await make_user("evals-console@acme.example.com")
    client = OpenAI(base_url=f"{serving.user_api}/v1", api_key=user.key, max_retries=0)
    created = client.evals.create(
        name=f"quiz {CRAFTED}",
        data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=CRITERIA,  # type: ignore[arg-type]
    )

    # The list, then the eval with its criteria and its run, which stays queued while the worker is away.
    await console.sign_in(user.key)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Evals").click()
    evals = page.get_by_role("table", name="Evals, newest first").locator("tbody tr")
    await expect(evals).to_have_count(1)
    assert (await cell_texts(evals))[0][:3] == [f"quiz {CRAFTED}", created.id, "1"]
    await console.screenshot("evals")
    await evals.get_by_role("link", name=f"quiz {CRAFTED}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"quiz {CRAFTED}")
    criteria = page.get_by_role("table", name="Testing criteria").locator("tbody tr")
    await expect(criteria.locator("td")).to_have_text(
        ["exact answer", "string_check", "{{sample.output_text}} eq {{item.answer}}"]
    )
    await expect(page.get_by_text("No runs yet.")).to_be_visible()

    evals_worker.stop()
    try:
        run = client.evals.runs.create(
            created.id, name="fine-tuned answers", data_source=jsonl_source(FINE_TUNED_ANSWERS)
        )
        assert run.report_url == f"{console.base_url}/#/evals/{created.id}/runs/{run.id}"
        await page.reload()
        runs = page.get_by_role("table", name="Runs, newest first").locator("tbody tr")
        await expect(runs.locator("td").nth(1)).to_have_text("queued")
        assert (await cell_texts(runs))[0][:8] == ["fine-tuned answers", "queued", "samples given", "0", "0", "0", "0",
                                                   "0/4"]  # fmt: skip
        await expect(page.locator(".live-state")).to_have_text("live: following the runs")
    finally:
        evals_worker.ensure_running()
    # Followed without a reload until the run is over, and then no longer.
    await expect(runs.locator("td").nth(1)).to_have_text("completed", timeout=240_000)
    assert (await cell_texts(runs))[0][1:8] == ["completed", "samples given", "2", "2", "0", "4", "4/4"]
    await expect(page.locator(".live-state")).to_have_text("")
    await console.screenshot("eval")

    # The run's page, from its report_url: counts, results per criterion, every item's grade and output.
    await page.goto(run.report_url)
    await expect(page.get_by_role("heading", level=1)).to_have_text("fine-tuned answers")
    await expect(page.get_by_role("region", name="Results").locator("dd")).to_have_text(["2", "2", "0", "4"])
    await expect(page.get_by_role("table", name="Results per testing criterion").locator("td")).to_have_text(
        ["exact answer", "2", "2", "50 %"]
    )
    items = page.get_by_role("table", name="Output items", exact=True).locator("tbody tr")
    await expect(items).to_have_count(4)
    columns = ["Item", "Status", "exact answer", "Output", "Input"]
    header = page.get_by_role("table", name="Output items", exact=True).locator("thead th")
    await expect(header).to_have_text(columns)
    shown = {row[0]: row[1:4] for row in await cell_texts(items)}
    assert shown == {"0": ["pass", "1 · pass", "Paris"], "1": ["pass", "1 · pass", "blue"],
                     "2": ["fail", "0 · fail", CRAFTED], "3": ["fail", "0 · fail", "four"]}  # fmt: skip
    await expect(page.get_by_text("Showing 4 of 4 items.")).to_be_visible()

    # The failed ones alone: the API's own filter (status=fail), and back.
    await page.get_by_label("Failed items only").check()
    failed = page.get_by_role("table", name="Failed output items").locator("tbody tr")
    await expect(failed).to_have_count(2)
    assert sorted(row[3] for row in await cell_texts(failed)) == sorted([CRAFTED, "four"])
    await expect(page.get_by_text("Showing 2 of 2 failed items.")).to_be_visible()
    assert any("/output_items?" in url and "status=fail" in url for url in console.request_urls)
    await expect(failed.get_by_role("cell", name=CRAFTED, exact=True)).to_be_visible()
    await expect(page.locator("main img")).to_have_count(0)  # the crafted answer is text, not an element
    await console.screenshot("eval-run")
    await page.get_by_label("Failed items only").uncheck()
    await expect(items).to_have_count(4)

    # A job's comparison with its base: written by the evals worker after a real training (tests/evals), here
    # written on a queued job from two real runs, so the page's reading of it is what is checked.
    base_run = client.evals.runs.create(created.id, name="base answers", data_source=jsonl_source(BASE_ANSWERS))
    base_done = wait_run(client, created.id, base_run.id)
    assert base_done.result_counts.passed == 1  # type: ignore[attr-defined]
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(10))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=tiny_model, training_file=training.id)
    await wait_status(client, job.id, "queued")
    tuned_model = f"ft:{tiny_model}:acme:quiz:{job.id}"
    comparison = {
        "status": "completed",
        "eval_id": created.id,
        "fine_tuned_run_id": run.id,
        "base_run_id": base_run.id,
        "fine_tuned": {"model": tuned_model, "run_id": run.id, "status": "completed", "passed": 2, "total": 4,
                       "pass_rate": 0.5},
        "base": {"model": tiny_model, "run_id": base_run.id, "status": "completed", "passed": 1, "total": 4,
                 "pass_rate": 0.25},
        "passed": True,
        "validation_loss": {"first_step": 2, "first": 2.5, "last_step": 10, "last": 1.25},
    }  # fmt: skip
    from app.jobs.tables import Job

    async with sessionmaker() as session:
        await session.execute(update(Job).where(Job.id == job.id).values(comparison=comparison))
        await session.commit()
    assert (client.fine_tuning.jobs.retrieve(job.id).model_extra or {})["comparison"] == comparison

    await console.open(f"#/jobs/{job.id}")
    panel = page.get_by_role("region", name="Fine-tune vs base")
    await expect(panel.get_by_role("status")).to_have_text("Passed: the fine-tune passed 2/4 items, its base 1/4.")
    sides = await cell_texts(panel.get_by_role("table").locator("tbody tr"))
    assert [row[:5] for row in sides] == [["Fine-tuned", tuned_model, "completed", "2/4", "50 %"],
                                          ["Base", tiny_model, "completed", "1/4", "25 %"]]  # fmt: skip
    await expect(panel.get_by_text("Validation loss 2.5 at step 2, 1.25 at step 10.")).to_be_visible()
    await panel.get_by_role("link", name="Open the run").nth(1).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("base answers")
    await page.go_back()
    await page.get_by_role("region", name="Fine-tune vs base").get_by_role("link", name="Open the eval").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"quiz {CRAFTED}")
    await expect(page.get_by_role("table", name="Runs, newest first").locator("tbody tr")).to_have_count(2)

    assert dialogs == []
    console.assert_no_script_errors()
