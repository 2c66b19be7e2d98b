"""The console on a phone-sized window (360x740): the sign-in page, the header with its tenant
form, the directory, the Epic page with its integration actions, and the history, audit log and
export-and-import views all fit the window's width, so nothing is reached only by scrolling
sideways."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from tests.console.console import (
    CONNECT,
    browser,
    epic_tenant,
    new_page,
    open_view,
    paste_token,
    token,
)
from tests.processes import GatewayProcess

WIDTH, HEIGHT = 360, 740


async def overflow(page: Page) -> int:
    """How far the page reaches past the window's right edge, in CSS pixels."""
    width: int = await page.evaluate(
        "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    return width


async def test_every_view_fits_a_360_pixel_window(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "narrow-clinic", "/FHIR/R4", "/FHIR/R4/api")
    await asyncio.to_thread(gateway.graphql, CONNECT, tenantId="narrow-clinic")
    staff = token(gateway, tenant="*", roles=("integrator",), subject="ines")
    async with browser() as chromium:
        _, page = await new_page(chromium, width=WIDTH, height=HEIGHT)
        await page.goto(gateway.url + "/console")
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert await overflow(page) <= 0, "the sign-in page"

        await paste_token(page, gateway, staff)
        directory = page.get_by_role("region", name="Directory")
        await expect(directory.get_by_role("row", name="narrow-clinic")).to_be_visible()
        assert await overflow(page) <= 0, "the header and the directory"

        await directory.get_by_role("button", name="Configure narrow-clinic").click()
        await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()
        await expect(page.get_by_role("button", name="Test the connection")).to_be_visible()
        assert await overflow(page) <= 0, "the Epic settings and their actions"

        await open_view(page, "History")
        await expect(page.get_by_role("heading", name="Version 4 (current)")).to_be_visible()
        assert await overflow(page) <= 0, "the history"

        await open_view(page, "Audit log")
        await expect(page.get_by_text("Saved as version 4")).to_be_visible()
        assert await overflow(page) <= 0, "the audit log"

        await open_view(page, "Export and import")
        await expect(page.get_by_role("button", name="Export settings")).to_be_visible()
        assert await overflow(page) <= 0, "export and import"
        assert page.errors == []  # type: ignore[attr-defined]
