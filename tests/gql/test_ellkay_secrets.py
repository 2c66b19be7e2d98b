"""Ellkay's subscriber key and site service key are credentials: write-only secrets, like Epic's
SOAP password. A viewer sees only whether they are set; an editor cannot set them; exports do not
carry them; readiness counts them. Values an older version stored as plain text are sealed when
a gateway starts, in the settings, every history version and the audit log."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import AsyncMongoClient

from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.storage.secrets import SecretBox
from tests.conftest import Gateway, open_gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, READINESS, SELECT_PROVIDER, UPDATE_EHR
from tests.older_gateway import store_as_older_gateway

SUBSCRIBER_KEY = f"subscriber-{uuid.uuid4().hex}"
SITE_SERVICE_KEY = f"site-service-{uuid.uuid4().hex}"

ELLKAY_KEYS = """
query EllkayKeys($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr {
      ... on EllkaySettings {
        subscriberKey { isSet fingerprint updatedAt }
        siteServiceKey { isSet fingerprint updatedAt }
      }
    }
  }
}
"""
SET_KEYS = """
mutation SetKeys($tenantId: ID!, $subscriberKey: String, $siteServiceKey: String) {
  updateEhrSettings(tenantId: $tenantId, input: {ellkay: {
    subscriberKey: $subscriberKey, siteServiceKey: $siteServiceKey
  }}) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
VIEWER_READS = """
query ViewerReads($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 10) {
    versions { changedPaths settings { ehr { ... on EllkaySettings {
      subscriberKey { isSet fingerprint } siteServiceKey { isSet fingerprint }
    } } } }
  }
  settingsDiff(tenantId: $tenantId, fromVersion: 0, toVersion: 2) {
    ... on SettingsDiff { changes { path before after } }
  }
  exportSettings(tenantId: $tenantId)
}
"""
EVERY_READ = VIEWER_READS.replace(
    "query ViewerReads($tenantId: ID!) {",
    "query EveryRead($tenantId: ID!) {\n"
    "  auditLog(tenantId: $tenantId, first: 10) { entries { changes { path before after } } }",
)


async def _ellkay_tenant_with_keys(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    saved = await gateway.execute(
        SET_KEYS, tenantId=tenant_id, subscriberKey=SUBSCRIBER_KEY, siteServiceKey=SITE_SERVICE_KEY
    )
    assert saved["updateEhrSettings"]["__typename"] == "SettingsSaved", saved


async def test_a_viewer_sees_whether_the_keys_are_set_never_the_keys(
    gateway: Gateway, tenant_id: str
) -> None:
    await _ellkay_tenant_with_keys(gateway, tenant_id)
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])

    keys = (await viewer.execute(ELLKAY_KEYS, tenantId=tenant_id))["integrationSettings"]["ehr"]
    everything = await viewer.execute(VIEWER_READS, tenantId=tenant_id)

    for name in ("subscriberKey", "siteServiceKey"):
        assert keys[name]["isSet"] is True
        assert len(keys[name]["fingerprint"]) == 16
    text = json.dumps([keys, everything])
    assert SUBSCRIBER_KEY not in text
    assert SITE_SERVICE_KEY not in text


async def test_an_export_does_not_carry_the_keys(gateway: Gateway, tenant_id: str) -> None:
    await _ellkay_tenant_with_keys(gateway, tenant_id)

    exported = (await gateway.execute(EVERY_READ, tenantId=tenant_id))["exportSettings"]

    ellkay = json.dumps(exported)
    assert SUBSCRIBER_KEY not in ellkay and SITE_SERVICE_KEY not in ellkay
    assert "subscriberKey" not in ellkay and "siteServiceKey" not in ellkay


async def test_an_editor_cannot_set_the_keys(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])

    body = await editor.post(SET_KEYS, tenantId=tenant_id, subscriberKey=SUBSCRIBER_KEY)

    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "permission": "secrets:write",
        "fields": ["providers.ELLKAY.ehr.subscriberKey"],
    }
    assert SUBSCRIBER_KEY not in json.dumps(body)
    keys = (await gateway.execute(ELLKAY_KEYS, tenantId=tenant_id))["integrationSettings"]
    assert keys["version"] == 1
    assert keys["ehr"]["subscriberKey"]["isSet"] is False


