"""Staff pick the tenant to configure from the directory (the `tenants` query): each row with
its id, EHR and readiness, filtered by EHR and readiness on the gateway and searched by id; a
row opens that tenant's page."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import SELECT_EPIC, browser, new_page, paste_token, token
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
