"""Secrets are write-only. Every secret is set to a unique marker (the SOAP password is typed in;
the OAuth private key is generated, so its private exponent is the marker), every read path is
exercised — query results, history, diffs, the audit log, the export, the JWKS, a subscription,
error messages, refusals — and the markers must appear nowhere: not in any response, not in the
gateway's log, and in the database only as ciphertext (that is, not at all in plain text).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import json_util
from pymongo import MongoClient

from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.storage.secrets import SecretBox
from tests.documents import (
    GENERATE_SIGNING_KEY,
    INTEGRATION_SETTINGS,
    READINESS,
    SELECT_PROVIDER,
    SETTINGS_FIELDS,
    UPDATE_EHR,
    UPDATE_HEADERS,
    UPDATE_OAUTH,
)
from tests.processes import GatewayProcess, TransportWsClient, started_gateway

MARKER = f"canary-{uuid.uuid4().hex}"
DENIED_MARKER = f"denied-canary-{uuid.uuid4().hex}"
REFUSED_MARKER = f"refused-canary-{uuid.uuid4().hex}"
SUBSCRIBER_MARKER = f"subscriber-canary-{uuid.uuid4().hex}"
SITE_SERVICE_MARKER = f"site-service-canary-{uuid.uuid4().hex}"
CF_ACCESS_MARKER = f"cf-access-canary-{uuid.uuid4().hex}"

TEST_TOKEN = """
mutation TestToken($tenantId: ID!) {
  testOAuthToken(tenantId: $tenantId) {
    __typename ... on OAuthTokenTest { ok error errorDescription }
  }
}
"""
HISTORY_WITH_SETTINGS = (
    """
query History($tenantId: ID!) {
  settingsHistory(tenantId: $tenantId, first: 100) {
    versions { version changedPaths settings { ...SettingsFields } }
  }
}
"""
    + SETTINGS_FIELDS
)
EVERYTHING_ELSE = """
query Rest($tenantId: ID!, $to: Int!) {
  auditLog(tenantId: $tenantId, first: 100) {
    entries { subject operation outcome changes { path before after } missingPermission }
  }
  settingsDiff(tenantId: $tenantId, fromVersion: 0, toVersion: $to) {
    ... on SettingsDiff { changes { path before after } }
  }
  exportSettings(tenantId: $tenantId)
}
"""
WRONG_TYPE = """
mutation WrongType($tenantId: ID!, $version: Int) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC, expectedVersion: $version) {
    __typename
  }
}
"""
CHANGES = (
    """
