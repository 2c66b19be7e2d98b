"""The tenant's history in the console: each version with who stored it and what it changed,
setting by setting under the spec's names (settingsDiff between consecutive versions), a secret
only as set or not set; older versions a page at a time; the views reached by keyboard as a tab
list (the role that may not roll back is told why: tests/console/test_rollback.py). Names and
values are isolated from the sentence (an Arabic topic name keeps "name = value" in order), and a
provider's first version lists only what was chosen."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.console.console import console_page, epic_tenant, screenshot
from tests.documents import SELECT_ELLKAY, SELECT_EPIC
from tests.processes import GatewayProcess

SAVE_SOAP = """
mutation SaveSoap($tenantId: ID!) {
  updateEhrSettings(
    tenantId: $tenantId
    input: { epic: { soapUsername: "refills", soapPassword: "never-shown-3f9a" } }
  ) { __typename }
}
"""


async def test_each_version_says_who_and_what_changed(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "acme", "/FHIR/R4")
    await asyncio.to_thread(gateway.graphql, SAVE_SOAP, tenantId="acme")
    async with console_page(gateway, "acme", "viewer", "vic", view="History") as page:
        newest = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Version 3 (current)")
        )
        await expect(newest).to_contain_text("By test-staff")
        await expect(newest).to_contain_text("SOAP Username: not set → refills")
        await expect(newest).to_contain_text("SOAP Password: not set → set")
        await expect(page.get_by_text("never-shown-3f9a")).to_have_count(0)
        second = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Version 2", exact=True)
        )
        await expect(second).to_contain_text("The url_prefix schema: not set → /FHIR/R4")
        first = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Version 1", exact=True)
        )
        await expect(first).to_contain_text("EHR provider: not set → EPIC")

        await screenshot(page, "history")

        # The views are a tab list: the arrow keys move between them.
        await page.get_by_role("tab", name="History").focus()
        await page.keyboard.press("ArrowRight")
        audit = page.get_by_role("tab", name="Audit log")
        await expect(audit).to_be_focused()
        await expect(audit).to_have_attribute("aria-selected", "true")
        await expect(page.get_by_role("tabpanel", name="Audit log")).to_contain_text(
            "Reading the audit log needs the audit:read permission (roles: integrator)."
        )
        await page.keyboard.press("Home")
        await expect(page.get_by_role("tab", name="Settings")).to_be_focused()
        await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_older_versions_come_a_page_at_a_time(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "long-history", *(f"/FHIR/{n}" for n in range(2, 13)))
    async with console_page(gateway, "long-history", "viewer", "vic", view="History") as page:
        await expect(page.get_by_role("heading", name="Version 12 (current)")).to_be_visible()
        await expect(page.get_by_role("heading", name="Version 3", exact=True)).to_be_visible()
        await expect(page.get_by_role("heading", name="Version 2", exact=True)).to_have_count(0)

        await page.get_by_role("button", name="Show older versions").click()
        second = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name="Version 2", exact=True)
        )
        await expect(second).to_contain_text("The url_prefix schema: not set → /FHIR/2")
        await expect(page.get_by_role("heading", name="Version 1", exact=True)).to_be_visible()
        await expect(page.get_by_role("button", name="Show older versions")).to_have_count(0)


async def test_choosing_ellkay_is_not_shown_as_a_change_of_oauth_signing_keys(
    gateway: GatewayProcess,
) -> None:
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
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="topics-rtl")
    await asyncio.to_thread(gateway.graphql, MAP_TOPICS, tenantId="topics-rtl")
    async with console_page(gateway, "topics-rtl", "viewer", "eng", view="History") as page:
        await expect(page.get_by_text("Appointments = 1")).to_be_visible()
        places = await page.evaluate(PLACES)
        # In a left-to-right page "name = value": the value is drawn right of its name.
        assert places["value"] > places["name"], places
