"""A key-value mapping setting is a group named by the setting (its legend), each entry's input
labelled with the setting, the entry and the key, and its Add entry button named for what it
does (a label bound to the button used to rename it to the setting)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.console import on_epic_tenant
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
