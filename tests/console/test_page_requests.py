"""What the console asks the gateway: a tenant's page in one request (its EHR is known from
sign-in or the directory, not found out by a first read for no EHR), and a section save
answered with the section's values, which the normalised cache (graphcache) writes over the
page: after a save only readiness is read again, not the whole page."""

from __future__ import annotations

import asyncio
import json

from playwright.async_api import Page, Request, expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    new_page,
    on_epic_tenant,
    paste_token,
    save,
    setting,
    token,
)
from tests.processes import GatewayProcess

MRN = "The mrn identifier"


def record_operations(page: Page, sent: list[str]) -> None:
    """Into ``sent``, the name of each GraphQL operation the page posts, from now on."""

    def record(request: Request) -> None:
        if request.url.endswith("/graphql") and request.method == "POST":
            query = json.loads(request.post_data or "{}").get("query", "")
            sent.append(query.split("(")[0].split("{")[0].split()[-1])

    page.on("request", record)


async def test_a_tenants_page_is_read_once_and_a_save_reads_only_readiness(
    gateway: GatewayProcess,
) -> None:
    sent: list[str] = []
    watch = lambda page: record_operations(page, sent)  # noqa: E731
    async with on_epic_tenant(gateway, "requests", subject="ana", watch=watch) as page:
        await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()
        await expect(page.get_by_text("live updates: on")).to_be_visible()
        assert sent.count("ConsolePage") == 1, sent

        readiness = page.get_by_role("complementary", name="Readiness")
        await expect(readiness.get_by_role("link", name=MRN, exact=True)).to_be_visible()

        sent.clear()
        await setting(page, "FHIR Settings", MRN).fill("urn:oid:1.2.840.114350")
        await save(page, "FHIR Settings")
        await expect(page.get_by_text("Saved: version 2.")).to_be_visible()
        await expect(page.get_by_text("Version 2, last changed by ana")).to_be_visible()
        await expect(setting(page, "FHIR Settings", MRN)).to_have_value("urn:oid:1.2.840.114350")
        await expect(readiness.get_by_role("link", name=MRN, exact=True)).to_have_count(0)
        assert "ConsolePage" not in sent, sent
        assert sent.count("Readiness") == 1, sent
        assert page.errors == []  # type: ignore[attr-defined]


async def test_staff_open_a_listed_tenant_in_one_request(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="requests-listed")
    staff = token(gateway, tenant="*", roles=("viewer",), subject="ana")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        sent: list[str] = []
        record_operations(page, sent)
        await paste_token(page, gateway, staff)
        directory = page.get_by_role("region", name="Directory")
        await directory.get_by_role("button", name="Configure requests-listed").click()
        await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()
        assert sent.count("ConsolePage") == 1, sent
