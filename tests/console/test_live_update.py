"""Two browsers on one tenant stay consistent: a change saved in one arrives in the other over
its configurationChanged subscription; fields the other user has not touched show the new
value, and a field they have touched keeps their unsaved value and says who changed it in which
version. When the tenant's EHR changes elsewhere, unsaved edits made for the other EHR are not
carried into the new EHR's forms (the page names their sections); a page open on a tenant with
no settings yet learns of its first version too."""

from __future__ import annotations

import asyncio

from playwright.async_api import Dialog, expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    choose_ehr,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.documents import SELECT_CERNER
from tests.processes import GatewayProcess


async def test_a_change_saved_elsewhere_arrives_live(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="live")
    ana = token(gateway, tenant="live", roles=("editor",), subject="ana")
    bo = token(gateway, tenant="live", roles=("editor",), subject="bo")
    async with browser() as chromium:
        _, watching = await new_page(chromium)
        _, saving = await new_page(chromium)
        await sign_in(watching, gateway, ana, tenant=None)
        await sign_in(saving, gateway, bo, tenant=None)
        await expect(watching.get_by_text("live updates: on")).to_be_visible()

        # Ana has typed into one field and not saved.
        client_id = setting(watching, "Header Settings", "Epic Client ID")
        await client_id.fill("ana-client")

        await setting(saving, "Header Settings", "Epic Client ID").fill("bo-client")
        await setting(saving, "Header Settings", "Epic User ID").fill("TALKDESK")
        await save(saving, "Header Settings")
        await expect(saving.get_by_text("Saved: version 2.")).to_be_visible()

        # Untouched: updated in place, without reloading.
        await expect(setting(watching, "Header Settings", "Epic User ID")).to_have_value("TALKDESK")
        await expect(watching.get_by_text("Version 2, last changed by bo")).to_be_visible()
        # Touched: kept, and flagged.
        await expect(client_id).to_have_value("ana-client")
        note = watching.locator("#f-headers-epicClientId-note")
        await expect(note).to_have_text("Changed by bo in version 2; your unsaved value is kept.")
        assert "f-headers-epicClientId-note" in (
            await client_id.get_attribute("aria-describedby") or ""
        )
        assert watching.errors == saving.errors == []  # type: ignore[attr-defined]

        # Ana's edit is still unsaved: leaving the page asks first.
        asked: asyncio.Queue[str] = asyncio.Queue()

        async def answer(dialog: Dialog) -> None:
            await asked.put(dialog.type)
            await dialog.accept()

        watching.on("dialog", answer)
        await watching.close(run_before_unload=True)
        assert await asyncio.wait_for(asked.get(), 10) == "beforeunload"


CERNER_FHIR = """
query CernerFhir($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    provider
    fhir { ... on CernerFhirSettings { dayRangeForTemporalSearches } }
  }
}
"""


async def test_epic_edits_are_not_carried_into_cerner_when_the_ehr_changes_elsewhere(
    gateway: GatewayProcess,
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="switch-ehr")
    integrator = token(gateway, tenant="switch-ehr", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, integrator, tenant=None)
        await expect(page.get_by_text("live updates: on")).to_be_visible()
        days = "Day range to be used for temporal searches"
        await setting(page, "FHIR Settings", days).fill("45")
        await setting(page, "FHIR Settings", "Direct Reschedule use case").check()

        # A colleague switches the tenant to Cerner.
        await asyncio.to_thread(gateway.graphql, SELECT_CERNER, tenantId="switch-ehr")
        await expect(page.get_by_label("EHR provider")).to_have_value("CERNER")
        await expect(setting(page, "FHIR Settings", "Bypass appointment read")).to_be_visible()

        # The page says which edits were for Epic; none of them is in Cerner's form.
        switched = page.get_by_role("alert").filter(has_text="The EHR provider is now Cerner")
        await expect(switched).to_contain_text("unsaved edits in FHIR Settings were for Epic")
        await expect(setting(page, "FHIR Settings", days)).to_have_value("")
        save_fhir = page.get_by_role("button", name="Save FHIR Settings", exact=True)
        await expect(save_fhir).to_be_disabled()
        stored = (await asyncio.to_thread(gateway.graphql, CERNER_FHIR, tenantId="switch-ehr"))[
            "data"
        ]["integrationSettings"]
        assert stored["fhir"]["dayRangeForTemporalSearches"] is None
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_page_open_on_a_new_tenant_shows_the_ehr_chosen_elsewhere(
    gateway: GatewayProcess,
) -> None:
    ana = token(gateway, tenant="fresh-pair", roles=("editor",), subject="ana")
    bo = token(gateway, tenant="fresh-pair", roles=("editor",), subject="bo")
    async with browser() as chromium:
        _, waiting = await new_page(chromium)
        _, choosing = await new_page(chromium)
        await sign_in(waiting, gateway, ana, tenant=None)
        await sign_in(choosing, gateway, bo, tenant=None)
        await expect(
            waiting.get_by_text("No settings yet: start by choosing the EHR.")
        ).to_be_visible()
        await expect(waiting.get_by_text("live updates: on")).to_be_visible()

        await choose_ehr(choosing, "EPIC")
        await expect(choosing.get_by_text("Saved: version 1.")).to_be_visible()

        await expect(waiting.get_by_label("EHR provider")).to_have_value("EPIC")
        await expect(waiting.get_by_text("Version 1, last changed by bo")).to_be_visible()
        assert waiting.errors == choosing.errors == []  # type: ignore[attr-defined]
