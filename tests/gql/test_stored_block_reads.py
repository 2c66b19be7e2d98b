"""A stored version's blocks are validated into their models once, when a read first needs them,
and every later read of that version (held by the settings cache) uses those models: reads of
one version answer the same bytes, a newer version is read afresh, and a block saved under
earlier rules that today's rules refuse still reads as before, through however many reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.ehr.blocks import SettingsBlock, TenantSettings
from ehr_gateway.ehr.common import EhrProvider
from ehr_gateway.server.app import create_app
from ehr_gateway.server.state import gateway_of
from tests.conftest import TEST_DATABASE, Gateway, gateway_config
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER_BY_NAME
from tests.older_gateway import store_as_older_gateway

SAVE_ATHENA = """
mutation SaveAthena($tenantId: ID!, $practiceId: String!, $header: String!) {
  e: updateEhrSettings(tenantId: $tenantId, input: {athena: {practiceId: $practiceId}}) {
    __typename
  }
  h: updateHeaderSettings(
    tenantId: $tenantId, input: {athena: {customHeaders: [{name: "X-Site", value: $header}]}}
  ) { __typename }
}
"""


class Opened:
    """A gateway app with the response cache off (every read executed), and its settings cache."""

    def __init__(self, gateway: Gateway, app: Any) -> None:
        self.gateway = gateway
        self.app = app

    async def read(self, tenant_id: str) -> bytes:
        response = await self.gateway.client.post(
            "/graphql",
            json={"query": INTEGRATION_SETTINGS, "variables": {"tenantId": tenant_id}},
            headers={"authorization": f"Bearer {self.gateway.token}"},
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return response.content

    async def cached(self, tenant_id: str) -> TenantSettings:
        """The settings the cache holds for the tenant (it must hold them: nothing is loaded)."""

        async def not_loaded(_: str) -> TenantSettings | None:
            raise AssertionError("the settings cache should hold this tenant")

        settings = await gateway_of(self.app).settings_cache.read(tenant_id, not_loaded)
        assert settings is not None
        return settings


async def opened(database_url: str, data_dir: Path) -> AsyncIterator[Opened]:
    config = gateway_config(database_url, data_dir, response_cache=False)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Opened(Gateway(client, config), app)


@pytest.fixture
async def uncached(database_url: str, tmp_path: Path) -> AsyncIterator[Opened]:
    async for gateway in opened(database_url, tmp_path):
        yield gateway


async def test_reads_of_one_version_validate_its_blocks_once_and_answer_the_same(
    uncached: Opened, tenant_id: str
) -> None:
    await uncached.gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    await uncached.gateway.execute(SAVE_ATHENA, tenantId=tenant_id, practiceId="195900",
                                   header="site-1")  # fmt: skip
    first = await uncached.read(tenant_id)
    settings = await uncached.cached(tenant_id)
    for block in (SettingsBlock.HEADERS, SettingsBlock.FHIR, SettingsBlock.EHR):
        # The model the first read built is the one every later read is given.
        assert settings.block(EhrProvider.ATHENA, block) is settings.block(
            EhrProvider.ATHENA, block
        )
    assert await uncached.read(tenant_id) == first
    assert await uncached.read(tenant_id) == first
    assert b'"practiceId":"195900"' in first and b'"value":"site-1"' in first


async def test_a_newer_version_is_read_from_its_own_blocks(
    uncached: Opened, tenant_id: str
) -> None:
    await uncached.gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")
    await uncached.gateway.execute(SAVE_ATHENA, tenantId=tenant_id, practiceId="195900",
                                   header="site-1")  # fmt: skip
    before = await uncached.read(tenant_id)
    await uncached.gateway.execute(SAVE_ATHENA, tenantId=tenant_id, practiceId="195901",
                                   header="site-2")  # fmt: skip
    after = await uncached.read(tenant_id)
    assert b'"practiceId":"195900"' in before and b'"value":"site-1"' in before
    assert b'"practiceId":"195901"' in after and b'"value":"site-2"' in after
    assert b"195900" not in after and b"site-1" not in after


async def test_a_block_saved_under_earlier_rules_reads_as_before_on_every_read(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    async for gateway in opened(database_url, tmp_path):
        await gateway.gateway.execute(
            SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA"
        )
    # Today's rules refuse both (a credential header; a value HTTP cannot carry); a document
    # written before them, or changed by hand, still holds them.
    old = [
        {"name": "Authorization", "value": "Basic c3ZjOnB3"},
        {"name": "X-Site", "value": "\u20ac"},
    ]
    await store_as_older_gateway(
        database_url,
        TEST_DATABASE,
        tenant_id,
        {"providers.ATHENA.headers.customHeaders": old},
        data_dir=tmp_path,
    )

    async for gateway in opened(database_url, tmp_path):  # a fresh process: nothing cached
        reads = [await gateway.read(tenant_id) for _ in range(3)]
        assert reads[0] == reads[1] == reads[2]
        for header in old:
            assert f'"name":"{header["name"]}"'.encode() in reads[0]
        assert b'"value":"\\u20ac"' in reads[0] or '"value":"\u20ac"'.encode() in reads[0]
        saved = await gateway.gateway.execute(
            """mutation Clear($tenantId: ID!) {
              updateHeaderSettings(tenantId: $tenantId, input: {athena: {customHeaders: []}}) {
                __typename
              }
            }""",
            tenantId=tenant_id,
        )
        assert saved["updateHeaderSettings"]["__typename"] == "SettingsSaved", saved
        assert b"Authorization" not in await gateway.read(tenant_id)
