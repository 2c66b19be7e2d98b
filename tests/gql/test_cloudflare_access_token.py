"""An EHR behind Cloudflare Access is reached with a service token, sent as the
CF-Access-Client-Id and CF-Access-Client-Secret headers. The token has settings of its own in
the header block of Athena, Cerner and Ellkay: the secret is a credential, so it is a write-only
secret (stored encrypted, shown as set or not, never exported), which a custom header cannot be
(every viewer, export and history entry shows one as plain text); the id is half of it, guarded
as the secret is. Both are set together. As custom headers both names stay reserved, the
refusal naming the settings to use; so does the rest of Cf-Access-*, which is what Access tells
the application behind it about the user it signed in."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from bson import json_util
from pymongo import AsyncMongoClient

from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import EXPORT_SETTINGS, READINESS, SELECT_PROVIDER_BY_NAME

CLIENT_ID = "8f1c2a9b4d7e6f50a1b2c3d4e5f60718.access"
CLIENT_SECRET = f"cf-{uuid.uuid4().hex}{uuid.uuid4().hex}"

SAVE_TOKEN = """
mutation SaveToken($tenantId: ID!, $input: HeaderSettingsInput!) {
  updateHeaderSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
TOKEN = """
query Token($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    headers {
      ... on GenericHeaderSettings {
        cfAccessClientId
        cfAccessClientSecret { isSet fingerprint }
        customHeaders { name value }
      }
    }
  }
  settingsHistory(tenantId: $tenantId, first: 10) { versions { changedPaths } }
  exportSettings(tenantId: $tenantId)
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $doc: JSON!) {
  importSettings(tenantId: $tenantId, document: $doc) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""


def token(**fields: Any) -> dict[str, Any]:
    return {"athena": fields}


async def athena_tenant(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="ATHENA")


async def save(gateway: Gateway, tenant_id: str, **fields: Any) -> dict[str, Any]:
    data = await gateway.execute(SAVE_TOKEN, tenantId=tenant_id, input=token(**fields))
    result: dict[str, Any] = data["updateHeaderSettings"]
    return result


async def test_the_token_is_saved_with_its_secret_write_only(
    gateway: Gateway, tenant_id: str
) -> None:
    await athena_tenant(gateway, tenant_id)
    integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])

    saved = await save(
        integrator, tenant_id, cfAccessClientId=CLIENT_ID, cfAccessClientSecret=CLIENT_SECRET
    )

    assert saved == {"__typename": "SettingsSaved"}
    viewer = gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    read = await viewer.execute(TOKEN, tenantId=tenant_id)
    headers = read["integrationSettings"]["headers"]
    assert headers["cfAccessClientId"] == CLIENT_ID
    assert headers["cfAccessClientSecret"]["isSet"] is True
    assert len(headers["cfAccessClientSecret"]["fingerprint"]) == 16
    assert (
        "providers.ATHENA.headers.cfAccessClientSecret"
        in (read["settingsHistory"]["versions"][0]["changedPaths"])
    )
    assert CLIENT_SECRET not in json.dumps(read)
    assert "cfAccessClientSecret" not in json.dumps(read["exportSettings"])
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(gateway.config.mongodb_url)
    try:
        db = client[TEST_DATABASE]
        stored = [
            json_util.dumps(row)
            for name in await db.list_collection_names()
            for row in await db[name].find({"tenantId": tenant_id}).to_list()
        ]
        document = await db["tenant_settings"].find_one({"_id": tenant_id})
    finally:
        await client.close()
    assert stored and CLIENT_SECRET not in "\n".join(stored)
    assert document is not None
    sealed = document["providers"]["ATHENA"]["headers"]["cfAccessClientSecret"]
    assert sealed["ciphertext"] and CLIENT_SECRET not in json_util.dumps(document)


async def test_an_editor_may_not_set_the_token(gateway: Gateway, tenant_id: str) -> None:
    await athena_tenant(gateway, tenant_id)
    editor = gateway.as_caller(tenants=[tenant_id], roles=["editor"])

    body = await editor.post(
        SAVE_TOKEN,
        tenantId=tenant_id,
        input=token(cfAccessClientId=CLIENT_ID, cfAccessClientSecret=CLIENT_SECRET),
    )

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["extensions"]["permission"] == "secrets:write"
    assert CLIENT_SECRET not in json.dumps(body)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"cfAccessClientId": CLIENT_ID}, id="id-alone"),
        pytest.param({"cfAccessClientSecret": CLIENT_SECRET}, id="secret-alone"),
    ],
)
async def test_half_a_token_is_refused_on_the_half_sent(
    gateway: Gateway, tenant_id: str, fields: dict[str, str]
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, **fields)

    assert result["__typename"] == "ValidationFailed"
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", *fields], "CF_ACCESS_TOKEN_INCOMPLETE")
    ]
    assert result["errors"][0]["message"] == (
        "cfAccessClientId and cfAccessClientSecret are set together or not at all"
    )


async def test_a_secret_pasted_with_white_space_around_it_is_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(
        gateway, tenant_id, cfAccessClientId=CLIENT_ID, cfAccessClientSecret=f"{CLIENT_SECRET} "
    )

    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "cfAccessClientSecret"], "SURROUNDING_WHITESPACE")
    ]


async def test_a_secret_no_header_can_carry_is_refused(gateway: Gateway, tenant_id: str) -> None:
    """The secret is sent as the CF-Access-Client-Secret header: text outside printable ASCII
    (an accented letter, a zero-width space between two halves of a paste) could be stored and
    counted as set, and fail every call to the EHR."""
    await athena_tenant(gateway, tenant_id)
    integrator = gateway.as_caller(tenants=[tenant_id], roles=["integrator"])

    for secret in (f"{CLIENT_SECRET}\u200b{CLIENT_SECRET}", f"{CLIENT_SECRET}é"):
        result = await save(
            integrator, tenant_id, cfAccessClientId=CLIENT_ID, cfAccessClientSecret=secret
        )
        assert [(error["path"], error["code"]) for error in result["errors"]] == [
            (["input", "athena", "cfAccessClientSecret"], "INVALID_HEADER_VALUE")
        ], result
        assert secret not in str(result)


@pytest.mark.parametrize("name", ["CF-Access-Client-Id", "cf_access_client_secret"])
async def test_the_token_as_a_custom_header_is_refused_naming_its_settings(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, customHeaders=[{"name": name, "value": "v"}])

    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "customHeaders", "0", "name"], "RESERVED_HEADER")
    ]
    assert "cfAccessClientId and cfAccessClientSecret" in result["errors"][0]["message"]


async def test_other_cf_access_headers_stay_reserved(gateway: Gateway, tenant_id: str) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(
        gateway, tenant_id, customHeaders=[{"name": "Cf-Access-Jwt-Assertion", "value": "e30"}]
    )

    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"]
    assert "authenticated" in result["errors"][0]["message"]


async def test_an_import_carries_the_id_alone_and_readiness_names_the_secret(
    gateway: Gateway, tenant_id: str
) -> None:
    await athena_tenant(gateway, tenant_id)
    await save(gateway, tenant_id, cfAccessClientId=CLIENT_ID, cfAccessClientSecret=CLIENT_SECRET)
    exported = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))["exportSettings"]
    other = f"{tenant_id}-copy"

    imported = await gateway.execute(IMPORT, tenantId=other, doc=exported)

    assert imported["importSettings"]["__typename"] == "SettingsSaved", imported
    readiness = (await gateway.execute(READINESS, tenantId=other))["readiness"]
    assert {
        "block": "HEADERS",
        "path": ["headers", "cfAccessClientSecret"],
        "state": "MISSING",
        "message": "needed to reach the EHR behind Cloudflare Access: cfAccessClientId is set; "
        "set the secret on this tenant (exports never carry secrets)",
    } in readiness["missing"]
