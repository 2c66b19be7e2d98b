"""Debian's Chromium, driven by Playwright (installed by scripts/test; Playwright never downloads
a browser of its own here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

# Debian's package (scripts/test installs it); without it the launch fails and says so.
CHROMIUM = "/usr/bin/chromium"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # The sandbox needs user namespaces, which containers (CI's included) often lack.
            args=["--no-sandbox"],
        )
        try:
            yield browser
        finally:
            await browser.close()
