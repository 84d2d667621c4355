"""A rejected upload shows every bad line the API found: line, code, field and message."""

from __future__ import annotations

import json

import httpx
from playwright.async_api import expect

from tests.console.conftest import Console
from tests.jobs.datasets import chat_lines

GOOD = [json.dumps(line) for line in chat_lines(3)]
BAD_LINES = [
    GOOD[0],
    '{"messages": [{"role": "user", "content": "unterminated"',
    json.dumps({"messages": []}),
    json.dumps({"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
    GOOD[1],
    json.dumps([1, 2, 3]),
    json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),
    GOOD[2],
]
CONTENT = ("\n".join(BAD_LINES) + "\n").encode()


async def test_rejected_file_lists_each_bad_line(console: Console, make_user) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("rejected@acme.example.com")
    expected = httpx.post(f"{console.base_url}/v1/files", headers=user.headers, data={"purpose": "fine-tune"},
                          files={"file": ("broken.jsonl", CONTENT)}).json()["error"]  # fmt: skip
    problems = expected["details"]["errors"]
    assert [problem["line"] for problem in problems] == [2, 3, 4, 6, 7]

    page = console.page
    await console.sign_in(user.key)
    await page.get_by_role("link", name="Files").click()
    await page.get_by_label("Dataset (JSONL)").set_input_files(
        files=[{"name": "broken.jsonl", "mimeType": "application/jsonl", "buffer": CONTENT}]
    )
    await page.get_by_role("button", name="Upload").click()
    report = page.get_by_role("alert")
    await expect(report.get_by_role("heading")).to_have_text(f"broken.jsonl was rejected: {len(problems)} problems")
    rows = report.get_by_role("table", name="Problems of broken.jsonl").locator("tbody tr")
    await expect(rows).to_have_count(len(problems))
    for index, problem in enumerate(problems):
        cells = [str(problem["line"]), problem["code"], problem["param"] or "—", problem["message"]]
        await expect(rows.nth(index).locator("td")).to_have_text(cells)
    await expect(page.get_by_text("No files yet.")).to_be_visible()  # nothing was stored
    await console.screenshot("files-rejected")
    console.assert_no_script_errors()
