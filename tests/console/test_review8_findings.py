"""Findings of a review that used the console as a hospital's integration engineer would, on
each EHR: one test per finding, each failing until the console (or the gateway) is fixed. Each
docstring says what the engineer did and what went wrong."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import (
    browser,
    choose_ehr,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.documents import SELECT_EPIC
from tests.processes import GatewayProcess


async def test_opening_another_tenant_asks_before_dropping_unsaved_edits(
    gateway: GatewayProcess,
) -> None:
    """Staff engineer types St Mary's Epic Client ID into Header Settings, then types the next
    hospital's id into Tenant and presses Open before saving. The page opens the other tenant at
    once and the typed Client ID is gone without a word (Sign out asks first; Open does not), and
    it is not there on coming back either."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="switch-stmarys")
    staff = token(gateway, tenant="*", roles=("editor",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, staff, tenant="switch-stmarys")
        client_id = setting(page, "Header Settings", "Epic Client ID")
        await client_id.fill("8f3c2a1e-5b7d-4c9e-a1f2-3d4e5f6a7b8c")
        await page.get_by_label("Tenant").fill("switch-mercy")
        await page.get_by_role("button", name="Open").click()
        # Either the page names the section with unsaved edits and asks, as Sign out does ...
        warning = page.get_by_role("alert").filter(has_text="Header Settings")
        await expect(warning).to_be_visible(timeout=5_000)


HEADERS = "Headers added to every request to the EHR's API"


async def test_a_refused_custom_header_names_its_entry(gateway: GatewayProcess) -> None:
    """On an Athena tenant the engineer adds three custom headers; the second's value has an
    accent (Hôpital Mercy). The save is refused with "Must be printable ASCII ..." under the
    whole list, and every entry is outlined as invalid, the good first header too: nothing says
    that it is entry 2's value (the gateway's error path has the index; the page drops it)."""
    integrator = token(gateway, tenant="headers-mercy", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, integrator, tenant=None)
        await choose_ehr(page, "ATHENA")
        section = page.get_by_role("region", name="Header Settings", exact=True)
        entries = [("X-Facility-Id", "MERCY-STL-01"), ("X-Hospital-Name", "Hôpital Mercy")]
        for index, (name, value) in enumerate(entries, start=1):
            await section.get_by_role("button", name="Add entry").click()
            await section.get_by_label(f"{HEADERS}, entry {index}, name").fill(name)
            await section.get_by_label(f"{HEADERS}, entry {index}, value").fill(value)
        await save(page, "Header Settings")
        await expect(section.get_by_role("status")).to_have_text(
            "Not saved: see the messages beside the fields."
        )
        await expect(section.get_by_label(f"{HEADERS}, entry 1, value")).not_to_have_attribute(
            "aria-invalid", "true"
        )
