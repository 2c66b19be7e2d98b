"""A subscription's replay from sinceVersion goes on past a page of versions that do not verify
(left out of what a subscriber is sent): the versions after them still come. Before, a page
whose every version was left out read as the end of history, and the replay stopped there."""

from __future__ import annotations

import asyncio

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.changes import open_changes
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.settings import select_provider, update_block
from ehr_gateway.runtime.history_reads import HISTORY_PAGE
from ehr_gateway.storage.repository import HISTORY
from tests.resolvers.helpers import saved

EPIC = EhrProvider.EPIC
# Not a timing assertion: how long the test waits for a version before it fails instead of
# hanging (a replay that stopped early never sends it).
HANG_GUARD_S = 30


async def test_a_replay_goes_on_after_a_whole_page_of_versions_left_out(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EPIC, 0))
    newest = HISTORY_PAGE + 3
    for version in range(2, newest + 1):
        patch = {"context": f"version {version}"}
        saved(await update_block(context, tenant_id, SettingsBlock.EHR, EPIC, patch, None))
    # A database writer without the key edits a whole page's worth of versions (2 to 11): none
    # of them verifies any more, so none is sent. The versions after them still chain to the
    # hashes those entries carry, so they verify, and are sent.
    forged = await context.repository.database[HISTORY].update_many(
        {"tenantId": tenant_id, "version": {"$gte": 2, "$lte": HISTORY_PAGE + 1}},
        {"$set": {"actor": "forger"}},
    )
    assert forged.modified_count == HISTORY_PAGE

    changes = await open_changes(context, [tenant_id], 1, argument="tenantId")
    replayed = [(await asyncio.wait_for(anext(changes), HANG_GUARD_S)).entry for _ in range(2)]
    assert [entry.version for entry in replayed] == [newest - 1, newest]
    assert all(entry.actor != "forger" for entry in replayed)
    await changes.aclose()  # type: ignore[attr-defined]