subscription Changes($tenantId: ID!) {
  configurationChanged(tenantId: $tenantId, sinceVersion: 0) {
    version changedBlocks settings { ...SettingsFields }
  }
}
"""
    + SETTINGS_FIELDS
)


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    with started_gateway(
        tmp_path,
        database_url,
        EHRGW_ALLOW_INSECURE_HTTP="true",
        EHRGW_OUTBOUND_ALLOW_PRIVATE="true",
    ) as process:
        yield process


def _post(gateway: GatewayProcess, document: str, token: str, **variables: Any) -> str:
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": document, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    return response.text


def _database_dump(database_url: str, database: str) -> str:
    client: MongoClient[dict[str, Any]] = MongoClient(database_url)
    try:
        db = client[database]
        return "\n".join(
            json_util.dumps(row) for name in db.list_collection_names() for row in db[name].find()
        )
    finally:
        client.close()


async def test_no_secret_is_readable_anywhere(
    gateway: GatewayProcess, database_url: str, tmp_path: Path
) -> None:
    tenant_id = f"canary-{uuid.uuid4().hex[:8]}"
    token = gateway.token
    seen: list[str] = []

    def run(document: str, **variables: Any) -> str:
        text = _post(gateway, document, token, **variables)
        seen.append(text)
        return text

    await asyncio.to_thread(run, SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    subscriber = await TransportWsClient.connect(gateway.ws_url, token=token)
    await subscriber.subscribe("changes", CHANGES, tenantId=tenant_id)

    def configure() -> None:
        run(UPDATE_EHR, tenantId=tenant_id,
            input={"epic": {"soapUsername": "svc", "soapPassword": MARKER}})  # fmt: skip
        # Refused (the username is too long): the password must not be echoed in the error.
        too_long = {"soapUsername": "x" * 5000, "soapPassword": REFUSED_MARKER}
        refused = run(UPDATE_EHR, tenantId=tenant_id, input={"epic": too_long})
        assert "ValidationFailed" in refused
        # A GraphQL type error, whose message would quote the submitted value.
        assert '"errors"' in run(WRONG_TYPE, tenantId=tenant_id, version=REFUSED_MARKER)
        editor = gateway_token_for(tmp_path, tenant_id)
        denied = _post(gateway, UPDATE_EHR, editor, tenantId=tenant_id,
                       input={"epic": {"soapPassword": DENIED_MARKER}})  # fmt: skip
        assert "FORBIDDEN" in denied
        seen.append(denied)
        oauth = {"epicClientId": "client", "oauthTokenUrl": "http://127.0.0.1:9/t"}
        run(UPDATE_OAUTH, tenantId=tenant_id, input={"epic": oauth})
        run(GENERATE_SIGNING_KEY, tenantId=tenant_id)
        run(TEST_TOKEN, tenantId=tenant_id)
        # Ellkay's keys are credentials too.
        run(SELECT_PROVIDER, tenantId=ellkay_id, provider="ELLKAY")
        keys = {"subscriberKey": SUBSCRIBER_MARKER, "siteServiceKey": SITE_SERVICE_MARKER}
        run(UPDATE_EHR, tenantId=ellkay_id, input={"ellkay": keys})
        refused_keys = {"subscriberKey": REFUSED_MARKER, "slotSearchMaxDays": -1}
        assert "ValidationFailed" in run(
            UPDATE_EHR, tenantId=ellkay_id, input={"ellkay": refused_keys}
        )
        ellkay_editor = gateway_token_for(tmp_path, ellkay_id)
        denied_input = {"ellkay": {"siteServiceKey": DENIED_MARKER}}
        denied_keys = _post(
            gateway, UPDATE_EHR, ellkay_editor, tenantId=ellkay_id, input=denied_input
        )
        assert "FORBIDDEN" in denied_keys
        seen.append(denied_keys)
        # And so is the secret of a Cloudflare Access service token.
        token_input = {"cfAccessClientId": "c.access", "cfAccessClientSecret": CF_ACCESS_MARKER}
        run(UPDATE_HEADERS, tenantId=ellkay_id, input={"ellkay": token_input})

    ellkay_id = f"{tenant_id}-ellkay"
    await asyncio.to_thread(configure)
    versions = []
    while len(versions) < 4:
        versions.append((await subscriber.next_data("changes"))["configurationChanged"])
        seen.append(json.dumps(versions[-1]))
    await subscriber.close()
    latest = versions[-1]["version"]

    def read_everything() -> str:
        settings = run(INTEGRATION_SETTINGS, tenantId=tenant_id)
        run(READINESS, tenantId=tenant_id)
        run(HISTORY_WITH_SETTINGS, tenantId=tenant_id)
        run(EVERYTHING_ELSE, tenantId=tenant_id, to=latest)
        run(INTEGRATION_SETTINGS, tenantId=ellkay_id)
        run(READINESS, tenantId=ellkay_id)
        run(HISTORY_WITH_SETTINGS, tenantId=ellkay_id)
        run(EVERYTHING_ELSE, tenantId=ellkay_id, to=3)
        seen.append(httpx.get(f"{gateway.url}/tenants/{tenant_id}/.well-known/jwks.json").text)
        seen.append(httpx.get(f"{gateway.url}/healthz").text)
        return settings

    settings = json.loads(await asyncio.to_thread(read_everything))["data"]
    assert settings["integrationSettings"]["ehr"]["soapPassword"]["isSet"] is True
    log = gateway.stop()  # everything the gateway logged
    assert "denied: updateEhrSettings" in log  # the log is really captured
    seen.append(log)

    database = _database_name(gateway)
    stored = _database_dump(database_url, database)
    private_exponent = _private_exponent(database_url, database, tenant_id, tmp_path)
    # The secrets really are stored (as ciphertext): the test is not vacuous.
    assert _soap_password(database_url, database, tenant_id, tmp_path) == MARKER
    assert _ellkay_key(database_url, database, ellkay_id, tmp_path) == SUBSCRIBER_MARKER
    assert _cf_access_secret(database_url, database, ellkay_id, tmp_path) == CF_ACCESS_MARKER

    everything = "\n".join(seen)
    markers = (
        MARKER, DENIED_MARKER, REFUSED_MARKER, SUBSCRIBER_MARKER, SITE_SERVICE_MARKER,
        CF_ACCESS_MARKER,
    )  # fmt: skip
    for marker in (*markers, private_exponent):
        assert marker not in everything
        assert marker not in stored


def gateway_token_for(data_dir: Path, tenant_id: str) -> str:
    from ehr_gateway.runtime import dev_tokens

    return dev_tokens.mint(data_dir, tenants=[tenant_id], roles=["editor"], subject="editor")


def _database_name(gateway: GatewayProcess) -> str:
    return str(gateway.settings["EHRGW_DATABASE"])


def _tenant_document(database_url: str, database: str, tenant_id: str) -> dict[str, Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(database_url)
    try:
        document = client[database]["tenant_settings"].find_one({"_id": tenant_id})
    finally:
        client.close()
    assert document is not None
    return document


def _soap_password(database_url: str, database: str, tenant_id: str, data_dir: Path) -> str:
    epic = _tenant_document(database_url, database, tenant_id)["providers"]["EPIC"]
    secret = StoredSecret.model_validate(epic["ehr"]["soapPassword"])
    return SecretBox.from_data_dir(data_dir).open(secret, f"{tenant_id}:EPIC:EHR:soapPassword")


def _ellkay_key(database_url: str, database: str, tenant_id: str, data_dir: Path) -> str:
    ellkay = _tenant_document(database_url, database, tenant_id)["providers"]["ELLKAY"]
    secret = StoredSecret.model_validate(ellkay["ehr"]["subscriberKey"])
    return SecretBox.from_data_dir(data_dir).open(secret, f"{tenant_id}:ELLKAY:EHR:subscriberKey")


def _cf_access_secret(database_url: str, database: str, tenant_id: str, data_dir: Path) -> str:
    ellkay = _tenant_document(database_url, database, tenant_id)["providers"]["ELLKAY"]
    secret = StoredSecret.model_validate(ellkay["headers"]["cfAccessClientSecret"])
    binding = f"{tenant_id}:ELLKAY:HEADERS:cfAccessClientSecret"
    return SecretBox.from_data_dir(data_dir).open(secret, binding)


def _private_exponent(database_url: str, database: str, tenant_id: str, data_dir: Path) -> str:
    epic = _tenant_document(database_url, database, tenant_id)["providers"]["EPIC"]
    key = epic["signingKeys"][0]
    secret = StoredSecret.model_validate(key["privateJwk"])
    opened = SecretBox.from_data_dir(data_dir).open(
        secret, f"{tenant_id}:EPIC:signing-key:{key['kid']}"
    )
    exponent: str = json.loads(opened)["d"]
    return exponent
