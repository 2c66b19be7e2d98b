"""Promotion in the console: export tenant A's settings as a file (made in the page), import it
into tenant B, first as a preview of what would change, B's readiness afterwards and the secrets
B must still set (an export carries none), then for real; B's page shows the imported values.
A role without settings:import is told so instead of being offered the import."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from playwright.async_api import expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    console_page,
    epic_tenant,
    new_page,
    open_view,
    screenshot,
    setting,
    sign_in,
    token,
)
from tests.documents import EXPORT_SETTINGS
from tests.processes import GatewayProcess

CONFIGURE_SANDBOX = """
mutation Configure($tenantId: ID!) {
  updateFhirSettings(tenantId: $tenantId, input: { epic: { urlPrefix: "/FHIR/R4" } }) {
    __typename
  }
  updateEhrSettings(
    tenantId: $tenantId
    input: {
      epic: { context: "Scheduling", soapUsername: "refills", soapPassword: "sandbox-only-7c1e" }
    }
  ) { __typename }
}
"""

STORED = """
query Stored($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { urlPrefix } }
    ehr { ... on EpicSettings { context soapUsername soapPassword { isSet } } }
  }
}
"""


async def test_export_a_then_preview_and_import_into_b(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="promo-sandbox")
    await asyncio.to_thread(gateway.graphql, CONFIGURE_SANDBOX, tenantId="promo-sandbox")
    staff = token(gateway, tenant="*", roles=("integrator",), subject="ines")
    async with browser() as chromium:
        _, page = await new_page(chromium, accept_downloads=True)
        await sign_in(page, gateway, staff, tenant="promo-sandbox")
        await open_view(page, "Export and import")
        await page.get_by_role("button", name="Export settings").click()
        async with page.expect_download() as downloading:
            await page.get_by_role("link", name="Download promo-sandbox-settings.json").click()
        download = await downloading.value
        exported = tmp_path / download.suggested_filename
        await download.save_as(exported)
        assert "sandbox-only-7c1e" not in exported.read_text()
        assert json.loads(exported.read_text())

        await page.get_by_label("Tenant").fill("promo-production")
        await page.get_by_role("button", name="Open").click()
        await expect(
            page.get_by_role("heading", name="Import into promo-production")
        ).to_be_visible()
        await page.get_by_label("Settings file").set_input_files(exported)
        await page.get_by_role("button", name="Preview import").click()

        preview = page.get_by_role("region", name="Import preview")
        await expect(preview).to_contain_text("EHR provider: not set → EPIC")
        await expect(preview).to_contain_text("The url_prefix schema: not set → /FHIR/R4")
        await expect(preview).to_contain_text("The context schema: not set → Scheduling")
        await expect(preview).to_contain_text("Not ready")
        await expect(preview).to_contain_text("External gateway connection: no external gateway")
        secrets = preview.get_by_role("list").filter(has_text="SOAP Password")
        await expect(secrets).to_be_visible()
        # The pasted document says when it was exported: masked, as a clock would be.
        document = page.get_by_label("Settings document (JSON)")
        await screenshot(page, "import-preview", centre=preview, hide=[document])
        # The preview stored nothing.
        before = await asyncio.to_thread(gateway.graphql, STORED, tenantId="promo-production")
        assert before["data"]["integrationSettings"] is None

        await preview.get_by_role("button", name="Import into promo-production").click()
        await expect(
            page.get_by_text("Imported: promo-production is now at version 1.")
        ).to_be_visible()
        await open_view(page, "Settings")
        await expect(setting(page, "FHIR Settings", "The url_prefix schema")).to_have_value(
            "/FHIR/R4"
        )
        await expect(setting(page, "Epic Settings", "The context schema")).to_have_value(
            "Scheduling"
        )
        assert page.errors == []  # type: ignore[attr-defined]

    stored = await asyncio.to_thread(gateway.graphql, STORED, tenantId="promo-production")
    assert stored["data"]["integrationSettings"] == {
        "version": 1,
        "fhir": {"urlPrefix": "/FHIR/R4"},
        "ehr": {
            "context": "Scheduling",
            "soapUsername": "refills",
            "soapPassword": {"isSet": False},
        },
    }


async def test_what_is_not_a_document_is_refused_in_words(gateway: GatewayProcess) -> None:
    async with console_page(
        gateway, "promo-typed", "integrator", "ines", view="Export and import"
    ) as page:
        await page.get_by_label("Settings document (JSON)").fill("{ not json")
        await page.get_by_role("button", name="Preview import").click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "This is not a settings document: it is not valid JSON"
        )
        await expect(page.get_by_label("Settings document (JSON)")).to_have_attribute(
            "aria-invalid", "true"
        )


async def test_an_editor_may_export_but_is_told_why_not_import(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "promo-edited")
    async with console_page(gateway, "promo-edited", "editor", "ed", "Export and import") as page:
        await expect(page.get_by_role("button", name="Export settings")).to_be_visible()
        await expect(
            page.get_by_text(
                "Importing settings needs the settings:import permission (roles: integrator)."
            )
        ).to_be_visible()
        await expect(page.get_by_role("button", name="Preview import")).to_have_count(0)


async def test_a_version_stored_after_the_preview_is_not_overwritten(
    gateway: GatewayProcess,
) -> None:
    await epic_tenant(gateway, "promo-source", "/FHIR/R4")
    exported = await asyncio.to_thread(gateway.graphql, EXPORT_SETTINGS, tenantId="promo-source")
    await epic_tenant(gateway, "promo-raced")
    async with console_page(
        gateway, "promo-raced", "integrator", "ines", "Export and import"
    ) as page:
        await page.get_by_label("Settings document (JSON)").fill(
            json.dumps(exported["data"]["exportSettings"])
        )
        await page.get_by_role("button", name="Preview import").click()
        preview = page.get_by_role("region", name="Import preview")
        await expect(preview).to_contain_text("The url_prefix schema: not set → /FHIR/R4")

        # Someone saves the tenant between the preview and the confirmation.
        await epic_tenant(gateway, "promo-raced", "/FHIR/X")
        await preview.get_by_role("button", name="Import into promo-raced").click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "Not imported: the settings of promo-raced changed since you opened them"
        )

    stored = await asyncio.to_thread(gateway.graphql, STORED, tenantId="promo-raced")
    assert stored["data"]["integrationSettings"]["fhir"] == {"urlPrefix": "/FHIR/X"}
