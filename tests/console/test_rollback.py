"""Rolling back in the console: the integrator picks a version in the history, is told what the
rollback will change before anything is stored, confirms, and the page shows the new version
(rollbackSettings with expectedVersion: a version the page had not seen is a conflict, not an
overwrite). An editor, who may not roll back, sees the missing permission instead of a button."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import (
    SAVE_URL_PREFIX,
    browser,
    console_page,
    epic_tenant,
    new_page,
    open_view,
    setting,
    sign_in,
    token,
)
from tests.processes import GatewayProcess

STORED = """
query Stored($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version updatedBy
    fhir { ... on EpicFhirSettings { urlPrefix } }
  }
}
"""


async def test_a_rollback_says_what_it_changes_then_stores_a_new_version(
    gateway: GatewayProcess,
) -> None:
    await epic_tenant(gateway, "rolled", "/FHIR/R4", "/FHIR/DSTU2")
    async with console_page(gateway, "rolled", "integrator", "ines", view="History") as page:
        await page.get_by_role("button", name="Roll back to version 2").click()
        confirm = page.get_by_role("alertdialog", name="Roll back to version 2?")
        await expect(confirm).to_contain_text(
            "This stores version 4 with the settings of version 2."
        )
        await expect(confirm).to_contain_text("The url_prefix schema: /FHIR/DSTU2 → /FHIR/R4")
        # Asking stored nothing.
        before = await asyncio.to_thread(gateway.graphql, STORED, tenantId="rolled")
        assert before["data"]["integrationSettings"]["version"] == 3

        await confirm.get_by_role("button", name="Roll back", exact=True).click()
        await expect(
            page.get_by_text("Rolled back: version 4 has the settings of version 2.")
        ).to_be_visible()
        newest = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Version 4 (current)")
        )
        await expect(newest).to_contain_text("By ines")
        await expect(newest).to_contain_text("The url_prefix schema: /FHIR/DSTU2 → /FHIR/R4")

        await open_view(page, "Settings")
        await expect(page.get_by_text("Version 4, last changed by ines")).to_be_visible()
        await expect(setting(page, "FHIR Settings", "The url_prefix schema")).to_have_value(
            "/FHIR/R4"
        )
        assert page.errors == []  # type: ignore[attr-defined]

    stored = await asyncio.to_thread(gateway.graphql, STORED, tenantId="rolled")
    assert stored["data"]["integrationSettings"] == {
        "version": 4,
        "updatedBy": "ines",
        "fhir": {"urlPrefix": "/FHIR/R4"},
    }


async def test_a_version_stored_meanwhile_is_not_overwritten(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "raced", "/FHIR/R4")
    integrator = token(gateway, tenant="raced", roles=("integrator",), subject="ines")
    async with browser() as chromium:
        context, page = await new_page(chromium)
        # No live updates reach this page: it cannot know of the save below.
        await context.route_web_socket("**/graphql", lambda socket: None)
        await sign_in(page, gateway, integrator, tenant=None)
        await open_view(page, "History")
        await page.get_by_role("button", name="Roll back to version 1").click()
        confirm = page.get_by_role("alertdialog", name="Roll back to version 1?")
        await expect(confirm).to_contain_text("The url_prefix schema: /FHIR/R4 → not set")

        await asyncio.to_thread(
            gateway.graphql, SAVE_URL_PREFIX, tenantId="raced", prefix="/FHIR/X"
        )
        await confirm.get_by_role("button", name="Roll back", exact=True).click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "Not rolled back: the settings changed meanwhile (now version 3)."
        )
        await expect(page.get_by_role("heading", name="Version 3 (current)")).to_be_visible()

    stored = await asyncio.to_thread(gateway.graphql, STORED, tenantId="raced")
    assert stored["data"]["integrationSettings"]["fhir"] == {"urlPrefix": "/FHIR/X"}


async def test_an_editor_is_told_why_there_is_no_rollback(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "not-rolled", "/R4")
    async with console_page(gateway, "not-rolled", "editor", "ed", view="History") as page:
        await expect(page.get_by_role("heading", name="Version 2 (current)")).to_be_visible()
        await expect(
            page.get_by_text(
                "Rolling back to a version needs the settings:rollback permission "
                "(roles: integrator)."
            )
        ).to_be_visible()
        await expect(page.get_by_role("button", name="Roll back", exact=False)).to_have_count(0)
