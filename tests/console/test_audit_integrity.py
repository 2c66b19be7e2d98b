"""Verifying the history and audit log from the console's Audit log view (auditIntegrity): intact
logs are said to be intact; after a local database client rewrites who made an audit entry (the
attack: the audit log then serves the forgery as if the gateway wrote it), the console names the
entry that is the first broken link and why, in words. A role without audit:read is told why
there is nothing to verify."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect
from pymongo import MongoClient

from ehr_gateway.storage.audit import AUDIT
from tests.console.console import console_page, epic_tenant
from tests.processes import GatewayProcess, embedded_pid, embedded_port

DATABASE = "ehr_gateway"  # the gateway's default EHRGW_DATABASE


def forge_subject(gateway: GatewayProcess, tenant: str, sequence: int) -> None:
    """What a local client of the embedded database (it asks no credentials) can do."""
    port = embedded_port(embedded_pid(gateway.data_dir) or 0)
    with MongoClient(f"mongodb://127.0.0.1:{port}/") as client:
        changed = client[DATABASE][AUDIT].update_one(
            {"tenantId": tenant, "seq": sequence}, {"$set": {"subject": "someone-else"}}
        )
    assert changed.modified_count == 1


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


async def test_a_role_without_audit_read_is_told_why(gateway: GatewayProcess) -> None:
    await epic_tenant(gateway, "verified-editor")
    async with console_page(gateway, "verified-editor", "editor", "ed", "Audit log") as page:
        await expect(
            page.get_by_text("Reading the audit log needs the audit:read permission")
        ).to_be_visible()
        await expect(page.get_by_role("button", name="Verify history and audit log")).to_have_count(
            0
        )
