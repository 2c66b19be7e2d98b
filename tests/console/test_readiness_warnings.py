"""A readiness warning in the console: an Epic connection whose base URL misses Epic's
api/FHIR/<version> is named under the checklist, in words an engineer can act on, and its link
takes the keyboard to the base URL's field."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import console_page, setting
from tests.documents import SELECT_EPIC
from tests.processes import GatewayProcess

# The Epic instance's root, as a go-live sheet often gives it, without api/FHIR/R4.
CONNECT_INSTANCE_ROOT = """
mutation ConnectInstanceRoot($tenantId: ID!) {
  createExternalGateway(
    tenantId: $tenantId
    connection: {
      name: "Epic", baseUrl: "https://fhir.hospital.example/interconnect-prd/",
      environment: PRODUCTION
    }
  ) { __typename }
}
"""


async def test_an_epic_base_url_without_epics_fhir_path_is_a_warning_leading_to_its_field(
    gateway: GatewayProcess,
) -> None:
    tenant = "fhir-path"
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    await asyncio.to_thread(gateway.graphql, CONNECT_INSTANCE_ROOT, tenantId=tenant)

    async with console_page(gateway, tenant, "integrator", "ines") as page:
        readiness = page.get_by_role("complementary", name="Readiness")
        link = readiness.get_by_role("link", name="The EHR's API base URL")
        await expect(link).to_be_visible()
        await expect(readiness).to_contain_text("Epic serves FHIR at the instance's api/FHIR")

        await link.click()

        await expect(setting(page, "External Gateway", "The EHR's API base URL")).to_be_focused()
        assert page.errors == []  # type: ignore[attr-defined]
