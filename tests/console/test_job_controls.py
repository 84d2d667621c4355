"""Pause, resume and cancel from the job page, on a job that stays queued (no GPU worker takes it)."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.console.conftest import Console
from tests.jobs.datasets import chat_lines, jsonl


async def test_pause_resume_cancel_from_the_job_page(  # type: ignore[no-untyped-def]
    console: Console, user_api, cpu_worker, no_gpu_worker, tiny_model, make_user
) -> None:
    user = await make_user("controls@acme.example.com")
    with httpx.Client(base_url=user_api, headers=user.headers, timeout=60) as api:
        training = api.post("/v1/files", data={"purpose": "fine-tune"},
                            files={"file": ("train.jsonl", jsonl(chat_lines(10)))}).json()  # fmt: skip
        job = api.post("/v1/fine_tuning/jobs", json={"model": tiny_model, "training_file": training["id"]}).json()
    page = console.page
    await console.sign_in(user.key)
    await console.open(f"#/jobs/{job['id']}")
    status = page.locator(".panel").first.locator(".badge")
    await expect(status).to_have_text("queued", timeout=120_000)
    pause, resume, cancel = (page.get_by_role("button", name=name) for name in ("Pause", "Resume", "Cancel job"))
    await expect(resume).to_be_disabled()

    await pause.click()
    await expect(status).to_have_text("paused")
    await expect(page.get_by_role("cell", name="Job paused")).to_be_visible()  # from the live event stream
    await expect(pause).to_be_disabled()
    await resume.click()
    await expect(status).to_have_text("queued")

    page.once("dialog", lambda dialog: dialog.dismiss())
    await cancel.click()
    await expect(status).to_have_text("queued")  # dismissed: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    await cancel.click()
    await expect(status).to_have_text("cancelled")
    await expect(page.locator(".live-state")).to_have_text("finished")
    await expect(cancel).to_be_disabled()
    console.assert_no_script_errors()
