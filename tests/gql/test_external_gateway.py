"""createExternalGateway, regenerateExternalGatewayId, resolveExternalGateway and
testExternalGatewayConnection against a real FHIR server on loopback."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, Code, ObjectId
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ehr_gateway.server.config import GatewayConfig
from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_PROVIDER, UPDATE_FHIR
from tests.gql.test_tenants_query import directory_config
from tests.own_database import own_database
from tests.servers import serve_on_loopback

REGENERATE = """
mutation Regenerate($tenantId: ID!) {
  regenerateExternalGatewayId(tenantId: $tenantId) {
    __typename
    ... on SettingsSaved { settings { externalGateway { externalGatewayId basePathUrl name } } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
RESOLVE = """
query Resolve($id: ID!) { resolveExternalGateway(externalGatewayId: $id) { tenantId provider } }
"""
TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest {
      url reachable ok fhirVersion softwareName softwareVersion failure { code message }
    }
    ... on ValidationFailed { errors { path code } }
  }
}
"""
CAPABILITY = {
    "resourceType": "CapabilityStatement",
    "fhirVersion": "4.0.1",
    "software": {"name": "Loopback EHR", "version": "2.5"},
}


@pytest.fixture
async def own_config(database_url: str, tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    """A database of its own for a test that leaves a database writer's entries behind."""
    async with own_database(database_url, tmp_path) as config:
        yield config


async def metadata(request: Request) -> Response:
    return JSONResponse(CAPABILITY, media_type="application/fhir+json")


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return JSONResponse(CAPABILITY)


async def big(request: Request) -> Response:
    return Response(json.dumps({"padding": "x" * 2_000_000}), media_type="application/json")


async def loop(request: Request) -> Response:
    return RedirectResponse(request.url.path, status_code=302)


FHIR_SERVER = Starlette(
    routes=[
        Route("/api/FHIR/R4/metadata", metadata),
        Route("/html/metadata", lambda request: HTMLResponse("<html>login</html>")),
        Route("/patient/metadata", lambda request: JSONResponse({"resourceType": "Patient"})),
        Route("/slow/metadata", slow),
        Route("/big/metadata", big),
        Route("/loop/metadata", loop),
        Route("/down/metadata", lambda request: JSONResponse({}, status_code=503)),
    ]
)


@pytest.fixture
async def fhir_server() -> AsyncIterator[str]:
    async with serve_on_loopback(FHIR_SERVER) as url:
        yield url


@pytest.fixture
async def local_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway allowed to call servers on this machine over plain http, as in local testing."""
    config = gateway_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True,
        outbound_timeout_s=1.0,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        yield gateway


async def _connect(gateway: Gateway, tenant_id: str, base_url: str, provider: str = "EPIC") -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    data = await gateway.execute(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id,
        connection={"name": "EHR", "baseUrl": base_url, "environment": "NON_PRODUCTION"},
    )  # fmt: skip
    assert data["createExternalGateway"]["__typename"] == "SettingsSaved", data


async def _test(gateway: Gateway, tenant_id: str) -> dict[str, object]:
    data = await gateway.execute(TEST_CONNECTION, tenantId=tenant_id)
    result: dict[str, object] = data["testExternalGatewayConnection"]
    return result


async def test_a_fhir_server_reports_its_version_and_software(
    local_gateway: Gateway, fhir_server: str, tenant_id: str
) -> None:
    await _connect(local_gateway, tenant_id, f"{fhir_server}/api")
    await local_gateway.execute(
        UPDATE_FHIR, tenantId=tenant_id, input={"epic": {"urlPrefix": "/FHIR/R4"}}
    )
    assert await _test(local_gateway, tenant_id) == {
        "__typename": "GatewayConnectionTest",
        "url": f"{fhir_server}/api/FHIR/R4/metadata",
        "reachable": True,
        "ok": True,
        "fhirVersion": "4.0.1",
        "softwareName": "Loopback EHR",
        "softwareVersion": "2.5",
        "failure": None,
    }


@pytest.mark.parametrize(
    ("path", "reachable", "code"),
    [
        ("/html", True, "NOT_JSON"),
        ("/patient", True, "NOT_FHIR"),
        ("/slow", False, "TIMEOUT"),
        ("/big", True, "RESPONSE_TOO_LARGE"),
        ("/loop", True, "TOO_MANY_REDIRECTS"),
        ("/down", True, "HTTP_STATUS"),
    ],
)
async def test_a_server_that_is_not_a_working_fhir_server_is_a_precise_failure(
    local_gateway: Gateway, fhir_server: str, tenant_id: str, path: str, reachable: bool, code: str
) -> None:
    await _connect(local_gateway, tenant_id, f"{fhir_server}{path}", provider="ELLKAY")
    result = await _test(local_gateway, tenant_id)
    assert (result["ok"], result["failure"]["code"]) == (False, code)  # type: ignore[index]
    assert result["reachable"] is reachable


async def test_an_unreachable_host_is_a_failure_not_an_error(
    local_gateway: Gateway, tenant_id: str
) -> None:
    await _connect(local_gateway, tenant_id, "http://127.0.0.1:9/api")
    result = await _test(local_gateway, tenant_id)
    assert result["failure"]["code"] == "UNREACHABLE"  # type: ignore[index]


async def test_by_default_the_gateway_refuses_to_call_local_addresses(
    gateway: Gateway, fhir_server: str, tenant_id: str
) -> None:
    port = fhir_server.rsplit(":", 1)[1]
    await _connect(gateway, tenant_id, f"https://127.0.0.1:{port}/api")
    result = await _test(gateway, tenant_id)
    assert result["failure"]["code"] == "PRIVATE_ADDRESS"  # type: ignore[index]


async def test_testing_without_a_gateway_connection_is_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    assert await _test(gateway, tenant_id) == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["externalGateway"], "code": "NOT_CONFIGURED"}],
    }


async def test_regenerating_the_id_rotates_it_and_the_old_one_stops_resolving(
    gateway: Gateway, tenant_id: str
) -> None:
    await _connect(gateway, tenant_id, "https://ehr.example.test/api")
    before = await gateway.execute(
        "query($t: ID!) { integrationSettings(tenantId: $t) "
        "{ externalGateway { externalGatewayId } } }",
        t=tenant_id,
    )
    old_id = before["integrationSettings"]["externalGateway"]["externalGatewayId"]
    assert (await gateway.execute(RESOLVE, id=old_id))["resolveExternalGateway"] == {
        "tenantId": tenant_id,
        "provider": "EPIC",
    }

    data = await gateway.execute(REGENERATE, tenantId=tenant_id)
    rotated = data["regenerateExternalGatewayId"]["settings"]["externalGateway"]
    new_id = rotated["externalGatewayId"]
    assert new_id != old_id
    assert rotated["basePathUrl"] == f"https://gateway.example.test/gateways/{new_id}"
    assert rotated["name"] == "EHR"
    assert (await gateway.execute(RESOLVE, id=old_id))["resolveExternalGateway"] is None
    assert (await gateway.execute(RESOLVE, id=new_id))["resolveExternalGateway"] == {
        "tenantId": tenant_id,
        "provider": "EPIC",
    }


async def test_regenerating_without_a_gateway_is_refused(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="CERNER")
    data = await gateway.execute(REGENERATE, tenantId=tenant_id)
    assert data["regenerateExternalGatewayId"] == {
        "__typename": "ValidationFailed",
        "errors": [{"path": ["externalGateway"], "code": "NOT_CONFIGURED"}],
    }


async def test_text_that_cannot_be_a_gateway_id_resolves_to_nothing(gateway: Gateway) -> None:
    # A lone surrogate, which JSON can carry, among characters an id can have.
    for text in ("0000000\ud80000000000", "not an id at all", "x" * 65):
        assert (await gateway.execute(RESOLVE, id=text))["resolveExternalGateway"] is None


ID_QUERY = """
query GatewayId($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { externalGatewayId } }
}
"""
GATEWAY_ID_PATH = "providers.EPIC.externalGateway.externalGatewayId"


async def test_an_id_copied_into_other_tenants_documents_still_resolves_to_its_tenant(
    gateway: Gateway, database_url: str
) -> None:
    """A database writer copies one tenant's gateway id into the documents of tenants created
    before it (their copies come first on the index): each document holding the id is checked,
    and the id resolves to the tenant whose checked settings hold it."""
    *copies, owner = [f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    for tenant in (*copies, owner):
        await _connect(gateway, tenant, "https://ehr.example.test/api")
    read = await gateway.execute(ID_QUERY, tenantId=owner)
    owner_id = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[TEST_DATABASE]["tenant_settings"].update_many(
            {"_id": {"$in": copies}},
            {"$set": {"providers.EPIC.externalGateway.externalGatewayId": owner_id}},
        )
    finally:
        await writer.close()

    resolved = await gateway.execute(RESOLVE, id=owner_id)

    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}


async def test_an_owners_id_edited_out_of_its_document_still_resolves_to_the_owner(
    gateway: Gateway, database_url: str
) -> None:
    """A database writer swaps the gateway ids of two tenants' documents: the owner's edited
    document is not served (its checked settings, which hold its id, are), and the id resolves
    to the owner, not to the tenant whose document now holds it nor to nothing."""
    owner, other = (f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    ids: dict[str, str] = {}
    for tenant in (owner, other):
        await _connect(gateway, tenant, "https://ehr.example.test/api")
        read = await gateway.execute(ID_QUERY, tenantId=tenant)
        ids[tenant] = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        documents = writer[TEST_DATABASE]["tenant_settings"]
        await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
        await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
    finally:
        await writer.close()

    served = await gateway.execute(ID_QUERY, tenantId=owner)
    resolved = await gateway.execute(RESOLVE, id=ids[owner])

    assert served["integrationSettings"]["externalGateway"]["externalGatewayId"] == ids[owner]
    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}


async def _two_epic_tenants(gateway: Gateway) -> dict[str, str]:
    """Two Epic tenants with an external gateway each: their ids, the owner's first."""
    ids: dict[str, str] = {}
    for tenant in (f"gw-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)):
        await _connect(gateway, tenant, "https://ehr.example.test/api")
        read = await gateway.execute(ID_QUERY, tenantId=tenant)
        ids[tenant] = read["integrationSettings"]["externalGateway"]["externalGatewayId"]
    return ids


# Tenant ids no gateway writes, each as one decoy history entry or many (more than a first
# batch of rows): null and numbers sort before text; a list matches a range on text when it holds
# text (MongoDB), and on the embedded server so does any list, code, date, binary, ObjectId or
# object, and lists sort before text there.
NON_TEXT_TENANTS = {
    "null tenant": [None],
    "numeric tenant": [0],
    "list tenant": [["0"]],
    "list tenant sorting among text": [["zzz"]],
    "empty list tenant": [[]],
    "code tenant": [Code("0")],
    "date tenant": [datetime(2026, 1, 1, tzinfo=UTC)],
    "binary tenant": [Binary(b"0")],
    "object id tenant": [ObjectId()],
    "object tenant": [{"id": "0"}],
    "many list tenants": [[str(n)] for n in range(150)],
}


@pytest.mark.parametrize("decoy_tenants", NON_TEXT_TENANTS.values(), ids=NON_TEXT_TENANTS.keys())
async def test_a_swapped_id_beside_a_history_decoy_without_a_text_tenant_resolves_to_the_owner(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, decoy_tenants: list[Any]
) -> None:
    """A database writer swaps two Epic tenants' gateway ids in their documents, and inserts
    history entries holding the owner's id whose ``tenantId`` is no text (sorting before or among
    the text tenants). The tenants whose history holds the id are still all checked, and the id
    resolves to its owner. A database of its own: the decoys stay behind."""
    config = own_config
    async for gateway in open_gateway(config):
        ids = await _two_epic_tenants(gateway)
        owner, other = ids
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            database = writer[config.database]
            documents = database["tenant_settings"]
            await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
            await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
            await database["tenant_settings_history"].insert_many(
                [
                    {
                        "tenantId": decoy_tenant,
                        "version": 1,
                        "settings": {
                            "providers": {
                                "EPIC": {"externalGateway": {"externalGatewayId": ids[owner]}}
                            }
                        },
                    }
                    for decoy_tenant in decoy_tenants
                ]
            )
        finally:
            await writer.close()

        resolved = await gateway.execute(RESOLVE, id=ids[owner])

    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}, resolved


async def test_a_swapped_id_beside_a_decoy_document_with_an_object_id_resolves_to_the_owner(
    database_url: str, tmp_path: Path
) -> None:
    """A database writer swaps two Epic tenants' gateway ids in their documents and adds one
    settings document whose ``_id`` is an object (MongoDB allows any non-array ``_id``) holding
    the owner's id. The decoy is checked like any document holding the id, without an error,
    and the id resolves to its owner. A database of its own: the decoy stays behind."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        ids = await _two_epic_tenants(gateway)
        owner, other = ids
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            documents = writer[config.database]["tenant_settings"]
            await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
            await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
            await documents.insert_one(
                {
                    "_id": {"tenant": owner},
                    "version": 1,
                    "provider": "EPIC",
                    "providers": {"EPIC": {"externalGateway": {"externalGatewayId": ids[owner]}}},
                }
            )
        finally:
            await writer.close()

        resolved = await gateway.post(RESOLVE, id=ids[owner])

    assert "errors" not in resolved, resolved["errors"]
    assert resolved["data"]["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}
