"""Who may run the integration actions: an editor and a viewer see each integrator action
disabled, saying in words which permission it needs and who has it (the permission the
operation's "Requires:" names, the roles console/schema.json maps to it), instead of a button
that fails on click; an integrator finds them enabled. Trying the patient restriction is a read:
every role may."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page, expect

from tests.console.console import CONNECT, SELECT_EPIC, browser, new_page, sign_in, token
from tests.processes import GatewayProcess

INTEGRATE = "Needs the integration:edit permission: ask an integrator."
VERIFY = "Needs the jwt:verify permission: ask an integrator."
# Each integrator action, by the section it is beside, and why others may not run it.
INTEGRATOR_ACTIONS = [
    ("External Gateway", "Regenerate the external gateway id", INTEGRATE),
    ("External Gateway", "Test the connection", INTEGRATE),
    ("Epic OAuth Settings", "Generate a signing key", INTEGRATE),
    ("Epic OAuth Settings", "Test the token exchange", INTEGRATE),
    ("Epic Settings", "Discover the JKU", INTEGRATE),
    ("Epic Settings", "Verify the JWT", VERIFY),
]


async def _open(page: Page, gateway: GatewayProcess, tenant: str, role: str) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    await asyncio.to_thread(gateway.graphql, CONNECT, tenantId=tenant)
    await sign_in(page, gateway, token(gateway, tenant=tenant, roles=(role,), subject=role), None)


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_integrator_actions_are_disabled_with_the_reason(
    gateway: GatewayProcess, role: str
) -> None:
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await _open(page, gateway, f"roles-{role}", role)
        for section, action, reason in INTEGRATOR_ACTIONS:
            region = page.get_by_role("region", name=section, exact=True)
            button = region.get_by_role("button", name=action)
            await expect(button).to_be_disabled()
            await expect(button).to_have_accessible_description(reason)
        # The pasted JWT and the issuer cannot be typed either: nothing would take them.
        epic = page.get_by_role("region", name="Epic Settings", exact=True)
        await expect(epic.get_by_label("JWT to verify")).not_to_be_editable()
        await expect(epic.get_by_label("Issuer URL to discover from")).not_to_be_editable()
        restriction = page.get_by_role("region", name="Patient Restriction Information Expression")
        await expect(
            restriction.get_by_role("button", name="Evaluate for this age")
        ).to_be_enabled()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_an_integrator_may_run_them(gateway: GatewayProcess) -> None:
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await _open(page, gateway, "roles-integrator", "integrator")
        for section, action, _ in INTEGRATOR_ACTIONS:
            region = page.get_by_role("region", name=section, exact=True)
            button = region.get_by_role("button", name=action)
            await expect(button).to_be_enabled()
            await expect(button).to_have_accessible_description("")
        for reason in (INTEGRATE, VERIFY):
            await expect(page.get_by_text(reason, exact=True)).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
