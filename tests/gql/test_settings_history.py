"""settingsHistory: every stored version, newest first, in pages."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER, SETTINGS_HISTORY, UPDATE_EHR, UPDATE_FHIR


async def test_history_lists_versions_newest_first_with_what_changed(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    await gateway.execute(UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"useBatch": True}})
    await gateway.execute(
        UPDATE_EHR, tenantId=tenant_id,
        input={"epic": {"soapUsername": "svc", "soapPassword": "pa55-history-marker"}},
    )  # fmt: skip

    body = await gateway.post(SETTINGS_HISTORY, tenantId=tenant_id)
    versions = body["data"]["settingsHistory"]["versions"]
    assert [version["version"] for version in versions] == [3, 2, 1]
    assert [version["changedBlocks"] for version in versions] == [["EHR"], ["FHIR"], ["PROVIDER"]]
    assert versions[1]["changedPaths"] == ["providers.EPIC.fhir.useBatch"]
    assert "providers.EPIC.ehr.soapPassword" in versions[0]["changedPaths"]
    assert versions[2]["settings"] == {
        "version": 1,
        "provider": "EPIC",
        "patientRestriction": {"expression": None},
    }
    assert all(version["actor"] for version in versions)
    assert "pa55-history-marker" not in str(body)


async def test_history_pages_through_every_version_without_overlap(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    for practice in range(1, 8):
        await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": str(practice)}}
        )
    seen: list[int] = []
    before = None
    while True:
        data = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id, first=3, before=before)
        page = data["settingsHistory"]
        seen.extend(version["version"] for version in page["versions"])
        if not page["hasMore"]:
            assert page["nextBefore"] is None
            break
        before = page["nextBefore"]
    assert seen == list(range(8, 0, -1))


async def test_an_unknown_tenant_has_an_empty_history(gateway: Gateway, tenant_id: str) -> None:
    data = await gateway.execute(SETTINGS_HISTORY, tenantId=tenant_id)
    assert data["settingsHistory"] == {"hasMore": False, "nextBefore": None, "versions": []}
