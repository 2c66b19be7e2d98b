"""A pasted development token that expires: the page says "Your sign-in expired." and asks for
a new token above the page, which stays with its unsaved edits; a new token of the same person
takes over and the edits save; another person's token does not take over their page.

Attack: a page that goes on as if signed in with an expired token, or that lets the next person
at the browser inherit someone else's unsaved edits by pasting their own token."""

from __future__ import annotations

from playwright.async_api import expect

from tests.console.console import browser, new_page, sign_in, token
from tests.processes import GatewayProcess

# Long enough to sign in on a busy machine; the test then waits for it to run out.
SHORT_TTL_S = 30
EXPIRY_WAIT_MS = 120_000


async def test_an_expired_token_asks_for_a_new_one_and_keeps_the_edits(
    gateway: GatewayProcess,
) -> None:
    short = token(gateway, tenant="expiry", roles=("editor",), subject="ana", ttl=SHORT_TTL_S)
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, short, tenant=None)
        await page.get_by_label("EHR provider").select_option("EPIC")

        again = page.get_by_role("region", name="Sign in again")
        await expect(again).to_contain_text("Your sign-in expired.", timeout=EXPIRY_WAIT_MS)
        await expect(again).to_contain_text("Your unsaved edits are kept")
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")

        # Someone else's token does not take over Ana's page and edits.
        bo = token(gateway, tenant="expiry", roles=("editor",), subject="bo")
        await again.get_by_label("Token").fill(bo)
        await again.get_by_role("button", name="Sign in").click()
        await expect(again.get_by_text("This page is signed in as ana")).to_be_visible()
        await expect(page.get_by_text("Signed in as ana (editor)")).to_be_visible()

        # Ana's new token does; her edit is still there and saves.
        await again.get_by_label("Token").fill(
            token(gateway, tenant="expiry", roles=("editor",), subject="ana")
        )
        await again.get_by_role("button", name="Sign in").click()
        await expect(again).to_be_hidden()
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")
        await page.get_by_role("button", name="Save Provider Settings").click()
        await expect(page.get_by_text("Saved: version 1.")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]
