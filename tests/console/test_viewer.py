"""Roles in the console: a viewer sees every section read-only, with no way to save; an editor
edits the ordinary settings, while the settings that decide whom the gateway trusts or calls are
read-only for them, saying which permission changing them needs (instead of failing on save)."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import SELECT_EPIC, browser, new_page, setting, sign_in, token
from tests.processes import GatewayProcess

SAVE_CONTEXT = """
mutation SaveContext($tenantId: ID!) {
  updateEhrSettings(tenantId: $tenantId, input: { epic: { context: "Scheduling" } }) { __typename }
}
"""


async def test_a_viewer_sees_everything_read_only(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="viewed")
    await asyncio.to_thread(gateway.graphql, SAVE_CONTEXT, tenantId="viewed")
    viewer = token(gateway, tenant="viewed", roles=("viewer",), subject="vic")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, viewer, tenant=None)
        context = setting(page, "Epic Settings", "The context schema")
        await expect(context).to_have_value("Scheduling")
        await expect(context).not_to_be_editable()
        await expect(setting(page, "FHIR Settings", "Use Batch flag")).to_be_disabled()
        await expect(setting(page, "Provider Settings", "EHR provider")).to_be_disabled()
        await expect(page.get_by_role("button", name="Save", exact=False)).to_have_count(0)
        # Every one of the seven sections says why it cannot be saved.
        await expect(
            page.get_by_text("Read-only: saving this section needs the settings:edit permission.")
        ).to_have_count(5)
        await expect(
            page.get_by_text(
                "Read-only: saving this section needs the integration:edit permission."
            )
        ).to_have_count(2)
        assert page.errors == []  # type: ignore[attr-defined]


async def test_an_editor_cannot_change_what_needs_an_integrator(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="edited")
    editor = token(gateway, tenant="edited", roles=("editor",), subject="ed")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, editor, tenant=None)
        await expect(setting(page, "Epic Settings", "The context schema")).to_be_editable()
        jku = setting(page, "Epic Settings", "JKU Server URL")
        await expect(jku).not_to_be_editable()
        await expect(page.locator("#f-ehr-jkuServerUrl-help")).to_contain_text(
            "Read-only: changing it needs the integration:edit permission."
        )
        # Sections an editor may not save at all say so instead of offering a button.
        await expect(page.get_by_role("button", name="Save External Gateway")).to_have_count(0)
        await expect(page.get_by_role("button", name="Save Epic OAuth Settings")).to_have_count(0)
        await expect(page.get_by_role("button", name="Save Epic Settings")).to_be_visible()
