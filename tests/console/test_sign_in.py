"""Signing in to the console in development mode: a token minted with ``ehr-gateway token`` is
pasted; staff type the tenant they configure; a tenant's own token opens it directly; a token
the gateway refuses is said so in words, and the page stays on the sign-in form."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.console import browser, new_page, screenshot, sign_in, token
from tests.processes import GatewayProcess


async def test_staff_paste_a_token_and_choose_a_tenant(gateway: GatewayProcess) -> None:
    staff = token(gateway, tenant="*", roles=("editor",), subject="ana")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await page.goto(gateway.url + "/console")
        # The page says how to get a token before asking for one.
        await expect(
            page.get_by_text("ehr-gateway token --tenant acme --role editor")
        ).to_be_visible()
        await screenshot(page, "sign-in")
        await sign_in(page, gateway, staff, tenant="signin-staff")
        await expect(page.get_by_text("Signed in as ana")).to_be_visible()
        await expect(
            page.get_by_text("No settings yet: start by choosing the EHR.")
        ).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_tenants_own_token_opens_that_tenant(gateway: GatewayProcess) -> None:
    own = token(gateway, tenant="signin-own", roles=("editor",), subject="bo")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, own, tenant=None)
        await expect(page.get_by_label("Tenant")).to_have_value("signin-own")


async def test_a_refused_token_is_said_in_words(gateway: GatewayProcess) -> None:
    staff = token(gateway, tenant="*", roles=("editor",), subject="ana")
    forged = staff[:-4] + ("AAAA" if not staff.endswith("AAAA") else "BBBB")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await page.goto(gateway.url + "/console")
        await page.get_by_label("Token").fill(forged)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("The gateway refused this token")
        await expect(page.get_by_label("Token")).to_have_attribute("aria-invalid", "true")
        await page.get_by_label("Token").fill("not a token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("This is not a token")
