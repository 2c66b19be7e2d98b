"""Findings of a review that used the console as a hospital's integration engineer would, on
each EHR: one test per finding, each failing until the console (or the gateway) is fixed. Each
docstring says what the engineer did and what went wrong."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import expect

from tests.console.console import (
    browser,
    choose_ehr,
    console_page,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.documents import SELECT_CERNER, SELECT_ELLKAY, SELECT_EPIC
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
        # The page names the section with unsaved edits and asks, as Sign out does.
        warning = page.get_by_role("alert").filter(has_text="Header Settings")
        await expect(warning).to_be_visible()


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


async def test_the_token_exchange_test_with_typed_oauth_settings_says_to_save_them(
    gateway: GatewayProcess,
) -> None:
    """The engineer types St Mary's OAuth client id and token URL into Epic OAuth Settings and
    presses Test the token exchange before saving. The outcome reads "Not tested: Set the Epic
    Client ID and the OAuth Token URL first" beside the two fields she has just filled: the test
    runs on the saved settings, and nothing says that the typed ones are not saved yet."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="oauth-typed")
    integrator = token(gateway, tenant="oauth-typed", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, integrator, tenant=None)
        section = page.get_by_role("region", name="Epic OAuth Settings", exact=True)
        await setting(page, "Epic OAuth Settings", "The Epic Client ID of the OAuth client").fill(
            "a1b2c3d4-5e6f-7081-92a3-b4c5d6e7f809"
        )
        await setting(
            page, "Epic OAuth Settings", "The OAuth Token URL of Epic's authorization server"
        ).fill("https://fhir.stmarys-health.org/interconnect-fhir-oauth/oauth2/token")
        await section.get_by_role("button", name="Test the token exchange").click()
        outcome = section.get_by_text("Not tested:")
        await expect(outcome).to_be_visible()
        await expect(outcome).to_contain_text("save", ignore_case=True)


CERNER_FHIR = """
query CernerFhir($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    provider
    fhir { ... on CernerFhirSettings { dayRangeForTemporalSearches } }
  }
}
"""


