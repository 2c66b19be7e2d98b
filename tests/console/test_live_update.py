"""Two browsers on one tenant stay consistent: a change saved in one arrives in the other over
its configurationChanged subscription; fields the other user has not touched show the new
value, and a field they have touched keeps their unsaved value and says who changed it in which
version."""

from __future__ import annotations

import asyncio

from playwright.async_api import Dialog, expect

from tests.console.console import (
    SELECT_EPIC,
    browser,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.processes import GatewayProcess


async def test_a_change_saved_elsewhere_arrives_live(gateway: GatewayProcess) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="live")
    ana = token(gateway, tenant="live", roles=("editor",), subject="ana")
    bo = token(gateway, tenant="live", roles=("editor",), subject="bo")
    async with browser() as chromium:
        _, watching = await new_page(chromium)
        _, saving = await new_page(chromium)
        await sign_in(watching, gateway, ana, tenant=None)
        await sign_in(saving, gateway, bo, tenant=None)
        await expect(watching.get_by_text("live updates: on")).to_be_visible()

        # Ana has typed into one field and not saved.
        client_id = setting(watching, "Header Settings", "Epic Client ID")
        await client_id.fill("ana-client")

        await setting(saving, "Header Settings", "Epic Client ID").fill("bo-client")
        await setting(saving, "Header Settings", "Epic User ID").fill("TALKDESK")
        await save(saving, "Header Settings")
        await expect(saving.get_by_text("Saved: version 2.")).to_be_visible()

        # Untouched: updated in place, without reloading.
        await expect(setting(watching, "Header Settings", "Epic User ID")).to_have_value("TALKDESK")
        await expect(watching.get_by_text("Version 2, last changed by bo")).to_be_visible()
        # Touched: kept, and flagged.
        await expect(client_id).to_have_value("ana-client")
        note = watching.locator("#f-headers-epicClientId-note")
        await expect(note).to_have_text("Changed by bo in version 2; your unsaved value is kept.")
        assert "f-headers-epicClientId-note" in (
            await client_id.get_attribute("aria-describedby") or ""
        )
        assert watching.errors == saving.errors == []  # type: ignore[attr-defined]

        # Ana's edit is still unsaved: leaving the page asks first.
        asked: asyncio.Queue[str] = asyncio.Queue()

        async def answer(dialog: Dialog) -> None:
            await asked.put(dialog.type)
            await dialog.accept()

        watching.on("dialog", answer)
        await watching.close(run_before_unload=True)
        assert await asyncio.wait_for(asked.get(), 10) == "beforeunload"
