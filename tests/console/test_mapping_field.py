"""A key-value mapping setting is a group named by the setting (its legend), each entry's input
labelled with the setting, the entry and the key, and its Add entry button named for what it
does (a label bound to the button used to rename it to the setting). An entry the gateway
refuses is named, and only its input is marked invalid."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.console import (
    browser,
    choose_ehr,
    new_page,
    on_epic_tenant,
    save,
    sign_in,
    token,
)
from tests.processes import GatewayProcess

MAPPING = "Quick CRM Topic Mapping"


async def test_a_mapping_reads_as_a_labelled_group(gateway: GatewayProcess) -> None:
    async with on_epic_tenant(gateway, "mapping", subject="ana") as page:
        section = page.get_by_role("region", name="Epic Settings", exact=True)
        group = section.get_by_role("group", name=MAPPING, exact=True)
        await expect(group).to_be_visible()
        await group.get_by_role("button", name="Add entry", exact=True).click()
        name = group.get_by_label(f"{MAPPING}, entry 1, name", exact=True)
        await name.fill("appointment")
        await group.get_by_label(f"{MAPPING}, entry 1, value", exact=True).fill("visits")
        await expect(group.get_by_role("button", name="Remove entry 1")).to_be_visible()
        # The group says what the setting is for.
        description = await group.get_attribute("aria-describedby") or ""
        assert "f-ehr-quickCrmTopicMapping-help" in description.split()
        assert page.errors == []  # type: ignore[attr-defined]


HEADERS = "Headers added to every request to the EHR's API"


async def test_a_refused_custom_header_names_its_entry(gateway: GatewayProcess) -> None:
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
        group = section.get_by_role("group", name=HEADERS, exact=True)
        await expect(group.locator("p.error")).to_contain_text("Entry 2, value: Must be printable")
        await expect(section.get_by_label(f"{HEADERS}, entry 2, value")).to_have_attribute(
            "aria-invalid", "true"
        )
        for label in ("entry 1, name", "entry 1, value", "entry 2, name"):
            await expect(section.get_by_label(f"{HEADERS}, {label}")).not_to_have_attribute(
                "aria-invalid", "true"
            )
        assert page.errors == []  # type: ignore[attr-defined]
