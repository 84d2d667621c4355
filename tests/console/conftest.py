"""The web console in a real browser: Debian's Chromium driven by Playwright, against the harness' user API.

One browser for the whole session; each test gets a fresh context (empty session storage, no cookies).
Every page's script errors, failed CSP checks and console errors are collected and fail the test.
Screenshots go to pytest's temp dir, or to docs/console/ with CONSOLE_SCREENSHOTS=1 (how the docs' are made).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
# Chromium logs every non-2xx fetch as a console error; those answers are the API's, not script errors.
NETWORK_LOG = re.compile(r"^Failed to load resource: the server responded with a status of \d+")

expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium (scripts/install-chromium.sh)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SHOTS
    return tmp_path_factory.mktemp("console-shots")


@dataclass
class Console:
    """One browser tab on the console, with what its scripts complained about."""

    page: Page
    base_url: str
    shots: Path
    script_errors: list[str] = field(default_factory=list)
    request_urls: list[str] = field(default_factory=list)

    async def open(self, route: str = "") -> None:
        await self.page.goto(f"{self.base_url}/{route}")

    async def sign_in(self, key: str) -> None:
        await self.open("#/signin")
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("heading", level=1, name="Jobs")).to_be_visible()

    async def screenshot(self, name: str, phone: bool = True) -> None:
        """`name`.png at 1280 px and, unless told otherwise, `name`-phone.png at a phone's width.

        Each page shot is also checked: every form control has a label, and no page scrolls sideways.
        """
        await self.settle()
        await self.assert_controls_labelled()
        await self.assert_fits_width(DESKTOP["width"])
        await self.page.screenshot(path=self.shots / f"{name}.png", full_page=True)
        if phone:
            await self.page.set_viewport_size(PHONE)
            await self.settle()
            await self.assert_fits_width(PHONE["width"])
            await self.page.screenshot(path=self.shots / f"{name}-phone.png", full_page=True)
            await self.page.set_viewport_size(DESKTOP)
            await self.settle()

    async def settle(self) -> None:
        """Two animation frames: charts and layout have drawn what they hold."""
        two_frames = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
        await self.page.evaluate(two_frames)

    async def assert_fits_width(self, width: int) -> None:
        """The page itself never scrolls sideways (wide tables scroll inside their own box)."""
        scroll_width = await self.page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_width <= width, f"the page is {scroll_width} px wide at a {width} px viewport"

    async def assert_controls_labelled(self) -> None:
        unlabelled = await self.page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((control) => !control.labels?.length && !control.getAttribute('aria-label'))
                 .map((control) => control.outerHTML)"""
        )
        assert not unlabelled, unlabelled

    def assert_no_script_errors(self) -> None:
        assert not self.script_errors, self.script_errors


@asynccontextmanager
async def _tab(browser: Browser, base_url: str, shots: Path) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True, locale="en-GB", timezone_id="UTC")
    page = await context.new_page()
    tab = Console(page, base_url, shots)

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error" and not NETWORK_LOG.match(message.text):
            tab.script_errors.append(f"console.error: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.script_errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: tab.request_urls.append(request.url))
    try:
        yield tab
        tab.assert_no_script_errors()
    finally:
        await context.close()


@pytest.fixture
async def console(browser: Browser, user_api: str, shots_dir: Path) -> AsyncIterator[Console]:
    """A tab on the harness' user API, which has no inference engine."""
    async with _tab(browser, user_api, shots_dir) as tab:
        yield tab


@pytest.fixture
async def served_console(browser: Browser, serving, shots_dir: Path) -> AsyncIterator[Console]:  # type: ignore[no-untyped-def]
    """A tab on the user API that serves the tiny model on vLLM (tests/serving.py): the playground's models."""
    async with _tab(browser, serving.user_api, shots_dir) as tab:
        yield tab
