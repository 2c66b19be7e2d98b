"""At start-up a gateway warns, once, of the tenants whose history has entries without a chain
link (from before the chain and not adopted, or stripped of it): every read, rollback and write
of theirs answers HISTORY_TAMPERED, and an operator learns from the log which tenants to check
and adopt (`ehr-gateway chain-legacy-history --tenant`) or restore. Each tenant found is an
index seek, not a read of every entry."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.server.config import GatewayConfig
from tests.conftest import open_gateway
from tests.documents import SELECT_EPIC
from tests.older_gateway import as_older_gateway_left_it
from tests.own_database import own_database

# What the warning says after naming the tenants, whichever they are.
CONSEQUENCE = (
    "their reads and writes answer HISTORY_TAMPERED until an operator who has checked each runs "
    "`ehr-gateway chain-legacy-history --tenant` (history from before the chain) or restores it "
    "from a backup (stripped of its chain); see auditIntegrity"
)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "ehr_gateway.security" and "without a chain link" in record.getMessage()
    ]


async def _warnings_at_start(config: GatewayConfig, caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings of a gateway started on the database as it is now, and of it alone."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        async for _ in open_gateway(config):
            pass
    return _warnings(caplog)


async def test_start_up_names_the_tenants_whose_history_is_not_adopted(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = GatewayConfig(
        mongodb_url=database_url, database=f"unadopted_{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path, public_base_url="https://gateway.example.test",
    )  # fmt: skip
    tenants = [f"tenant-{n}-{uuid.uuid4().hex[:6]}" for n in range(7)]
    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        async for gateway in open_gateway(config):
            for tenant_id in tenants:
                await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    assert _warnings(caplog) == []  # a history all chained: nothing to say
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        for tenant_id in tenants[:6]:  # as a gateway from before the chain left them
            await as_older_gateway_left_it(client[config.database], tenant_id)
    finally:
        await client.close()

    named = ", ".join(sorted(tenants[:6])[:5])
    assert await _warnings_at_start(config, caplog) == [
        f"6 tenants have history entries without a chain link ({named}, ...): {CONSEQUENCE}"
    ]


# Tenant ids no gateway writes, in unchained history entries a database writer inserted: null
# and numbers sort before text, and so do lists on the embedded server (on MongoDB a list sorts
# by its smallest element, among text); many decoys are more than a first batch of rows.
NON_TEXT_TENANTS = {
    "null tenant": [None],
    "numeric tenant": [7],
    "list tenant": [["0"]],
    "list tenant sorting among text": [["n"]],
    "object tenant": [{"id": "0"}],
    "many list tenants": [[str(n)] for n in range(150)],
}


@pytest.mark.parametrize("decoy_tenants", NON_TEXT_TENANTS.values(), ids=NON_TEXT_TENANTS.keys())
async def test_entries_whose_tenant_is_not_text_hide_no_tenant_and_are_not_named(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, decoy_tenants: list[Any]
) -> None:
    """Unchained entries of tenants that are no text (a database writer's) are stepped over:
    neither named nor counted, and every tenant after them, whatever its id sorts below, is."""
    async with own_database(database_url, tmp_path) as config:
        await _start_after_decoys(config, caplog, decoy_tenants)


async def _start_after_decoys(
    config: GatewayConfig, caplog: pytest.LogCaptureFixture, decoy_tenants: list[Any]
) -> None:
    database_url = config.mongodb_url
    assert database_url is not None
    # Ids below and above the text "None" and a list's element, which the walk once went on from.
    tenants = sorted(f"{first}-{uuid.uuid4().hex[:6]}" for first in ("3", "Memorial", "clinic"))
    async for gateway in open_gateway(config):
        for tenant_id in tenants:
            await gateway.execute(SELECT_EPIC, tenantId=tenant_id)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        for tenant_id in tenants:
            await as_older_gateway_left_it(client[config.database], tenant_id)
        await client[config.database]["tenant_settings_history"].insert_many(
            [{"tenantId": tenant, "version": 1, "settings": {}} for tenant in decoy_tenants]
        )
    finally:
        await client.close()

    named = ", ".join(tenants)
    assert await _warnings_at_start(config, caplog) == [
        f"3 tenants have history entries without a chain link ({named}): {CONSEQUENCE}"
    ]
