"""A secret's fingerprint tells an admin whether the value changed, and nothing else: it is a MAC
bound to the tenant and the field, so equal passwords in two tenants (or in two fields) do not
show as equal. Fingerprints an older version stored unbound are bound when a gateway starts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.storage.secrets import KEY_FILE, SecretBox
from tests.conftest import Gateway, open_gateway
from tests.documents import SELECT_PROVIDER, UPDATE_EHR
from tests.older_gateway import adopt_as_operator, as_older_gateway_left_it

PASSWORD = "Shared-pass-2026"

SECRETS = """
query Secrets($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr {
      ... on EpicSettings { soapPassword { isSet fingerprint } }
      ... on EllkaySettings {
        subscriberKey { isSet fingerprint } siteServiceKey { isSet fingerprint }
      }
    }
  }
}
"""


async def _epic_password(gateway: Gateway, tenant_id: str, password: str) -> dict[str, Any]:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    return await _set_password(gateway, tenant_id, password)


async def _set_password(gateway: Gateway, tenant_id: str, password: str) -> dict[str, Any]:
    credentials = {"soapUsername": "svc", "soapPassword": password}
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})
    settings: dict[str, Any] = (await gateway.execute(SECRETS, tenantId=tenant_id))[
        "integrationSettings"
    ]
    return settings


async def test_equal_passwords_in_two_tenants_have_different_fingerprints(
    gateway: Gateway,
) -> None:
    first = await _epic_password(gateway, f"tenant-{uuid.uuid4().hex[:8]}", PASSWORD)
    second = await _epic_password(gateway, f"tenant-{uuid.uuid4().hex[:8]}", PASSWORD)

    assert (
        first["ehr"]["soapPassword"]["fingerprint"] != second["ehr"]["soapPassword"]["fingerprint"]
    )


async def test_equal_keys_in_two_fields_have_different_fingerprints(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")
    keys = {"subscriberKey": PASSWORD, "siteServiceKey": PASSWORD}
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"ellkay": keys})

    ehr = (await gateway.execute(SECRETS, tenantId=tenant_id))["integrationSettings"]["ehr"]

    assert ehr["subscriberKey"]["fingerprint"] != ehr["siteServiceKey"]["fingerprint"]


async def test_a_fingerprint_changes_with_the_value_and_only_with_it(
    gateway: Gateway, tenant_id: str
) -> None:
    first = await _epic_password(gateway, tenant_id, PASSWORD)
    again = await _set_password(gateway, tenant_id, PASSWORD)
    changed = await _set_password(gateway, tenant_id, "Another-pass-2026")
    back = await _set_password(gateway, tenant_id, PASSWORD)

    assert again == first  # the same value: no new version, the same fingerprint
    assert (
        changed["ehr"]["soapPassword"]["fingerprint"] != first["ehr"]["soapPassword"]["fingerprint"]
    )
    assert back["ehr"]["soapPassword"]["fingerprint"] == first["ehr"]["soapPassword"]["fingerprint"]
    assert back["version"] == first["version"] + 2


def _unbound_fingerprint(data_dir: Path, value: str) -> str:
    """The fingerprint as versions before this one made it: the value's MAC alone."""
    key = base64.b64decode((data_dir / KEY_FILE).read_text().split()[0])
    mac_key = hashlib.sha256(b"ehrgw-fingerprint" + key).digest()
    return hmac.new(mac_key, value.encode(), hashlib.sha256).hexdigest()[:16]


async def test_unbound_fingerprints_stored_earlier_are_bound_when_their_history_is_adopted(
    database_url: str, tmp_path: Path
) -> None:
    config = GatewayConfig(
        mongodb_url=database_url, database=f"fingerprints_{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path, public_base_url="https://gateway.example.test",
    )  # fmt: skip
    tenants = [f"tenant-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    async for gateway in open_gateway(config):
        for tenant_id in tenants:
            await _epic_password(gateway, tenant_id, PASSWORD)
    unbound = _unbound_fingerprint(tmp_path, PASSWORD)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    db = client[config.database]
    try:
        for tenant_id in tenants:  # as an older version left them
            where = "providers.EPIC.ehr.soapPassword.fingerprint"
            # An older version sealed no document and wrote no chain links.
            await as_older_gateway_left_it(db, tenant_id)
            await db["tenant_settings"].update_one({"_id": tenant_id}, {"$set": {where: unbound}})
            await db["tenant_settings_history"].update_many(
                {"tenantId": tenant_id, f"settings.{where}": {"$exists": True}},
                {"$set": {f"settings.{where}": unbound}},
            )
        await db["migrations"].delete_many({})
        for tenant_id in tenants:  # unchained history is served only once adopted
            await adopt_as_operator(db, tmp_path, tenant_id)

        async for gateway in open_gateway(config):
            shown = [
                (await gateway.execute(SECRETS, tenantId=tenant_id))["integrationSettings"]
                for tenant_id in tenants
            ]
        history = await db["tenant_settings_history"].find_one(
            {"tenantId": tenants[0], "version": 2}
        )
    finally:
        await client.close()

    box = SecretBox.from_data_dir(tmp_path)
    for tenant_id, settings in zip(tenants, shown, strict=True):
        assert settings["ehr"]["soapPassword"]["fingerprint"] == box.fingerprint(
            PASSWORD, f"{tenant_id}:EPIC:EHR:soapPassword"
        )
        assert settings["version"] == 2  # rebound in place, not a new version
    assert shown[0]["ehr"]["soapPassword"] != shown[1]["ehr"]["soapPassword"]
    assert history is not None
    stored = history["settings"]["providers"]["EPIC"]["ehr"]["soapPassword"]["fingerprint"]
    assert stored == shown[0]["ehr"]["soapPassword"]["fingerprint"]