async def test_readiness_counts_the_keys_once_set(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    connection = {"name": "Ellkay", "baseUrl": "https://ellkay.example/api",
                  "environment": "PRODUCTION"}  # fmt: skip
    await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection)
    before = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]
    await gateway.execute(SET_KEYS, tenantId=tenant_id, subscriberKey=SUBSCRIBER_KEY)
    half = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]
    await gateway.execute(SET_KEYS, tenantId=tenant_id, siteServiceKey=SITE_SERVICE_KEY)
    after = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]

    assert [check["path"] for check in before["missing"]] == [
        ["ehr", "subscriberKey"], ["ehr", "siteServiceKey"],
    ]  # fmt: skip
    assert [check["path"] for check in half["missing"]] == [["ehr", "siteServiceKey"]]
    assert after["ready"] is True


async def test_keys_stored_as_plain_text_are_sealed_when_a_gateway_starts(
    database_url: str, tmp_path: Path
) -> None:
    """As an older version stored them: plain strings in the settings, in each history version
    and in the audit entries' before and after."""
    config = GatewayConfig(
        mongodb_url=database_url, database=f"ellkay_{uuid.uuid4().hex[:8]}", data_dir=tmp_path,
        public_base_url="https://gateway.example.test",
    )  # fmt: skip
    tenant_id = f"legacy-{uuid.uuid4().hex[:8]}"
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
        await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"ellkay": {"waitlistingStatusName": "Wait"}}
        )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    db = client[config.database]
    legacy = {"subscriberKey": SUBSCRIBER_KEY, "siteServiceKey": SITE_SERVICE_KEY}
    path = "providers.ELLKAY.ehr"
    try:
        # The migration that seals them has not run on such a database: it runs as the older
        # history is adopted (chain-legacy-history), and again, for the audit log, at start.
        await db["migrations"].delete_many({})
        await store_as_older_gateway(
            database_url,
            config.database,
            tenant_id,
            {f"{path}.{k}": v for k, v in legacy.items()},
            data_dir=tmp_path,
        )
        audit = await db["audit_log"].find_one({"tenantId": tenant_id, "version": 2})
        assert audit is not None
        audit.pop("chain", None)
        audit["changes"].append(
            {"path": f"{path}.subscriberKey", "before": None, "after": SUBSCRIBER_KEY}
        )
        await db["audit_log"].replace_one({"_id": audit["_id"]}, audit)
        await db["migrations"].delete_many({})  # as a database the migration never ran on

        async for gateway in open_gateway(config):
            keys = (await gateway.execute(ELLKAY_KEYS, tenantId=tenant_id))["integrationSettings"]
            everything = await gateway.execute(EVERY_READ, tenantId=tenant_id)

        rows = [
            json_util.dumps(row)
            for name in await db.list_collection_names()
            for row in await db[name].find().to_list()
        ]
        document = await db["tenant_settings"].find_one({"_id": tenant_id})
    finally:
        await client.close()

    assert keys["version"] == 2  # sealed in place, not a new version
    assert keys["ehr"]["subscriberKey"]["isSet"] is True
    assert keys["ehr"]["siteServiceKey"]["isSet"] is True
    assert SUBSCRIBER_KEY not in json.dumps(everything)
    stored = "\n".join(rows)
    assert SUBSCRIBER_KEY not in stored and SITE_SERVICE_KEY not in stored
    assert document is not None
    sealed = StoredSecret.model_validate(document["providers"]["ELLKAY"]["ehr"]["subscriberKey"])
    box = SecretBox.from_data_dir(tmp_path)
    assert box.open(sealed, f"{tenant_id}:ELLKAY:EHR:subscriberKey") == SUBSCRIBER_KEY
