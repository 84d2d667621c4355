"""Signing in: a wrong key is refused with the API's own message, a right one is kept in the tab only."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from app.console.routes import CONTENT_SECURITY_POLICY
from tests.console.conftest import Console


async def test_wrong_key_refused_then_sign_in_keeps_the_key_in_the_tab_only(console: Console, make_user) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("console@acme.example.com")
    page = console.page
    answer = await page.goto(f"{console.base_url}/")
    assert answer is not None and answer.status == 200
    headers = await answer.all_headers()
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    await expect(page).to_have_url(f"{console.base_url}/#/signin")

    wrong = "sk-ft-this-key-does-not-exist"
    refused = httpx.get(f"{console.base_url}/v1/models", headers={"Authorization": f"Bearer {wrong}"})
    assert refused.status_code == 401
    await page.get_by_label("API key").fill(wrong)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text(refused.json()["error"]["message"])
    assert await page.evaluate("() => sessionStorage.length") == 0
    await expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    await console.screenshot("sign-in-refused")

    # Keyboard only: the key field has the focus, Enter submits.
    await page.get_by_label("API key").fill(user.key)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1, name="Jobs")).to_be_visible()
    await expect(page.get_by_text("No jobs yet.")).to_be_visible()
    assert await page.evaluate("() => Object.values(sessionStorage)") == [user.key]
    assert await page.evaluate("() => localStorage.length") == 0
    assert await page.context.cookies() == []
    assert not [url for url in console.request_urls if user.key in url]

    # The keyboard reaches everything in reading order.
    await page.locator(".skip-link").focus()
    order = [await page.evaluate("() => document.activeElement.textContent.trim()")]
    for _ in range(8):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("() => document.activeElement.textContent.trim()"))
    assert order == ["Skip to content", "Fine-tuning console", "Jobs", "Files", "Models", "Evals", "Playground",
                     "Sign out", "New job"]  # fmt: skip
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1, name="New fine-tuning job")).to_be_visible()

    # A reload keeps the tab signed in; signing out forgets the key.
    await page.reload()
    await expect(page.get_by_role("heading", level=1, name="New fine-tuning job")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    await expect(page.get_by_role("status")).to_contain_text("Signed out")
    assert await page.evaluate("() => sessionStorage.length") == 0
    console.assert_no_script_errors()


def test_static_files_carry_the_policy_and_the_api_keeps_its_own(user_api: str) -> None:
    with httpx.Client(base_url=user_api) as client:
        for path in ("/console/js/main.js", "/console/console.css", "/console/vendor/uplot/uPlot.esm.js"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/console/js/main.js").headers["content-type"].startswith("text/javascript")
        api = client.get("/v1/models")
        assert api.status_code == 401 and "content-security-policy" not in api.headers
        missing = client.get("/console/nothing-here.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