async def test_epic_edits_are_not_saved_into_cerner_after_the_provider_changes_elsewhere(
    gateway: GatewayProcess,
) -> None:
    """The engineer sets Epic's FHIR day range to 45 (unsaved). Meanwhile a colleague switches
    the tenant to Cerner. The page turns into the Cerner page with no word of the switch, its
    Cerner FHIR Settings showing 45 as an unsaved edit; Save FHIR Settings then stores 45 in the
    Cerner settings, a value nobody typed for Cerner (and an Epic-only edit made with it is
    dropped without a word)."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="switch-ehr")
    integrator = token(gateway, tenant="switch-ehr", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, integrator, tenant=None)
        await expect(page.get_by_text("live updates: on")).to_be_visible()
        days = "Day range to be used for temporal searches"
        await setting(page, "FHIR Settings", days).fill("45")
        await setting(page, "FHIR Settings", "Direct Reschedule use case").check()
        await asyncio.to_thread(gateway.graphql, SELECT_CERNER, tenantId="switch-ehr")
        await expect(page.get_by_label("EHR provider")).to_have_value("CERNER")
        await expect(setting(page, "FHIR Settings", "Bypass appointment read")).to_be_visible()
        save_fhir = page.get_by_role("button", name="Save FHIR Settings", exact=True)
        if await save_fhir.is_enabled():
            await save_fhir.click()
            await expect(
                page.get_by_role("region", name="FHIR Settings", exact=True).get_by_role("status")
            ).to_have_text(re.compile(r"^(Saved|Not saved)"))
        stored = (await asyncio.to_thread(gateway.graphql, CERNER_FHIR, tenantId="switch-ehr"))[
            "data"
        ]["integrationSettings"]
        assert stored["fhir"]["dayRangeForTemporalSearches"] is None


async def test_a_malformed_tenant_id_is_refused_as_the_tenant_not_as_the_ehr_provider(
    gateway: GatewayProcess,
) -> None:
    """Staff engineer types the hospital's name as the new tenant's id ("St Mary's") and presses
    Open: the page opens an empty tenant ("No settings yet: start by choosing the EHR"). Choosing
    Epic and saving is then refused with "Must be 1-64 letters, digits, ..." beside the EHR
    provider drop-down, as if Epic were the wrong value; nothing says the tenant id is."""
    staff = token(gateway, tenant="*", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, staff, tenant="St Mary's")
        provider = page.get_by_label("EHR provider")
        await provider.select_option("EPIC")
        await page.get_by_role("button", name="Save Provider Settings").click()
        refusal = page.get_by_text("Must be 1-64 letters, digits")
        await expect(refusal).to_be_visible()
        await expect(provider).not_to_have_attribute("aria-invalid", "true")
        await expect(refusal).to_contain_text("tenant", ignore_case=True)


async def test_a_number_typed_with_its_unit_is_explained_beside_its_field(
    gateway: GatewayProcess,
) -> None:
    """The engineer types "30 days" into Day range to be used for temporal searches and saves.
    The refusal is a GraphQL message at the bottom of the section ("Not saved: Variable
    '$input' has an invalid value at 'epic.dayRangeForTemporalSearches': expected Int; ..."):
    it names the API path, not the setting, the field is not marked invalid, and the section's
    status still says "Unsaved changes" (a negative number, by contrast, is explained beside the
    field)."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="days-unit")
    editor = token(gateway, tenant="days-unit", roles=("editor",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, editor, tenant=None)
        days = setting(page, "FHIR Settings", "Day range to be used for temporal searches")
        await days.fill("30 days")
        await save(page, "FHIR Settings")
        section = page.get_by_role("region", name="FHIR Settings", exact=True)
        await expect(section.get_by_text("Not saved")).to_be_visible()
        await expect(days).to_have_attribute("aria-invalid", "true")


async def test_choosing_ellkay_is_not_shown_as_a_change_of_oauth_signing_keys(
    gateway: GatewayProcess,
) -> None:
    """The engineer chooses Ellkay for a new tenant and opens History (and the audit log, and an
    import's preview): version 1 lists "OAuth signing keys: not set → empty" beside "EHR
    provider", and the audit log counts 2 settings changed. Ellkay has no OAuth signing keys;
    the engineer is left wondering what touched the keys (the gateway's settingsDiff reports
    providers.ELLKAY.signingKeys null → [])."""
    await asyncio.to_thread(gateway.graphql, SELECT_ELLKAY, tenantId="ellkay-keys")
    async with console_page(gateway, "ellkay-keys", "viewer", "eng", view="History") as page:
        await expect(page.get_by_text("EHR provider: not set → ELLKAY")).to_be_visible()
        await expect(page.get_by_text("OAuth signing keys")).to_have_count(0)


MAP_TOPICS = """
mutation MapTopics($tenantId: ID!) {
  updateEhrSettings(
    tenantId: $tenantId
    input: {
      epic: {
        quickCrmTopicMapping: [
          { name: "Appointments", value: "1" }
          { name: "إعادة جدولة الموعد", value: "5" }
        ]
      }
    }
  ) { __typename }
}
"""

# Where the value "5" and the Arabic name of the entry mapped to it are drawn, in the text of
# the history's change that holds them.
PLACES = """() => {
  const item = [...document.querySelectorAll("li")].find((li) => li.textContent.includes("الموعد"));
  const texts = [];
  const walker = document.createTreeWalker(item, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push(node);
  const where = (node, index, length) => {
    const range = document.createRange();
    range.setStart(node, index);
    range.setEnd(node, index + length);
    return range.getBoundingClientRect().left;
  };
  const named = texts.find((node) => node.data.includes("إعادة"));
  const valued = texts.filter((node) => node.data.includes("5")).pop();
  return {
    name: where(named, named.data.indexOf("إعادة"), 5),
    value: where(valued, valued.data.lastIndexOf("5"), 1),
  };
}"""


async def test_an_arabic_topic_name_reads_name_then_value_in_history(
    gateway: GatewayProcess,
) -> None:
    """A Quick CRM Topic Mapping entry named in Arabic (إعادة جدولة الموعد, "reschedule the
    appointment") maps to intent 5. History shows "Appointments = 1, 5 = إعادة جدولة الموعد":
    the Arabic run pulls "= 5" to its left, so the second entry reads as value = name, the
    other way round from the first (names and values are not isolated from the sentence)."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="topics-rtl")
    await asyncio.to_thread(gateway.graphql, MAP_TOPICS, tenantId="topics-rtl")
    async with console_page(gateway, "topics-rtl", "viewer", "eng", view="History") as page:
        await expect(page.get_by_text("Appointments = 1")).to_be_visible()
        places = await page.evaluate(PLACES)
        # In a left-to-right page "name = value": the value is drawn right of its name.
        assert places["value"] > places["name"], places


async def test_a_page_open_on_a_new_tenant_shows_the_ehr_chosen_elsewhere(
    gateway: GatewayProcess,
) -> None:
    """Two engineers open the same new tenant (no settings yet). One chooses Epic. The other's
    page stays on "No settings yet: start by choosing the EHR", readiness "Not ready: 1
    missing" and "live updates: off", however long it waits: a page opened before the tenant's
    first version never subscribes, so it shows a stale tenant until reloaded (and her own choice
    of EHR then meets a version conflict)."""
    editor = token(gateway, tenant="fresh-pair", roles=("editor",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, editor, tenant=None)
        empty = page.get_by_text("No settings yet: start by choosing the EHR.")
        await expect(empty).to_be_visible()
        await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="fresh-pair")
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")


async def test_the_readiness_link_of_the_jku_key_set_leads_to_its_discovery(
    gateway: GatewayProcess,
) -> None:
    """On a new Epic tenant the readiness checklist lists "JKU key set, discovered from the JKU
    Server URL" as missing. The engineer follows the link with the keyboard: it lands on "The
    vip_flag_type schema", the first field of Epic Settings, far above the JKU key set's
    Discover the JKU; every other missing setting's link lands on its own field."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="jku-link")
    async with console_page(gateway, "jku-link", "integrator", "eng") as page:
        checklist = page.get_by_role("complementary", name="Readiness")
        link = checklist.get_by_role("link", name="JKU key set, discovered from the JKU Server URL")
        await link.focus()
        await page.keyboard.press("Enter")
        await expect(setting(page, "Epic Settings", "The vip_flag_type schema")).not_to_be_focused()
        jku = page.get_by_role("group", name="JKU key set", exact=True)
        await expect(jku.locator(":focus")).to_have_count(1)
