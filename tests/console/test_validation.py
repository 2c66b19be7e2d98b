"""A value the gateway refuses is shown beside its field, in words: the input is marked
aria-invalid and tied to the message by aria-describedby, the user's input is kept, and nothing
is saved; a rule between two settings is reported at the one the user changed. A number typed
with its unit is explained beside its field before anything is sent."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    new_page,
    save,
    screenshot,
    setting,
    sign_in,
    token,
)
from tests.documents import READ_VERSION
from tests.processes import GatewayProcess


async def test_refused_values_are_shown_beside_their_fields(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="invalid")
    editor = token(gateway, tenant="invalid", roles=("editor",), subject="eve")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, editor, tenant=None)
        mrn = setting(page, "FHIR Settings", "The mrn identifier")
        await mrn.fill("not an identifier")
        batch = setting(page, "FHIR Settings", "Use Batch flag")
        await batch.check()
        await save(page, "FHIR Settings")

        await expect(mrn).to_have_attribute("aria-invalid", "true")
        message = page.locator("#f-fhir-mrnIdentifier-error")
        await expect(message).to_contain_text("Must be an ASCII URI")
        described = (await mrn.get_attribute("aria-describedby") or "").split()
        assert described[0] == "f-fhir-mrnIdentifier-error"
        # The user's input is kept; the field that was fine is not marked.
        await expect(mrn).to_have_value("not an identifier")
        await expect(batch).to_be_checked()
        await expect(batch).not_to_have_attribute("aria-invalid", "true")
        await expect(
            page.get_by_text("Not saved: see the messages beside the fields.")
        ).to_be_visible()
        await screenshot(page, "validation-error", centre=mrn)

        # A rule between two settings: at the one the user changed, naming the other.
        days = setting(page, "Epic Settings", "Epic Maximum Slot Search Date Range In Days")
        await days.fill("120")
        await save(page, "Epic Settings")
        await expect(days).to_have_attribute("aria-invalid", "true")
        await expect(
            page.locator("#f-ehr-epicMaximumSlotSearchDateRangeInDays-error")
        ).to_contain_text("Max Allowed Slot Search Date Range Days")

        # Corrected, it saves, and the marks go.
        await mrn.fill("urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14")
        await save(page, "FHIR Settings")
        await expect(page.get_by_text("Saved: version 2.")).to_be_visible()
        await expect(mrn).not_to_have_attribute("aria-invalid", "true")
        await expect(mrn).to_have_value("urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14")
    stored = await asyncio.to_thread(gateway.graphql, READ_VERSION, tenantId="invalid")
    assert stored["data"]["integrationSettings"]["version"] == 2  # the refused saves stored nothing


async def test_a_number_typed_with_its_unit_is_explained_beside_its_field(
    gateway: GatewayProcess,
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="days-unit")
    editor = token(gateway, tenant="days-unit", roles=("editor",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, editor, tenant=None)
        days = setting(page, "FHIR Settings", "Day range to be used for temporal searches")
        await days.fill("30 days")
        await save(page, "FHIR Settings")

        section = page.get_by_role("region", name="FHIR Settings", exact=True)
        await expect(section.get_by_role("status")).to_have_text(
            "Not saved: see the messages beside the fields."
        )
        await expect(days).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#f-fhir-dayRangeForTemporalSearches-error")).to_have_text(
            "Day range to be used for temporal searches must be a whole number, without its "
            "unit: “30 days” is not one."
        )
        await expect(days).to_have_value("30 days")
        version = await asyncio.to_thread(gateway.graphql, READ_VERSION, tenantId="days-unit")
        assert version["data"]["integrationSettings"]["version"] == 1

        await days.fill("30")
        await save(page, "FHIR Settings")
        await expect(section.get_by_role("status")).to_have_text("Saved: version 2.")
        await expect(days).not_to_have_attribute("aria-invalid", "true")
        assert page.errors == []  # type: ignore[attr-defined]
