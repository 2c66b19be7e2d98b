"""Configuring an Epic tenant in the console, from nothing to ready: the readiness checklist
beside the form lists what is missing, each a link that focuses its field (or, for what an
action produces, the action: Discover the JKU for the JKU key set); the person fills the
spec's mandatory settings section by section (each save sends that section only) and the list
shrinks, until the JKU key set is discovered and the tenant is ready."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    choose_ehr,
    console_page,
    new_page,
    save,
    screenshot,
    setting,
    sign_in,
    token,
)
from tests.epic_issuer import serve_issuer
from tests.processes import GatewayProcess


def checklist(page: Page) -> object:
    return page.get_by_role("complementary", name="Readiness")


async def missing(page: Page) -> list[str]:
    links = checklist(page).get_by_role("link")  # type: ignore[attr-defined]
    return [text.strip() for text in await links.all_inner_texts()]


async def test_an_epic_tenant_from_nothing_to_ready(loopback_gateway: GatewayProcess) -> None:
    integrator = token(loopback_gateway, tenant="ready", roles=("integrator",), subject="ines")
    async with serve_issuer() as issuer, browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, loopback_gateway, integrator, tenant=None)
        ready_state = checklist(page).get_by_role("status")  # type: ignore[attr-defined]
        await choose_ehr(page, "EPIC")
        await expect(ready_state).to_contain_text("Not ready")
        assert "Epic Client ID" in await missing(page)

        # A missing setting's link takes the keyboard to its field.
        await checklist(page).get_by_role("link", name="The context schema").click()  # type: ignore[attr-defined]
        await expect(setting(page, "Epic Settings", "The context schema")).to_be_focused()

        await setting(page, "Header Settings", "Epic Client ID").fill("0oa1b2c3")
        await setting(page, "Header Settings", "Epic User ID").fill("TALKDESK")
        await setting(page, "Header Settings", "Epic User ID Type").fill("External")
        await save(page, "Header Settings")
        await expect(checklist(page).get_by_role("link", name="Epic User ID Type")).to_have_count(0)  # type: ignore[attr-defined]

        await setting(page, "FHIR Settings", "The mrn identifier").fill(
            "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"
        )
        await setting(page, "FHIR Settings", "Use Batch flag").check()
        await save(page, "FHIR Settings")

        await setting(page, "External Gateway", "A name for the connection").fill("Epic")
        await setting(page, "External Gateway", "The EHR's API base URL").fill(
            "https://fhir.hospital.example/interconnect-prd/api/FHIR/R4/"
        )
        await setting(
            page, "External Gateway", "Whether the EHR environment is production or non-production"
        ).select_option("NON_PRODUCTION")
        await save(page, "External Gateway")
        await expect(
            page.get_by_role("button", name="Copy the external gateway id")
        ).to_be_visible()

        await setting(page, "Epic Settings", "The context schema").fill("Scheduling")
        await setting(page, "Epic Settings", "JKU Server URL").fill(issuer.jwks_url)
        await setting(page, "Epic Settings", "JWT Issuer URL").fill(issuer.url)
        await save(page, "Epic Settings")
        await expect(page.get_by_text("Saved: version 5.")).to_be_visible()

        # What remains is the key set an integrator's discovery records.
        await expect(checklist(page).get_by_role("link")).to_have_text(  # type: ignore[attr-defined]
            ["JKU key set, discovered from the JKU Server URL"]
        )
        # The integrator discovers it beside the Epic settings, from the JWT Issuer URL saved.
        epic = page.get_by_role("region", name="Epic Settings", exact=True)
        await epic.get_by_role("button", name="Discover the JKU").click()
        await expect(epic.get_by_text("Done: version 6.")).to_be_visible()
        await expect(epic.get_by_text(f"Keys k1 from {issuer.jwks_url}")).to_be_visible()
        await expect(page.get_by_text("Version 6, last changed by ines")).to_be_visible()
        await expect(ready_state).to_have_text(
            "Ready: every setting the integration needs is there."
        )
        await expect(checklist(page).get_by_role("link")).to_have_count(0)  # type: ignore[attr-defined]
        await screenshot(page, "epic-ready")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_the_readiness_link_of_the_jku_key_set_leads_to_its_discovery(
    gateway: GatewayProcess,
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="jku-link")
    async with console_page(gateway, "jku-link", "integrator", "eng") as page:
        link = checklist(page).get_by_role(  # type: ignore[attr-defined]
            "link", name="JKU key set, discovered from the JKU Server URL"
        )
        await link.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("button", name="Discover the JKU")).to_be_focused()
        await expect(setting(page, "Epic Settings", "The vip_flag_type schema")).not_to_be_focused()
