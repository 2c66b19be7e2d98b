"""Signing out: the console warns first when edits are unsaved (and keeps them if the user stays),
then forgets the token, closes its live connection, keeps nothing in storage and shows the
sign-in page; nothing it sends afterwards carries the old token."""

from __future__ import annotations

from playwright.async_api import Request, WebSocket, expect

from tests.console.console import on_epic_tenant, setting
from tests.processes import GatewayProcess


async def test_sign_out_warns_of_unsaved_edits_then_forgets_the_token(
    gateway: GatewayProcess,
) -> None:
    sockets: list[WebSocket] = []
    sent: list[Request] = []
    async with on_epic_tenant(
        gateway,
        "sign-out",
        subject="sam",
        watch=lambda page: page.on("websocket", lambda socket: sockets.append(socket)),
    ) as page:
        await expect(page.get_by_text("live updates: on")).to_be_visible()
        prefix = setting(page, "FHIR Settings", "The url_prefix schema")
        await prefix.fill("/FHIR/unsaved")

        await page.get_by_role("button", name="Sign out").click()
        warning = page.get_by_role("region", name="Sign out with unsaved edits?")
        await expect(warning).to_contain_text("Unsaved edits in FHIR Settings will be lost")
        await warning.get_by_role("button", name="Stay signed in").click()
        await expect(warning).to_have_count(0)
        await expect(prefix).to_have_value("/FHIR/unsaved")

        await page.get_by_role("button", name="Sign out").click()
        page.on("request", lambda request: sent.append(request))
        await page.get_by_role("button", name="Sign out and discard edits").click()
        await expect(page.get_by_label("Token")).to_be_visible()
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        await expect(page.get_by_role("heading", name="FHIR Settings")).to_have_count(0)
        assert sockets
        for socket in sockets:  # its close reaches the page's event loop a moment later
            if not socket.is_closed():
                await socket.wait_for_event("close", timeout=10_000)
        stored = await page.evaluate("[localStorage.length, sessionStorage.length]")
        assert stored == [0, 0]
        assert [request for request in sent if request.headers.get("authorization")] == []
        assert page.errors == []  # type: ignore[attr-defined]


async def test_sign_out_without_edits_asks_nothing(gateway: GatewayProcess) -> None:
    async with on_epic_tenant(gateway, "sign-out-clean", subject="sam") as page:
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Token")).to_be_visible()
        await expect(page.get_by_role("region", name="Sign out with unsaved edits?")).to_have_count(
            0
        )
