"""The audit log in the console: who, when, which operation, how it ended (the version stored,
or the permission a refused caller lacked) and the request id that finds the request in the
gateway's logs; newest first, older entries a page at a time."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import expect

from tests.console.console import console_page, epic_tenant, token
from tests.processes import GatewayProcess

ROLLBACK = """
mutation Rollback($tenantId: ID!) {
  rollbackSettings(tenantId: $tenantId, toVersion: 1) { __typename }
}
"""


def refused_rollback(gateway: GatewayProcess, editor: str) -> str:
    """An editor's rollback, refused and audited: its request id."""
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": ROLLBACK, "variables": {"tenantId": "audited"}},
        headers={"authorization": f"Bearer {editor}"},
        timeout=10,
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    return response.headers["x-request-id"]


async def test_the_audit_log_says_who_did_what_and_how_it_ended(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "audited", "/FHIR/R4")
    editor = token(gateway, tenant="audited", roles=("editor",), subject="ed")
    request_id = await asyncio.to_thread(refused_rollback, gateway, editor)
    async with console_page(gateway, "audited", "integrator", "ines", view="Audit log") as page:
        rows = page.get_by_role("row")
        await expect(rows).to_have_count(4)  # the header, then newest first
        refused = rows.nth(1)
        await expect(refused).to_contain_text("ed (editor)")
        await expect(refused).to_contain_text("rollbackSettings")
        await expect(refused).to_contain_text("Refused: missing settings:rollback")
        await expect(refused).to_contain_text(request_id)
        saved = rows.nth(2)
        await expect(saved).to_contain_text("test-staff")
        await expect(saved).to_contain_text("updateFhirSettings")
        await expect(saved).to_contain_text("Saved as version 2")
        await saved.get_by_text("1 setting changed").click()
        await expect(saved).to_contain_text("The url_prefix schema: not set → /FHIR/R4")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_older_entries_come_a_page_at_a_time(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "audited-long", *(f"/FHIR/{n}" for n in range(2, 23)))
    async with console_page(gateway, "audited-long", "integrator", "ines", "Audit log") as page:
        await expect(page.get_by_text("Saved as version 22")).to_be_visible()
        await expect(page.get_by_text("Saved as version 3", exact=True)).to_be_visible()
        await expect(page.get_by_text("Saved as version 2", exact=True)).to_have_count(0)
        await page.get_by_role("button", name="Show older entries").click()
        await expect(page.get_by_text("Saved as version 1", exact=True)).to_be_visible()
        await expect(page.get_by_role("button", name="Show older entries")).to_have_count(0)
