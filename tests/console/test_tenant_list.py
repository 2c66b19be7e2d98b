"""Staff pick the tenant to configure from the directory (the `tenants` query): each row with
its id, EHR and readiness, filtered by EHR and readiness on the gateway and searched by id; a
row opens that tenant's page. A tenant id typed into the Tenant field is checked against the
gateway's rule when Open is pressed, and opening another tenant with unsaved edits asks first,
as Sign out does."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    new_page,
    paste_token,
    setting,
    sign_in,
    token,
)
from tests.processes import GatewayProcess

SELECT_ATHENA = """
mutation SelectAthena($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: ATHENA) { __typename }
}
"""


async def test_staff_filter_the_directory_and_open_a_tenant(gateway: GatewayProcess) -> None:
    for tenant in ("dir-epic-north", "dir-epic-south"):
        await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    await asyncio.to_thread(gateway.graphql, SELECT_ATHENA, tenantId="dir-athena")
    staff = token(gateway, tenant="*", roles=("viewer",), subject="ana")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await paste_token(page, gateway, staff)

        directory = page.get_by_role("region", name="Directory")
        row = directory.get_by_role("row", name="dir-athena")
        await expect(row).to_contain_text("Athena")
        await expect(row).to_contain_text("Not ready")
        await expect(directory.get_by_role("row", name="dir-epic-north")).to_contain_text("Epic")

        await directory.get_by_label("EHR").select_option("EPIC")
        await expect(directory.get_by_role("row", name="dir-athena")).to_have_count(0)
        await expect(directory.get_by_role("row", name="dir-epic-south")).to_be_visible()

        await directory.get_by_label("Search by id").fill("north")
        await expect(directory.get_by_role("row", name="dir-epic-south")).to_have_count(0)
        await directory.get_by_role("button", name="Configure dir-epic-north").click()

        await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()
        await expect(page.get_by_label("Tenant")).to_have_value("dir-epic-north")
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_opening_another_tenant_asks_before_dropping_unsaved_edits(
    gateway: GatewayProcess,
) -> None:
    for tenant in ("switch-stmarys", "switch-mercy"):
        await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    staff = token(gateway, tenant="*", roles=("editor",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, staff, tenant="switch-stmarys")
        client_id = setting(page, "Header Settings", "Epic Client ID")
        await client_id.fill("8f3c2a1e-5b7d-4c9e-a1f2-3d4e5f6a7b8c")
        await page.get_by_label("Tenant").fill("switch-mercy")
        await page.get_by_role("button", name="Open").click()

        # The page names the section with unsaved edits and asks, as Sign out does.
        warning = page.get_by_role("region", name="Open switch-mercy with unsaved edits?")
        await expect(warning.get_by_role("alert")).to_have_text(
            "Unsaved edits in Header Settings will be lost when you open switch-mercy."
        )
        await warning.get_by_role("button", name="Stay on switch-stmarys").click()
        await expect(warning).to_have_count(0)
        await expect(client_id).to_have_value("8f3c2a1e-5b7d-4c9e-a1f2-3d4e5f6a7b8c")

        await page.get_by_role("button", name="Open").click()
        await page.get_by_role("button", name="Open switch-mercy and discard edits").click()
        await expect(page.get_by_role("main", name="Settings of switch-mercy")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_malformed_tenant_id_is_refused_as_the_tenant_when_open_is_pressed(
    gateway: GatewayProcess,
) -> None:
    staff = token(gateway, tenant="*", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await paste_token(page, gateway, staff)
        tenant = page.get_by_label("Tenant")
        await tenant.fill("St Mary's")
        await page.get_by_role("button", name="Open").click()

        refusal = page.get_by_text("Must be 1-64 letters, digits")
        await expect(refusal).to_have_text(
            "Tenant id “St Mary's” refused: Must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
        await expect(tenant).to_have_attribute("aria-invalid", "true")
        # No page is opened for it: nothing there could be saved.
        await expect(page.get_by_role("heading", name="Provider Settings")).to_have_count(0)

        await tenant.fill("st-marys")
        await page.get_by_role("button", name="Open").click()
        await expect(page.get_by_role("heading", name="Provider Settings")).to_be_visible()
        await expect(refusal).to_have_count(0)
        await expect(tenant).not_to_have_attribute("aria-invalid", "true")
        assert page.errors == []  # type: ignore[attr-defined]
