"""Verifying the history and audit log from the console's Audit log view (auditIntegrity): intact
logs are said to be intact; after a local database client rewrites who made an audit entry (the
attack: the audit log then serves the forgery as if the gateway wrote it), the console names the
entry that is the first broken link and why, in words. A tenant with more entries than one call
verifies is walked call after call until done, and a forgery in a late call is still named. A
role without audit:read is told why there is nothing to verify."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Request, expect
from pymongo import AsyncMongoClient, MongoClient

from ehr_gateway.ehr.blocks import TenantSettings
from ehr_gateway.storage.audit import AUDIT
from ehr_gateway.storage.repository import HISTORY, SettingsRepository
from ehr_gateway.storage.secrets import SecretBox
from tests.console.console import console_page, epic_tenant
from tests.processes import GatewayProcess, embedded_pid, embedded_port

DATABASE = "ehr_gateway"  # the gateway's default EHRGW_DATABASE

# Every text a status line showed, kept as the page shows it: the walk's progress is there only
# between two calls.
WATCH_STATUS = """() => {
  window.statusSeen = [];
  new MutationObserver(() => {
    for (const node of document.querySelectorAll('[role="status"]')) {
      window.statusSeen.push(node.textContent.replace(/\\s+/g, " ").trim());
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def forge_subject(gateway: GatewayProcess, tenant: str, sequence: int) -> None:
    """What a local client of the embedded database (it asks no credentials) can do."""
    port = embedded_port(embedded_pid(gateway.data_dir) or 0)
    with MongoClient(f"mongodb://127.0.0.1:{port}/") as client:
        changed = client[DATABASE][AUDIT].update_one(
            {"tenantId": tenant, "seq": sequence}, {"$set": {"subject": "someone-else"}}
        )
    assert changed.modified_count == 1


async def add_versions(gateway: GatewayProcess, tenant: str, versions: int) -> None:
    """Versions of ``tenant`` stored through the storage layer, as a save stores them (history
    entry, audit entry, document), until it has ``versions``: quicker than as many requests."""
    port = embedded_port(embedded_pid(gateway.data_dir) or 0)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/")
    try:
        keys = SecretBox.from_data_dir(gateway.data_dir).chain
        repository = SettingsRepository(client, DATABASE, keys)
        current = await repository.get(tenant)
        assert current is not None
        entry = await client[DATABASE][HISTORY].find_one({"tenantId": tenant, "version": 1})
        assert entry is not None
        while current.version < versions:
            saved = await repository.save(
                current, base_version=current.version, actor=entry["actor"], changed_blocks=[],
                changed_paths=[], audit=entry["audit"],
            )  # fmt: skip
            assert isinstance(saved, TenantSettings), saved
            current = saved
    finally:
        await client.close()


async def test_the_console_verifies_the_logs_and_names_a_forged_entry(
    gateway: GatewayProcess,
) -> None:
    await epic_tenant(gateway, "verified", "/FHIR/R4", "/FHIR/R4/api")
    async with console_page(gateway, "verified", "integrator", "ines", "Audit log") as page:
        verify = page.get_by_role("button", name="Verify history and audit log")
        await verify.click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Intact: 6 entries of the history and audit log verified"
        )

        await asyncio.to_thread(forge_subject, gateway, "verified", 2)
        await verify.click()
        verdict = page.get_by_role("alert")
        await expect(verdict).to_contain_text(
            "Not intact: the first broken link is in Audit log, entry 2."
        )
        await expect(verdict).to_contain_text("Its content was changed after it was written.")
        await expect(verdict).to_contain_text("4 entries verified before it.")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_long_walk_goes_on_call_after_call_and_names_a_late_forgery(
    gateway: GatewayProcess,
) -> None:
    await epic_tenant(gateway, "verified-long")
    # 1,020 entries: the console verifies 1,000 a call, so the walk takes two.
    await add_versions(gateway, "verified-long", 510)
    async with console_page(gateway, "verified-long", "integrator", "ines", "Audit log") as page:
        calls: list[str] = []

        def seen(request: Request) -> None:
            if "auditIntegrity" in (request.post_data or ""):
                calls.append(request.post_data or "")

        page.on("request", seen)
        await page.evaluate(WATCH_STATUS)
        verify = page.get_by_role("button", name="Verify history and audit log")
        await verify.click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Intact: 1020 entries of the history and audit log verified"
        )
        assert len(calls) == 2 and '"after":null' not in calls[1]
        # Between the two calls the page said how far the walk had got.
        assert "Verifying: 1000 entries verified so far, none broken." in await page.evaluate(
            "window.statusSeen.join(' | ')"
        )

        await asyncio.to_thread(forge_subject, gateway, "verified-long", 505)
        await verify.click()
        verdict = page.get_by_role("alert")
        await expect(verdict).to_contain_text(
            "Not intact: the first broken link is in Audit log, entry 505."
        )
        await expect(verdict).to_contain_text("1014 entries verified before it.")
        assert len(calls) == 4
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_role_without_audit_read_is_told_why(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "verified-editor")
    async with console_page(gateway, "verified-editor", "editor", "ed", "Audit log") as page:
        await expect(
            page.get_by_text("Reading the audit log needs the audit:read permission")
        ).to_be_visible()
        await expect(page.get_by_role("button", name="Verify history and audit log")).to_have_count(
            0
        )
