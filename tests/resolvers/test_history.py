"""resolvers/history.py called directly: a tenant's versions, newest first, a page at a time."""

from __future__ import annotations

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.history import PAGE_MAX, page_size, settings_history
from ehr_gateway.resolvers.settings import select_provider, update_block
from tests.resolvers.helpers import saved


async def test_versions_come_newest_first_a_page_at_a_time(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.EPIC, 0))
    for version, name in enumerate(["Scheduling", "Refills", "Billing", "Triage"], start=1):
        patch = {"context": name}
        saved(
            await update_block(
                context, tenant_id, SettingsBlock.EHR, EhrProvider.EPIC, patch, version
            )
        )

    first, more = await settings_history(context, tenant_id, first=2, before=None)
    assert [entry.version for entry in first] == [5, 4] and more
    rest, more = await settings_history(context, tenant_id, first=10, before=4)
    assert [entry.version for entry in rest] == [3, 2, 1] and not more

    newest = first[0]
    assert newest.actor == "staff"
    assert newest.changed_blocks == (SettingsBlock.EHR,)
    assert newest.changed_paths == ("providers.EPIC.ehr.context",)
    assert newest.settings.providers[EhrProvider.EPIC].ehr == {"context": "Triage"}
    assert rest[-1].changed_blocks == (SettingsBlock.PROVIDER,)


async def test_a_tenant_without_versions_or_a_text_that_names_none_has_no_history(
    context: Context, tenant_id: str
) -> None:
    assert await settings_history(context, tenant_id, first=10, before=None) == ([], False)
    assert await settings_history(context, "../etc", first=10, before=None) == ([], False)


def test_a_page_holds_1_to_100_versions() -> None:
    assert [page_size(n) for n in (-5, 0, 1, 50, PAGE_MAX, 10_000)] == [1, 1, 1, 50, 100, 100]
