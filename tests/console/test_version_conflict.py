"""Two people edit one tenant, and one of them has not seen the other's save (her live connection
is down, as on a flaky network). Her save is refused with a version conflict: the console says
so, shows what the other person changed meanwhile (settingsDiff) and keeps her edits;
re-applying them on the new version saves them, and both changes are kept."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.processes import GatewayProcess

SETTINGS = """
query Settings($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    fhir { ... on EpicFhirSettings { useBatch urlPrefix } }
    ehr { ... on EpicSettings { context } }
  }
}
"""


async def test_a_conflict_shows_what_changed_and_the_edits_are_reapplied(
    gateway: GatewayProcess,
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="conflict")
    ana = token(gateway, tenant="conflict", roles=("editor",), subject="ana")
    bo = token(gateway, tenant="conflict", roles=("editor",), subject="bo")
    async with browser() as chromium:
        cut_off, first = await new_page(chromium)
        # Ana's WebSocket reaches nothing: no change arrives live in her page.
        await cut_off.route_web_socket("**/graphql", lambda socket: None)
        _, second = await new_page(chromium)
        await sign_in(first, gateway, ana, tenant=None)
        await sign_in(second, gateway, bo, tenant=None)

        # Ana starts editing on version 1 ...
        await setting(first, "FHIR Settings", "The url_prefix schema").fill("/FHIR/R4")
        # ... while Bo saves another section.
        await setting(second, "Epic Settings", "The context schema").fill("Scheduling")
        await save(second, "Epic Settings")
        await expect(second.get_by_text("Saved: version 2.")).to_be_visible()

        await save(first, "FHIR Settings")
        conflict = first.get_by_role("alert").filter(has_text="Someone else saved")
        await expect(conflict).to_contain_text("now version 2")
        await expect(conflict).to_contain_text("The context schema: not set → Scheduling")
        await expect(setting(first, "FHIR Settings", "The url_prefix schema")).to_have_value(
            "/FHIR/R4"
        )

        await first.get_by_role("button", name="Re-apply my edits on version 2").click()
        await expect(first.get_by_text("Saved: version 3.")).to_be_visible()
        await expect(conflict).to_have_count(0)
        # Bo's change shows in Ana's page too.
        await expect(setting(first, "Epic Settings", "The context schema")).to_have_value(
            "Scheduling"
        )

    stored = await asyncio.to_thread(gateway.graphql, SETTINGS, tenantId="conflict")
    settings = stored["data"]["integrationSettings"]
    assert settings["version"] == 3
    assert settings["fhir"]["urlPrefix"] == "/FHIR/R4"
    assert settings["ehr"]["context"] == "Scheduling"
