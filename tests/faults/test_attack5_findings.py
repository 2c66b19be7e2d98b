"""Findings of the fifth security round: each test is an attack that breaks a claim of the
README, and fails until the hole is closed. Tests that leave malformed data in the database have
a database of their own, so that no other test's gateway meets it."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehr_gateway.server.config import GatewayConfig
from ehr_gateway.server.logs import escape_controls
from tests.conftest import Gateway, open_gateway
from tests.documents import CREATE_EXTERNAL_GATEWAY, SELECT_EPIC, SELECT_PROVIDER
from tests.gql.test_custom_headers import save_header
from tests.gql.test_external_gateway import GATEWAY_ID_PATH, RESOLVE, _two_epic_tenants
from tests.gql.test_tenants_query import directory_config
from tests.older_gateway import as_older_gateway_left_it
from tests.servers import serve_on_loopback

SET_FHIR_PREFIX = """
mutation SetFhirPrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: {epic: {urlPrefix: $prefix}}) {
    __typename
  }
}
"""
AUDIT_LOG_VERSIONS = """
query AuditLogVersions($tenantId: ID!) {
  auditLog(tenantId: $tenantId, first: 50) { entries { version operation } }
}
"""
VERIFY = """
query Verify($tenantId: ID!) {
  auditIntegrity(tenantId: $tenantId) {
    intact complete
    firstBrokenLink { log version sequence entryId reason }
  }
}
"""
TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url reachable ok failure { code message } }
  }
}
"""
HISTORY = "tenant_settings_history"
AUDIT = "audit_log"
# One past GraphQL's Int (a 32-bit signed integer), which a BSON int64 holds without complaint.
PAST_GRAPHQL_INT = 2**31

# (collection, which entry of a tenant with versions 1-3, the field a database writer sets, and
# the query that shows it)
RETYPED_TO_A_WIDE_INTEGER = {
    "history version": (HISTORY, {"version": 3}, "version", VERIFY),
    "newest audit sequence": (AUDIT, {"seq": 3}, "seq", VERIFY),
    "audit entry version": (AUDIT, {"seq": 2}, "version", AUDIT_LOG_VERSIONS),
}


@pytest.mark.parametrize("edit", list(RETYPED_TO_A_WIDE_INTEGER))
async def test_an_entry_number_past_graphql_int_is_tampering_not_an_internal_error(
    database_url: str, tmp_path: Path, tenant_id: str, edit: str
) -> None:
    """Attack (database writer): set a history entry's `version`, or an audit entry's `seq` or
    `version`, to 2**31, an integer BSON stores as int64 but GraphQL's Int cannot carry. The
    type check of the last round looks at the Python type only (int is fine), so the entry is
    read as well-formed and its number reaches an `Int` field: auditIntegrity (firstBrokenLink
    version or sequence) and auditLog (entries.version) answer INTERNAL_SERVER_ERROR.

    Breaks README, Tamper-evident history and audit log: "An entry whose fields a database
    writer gave types no gateway writes ... is named like any other broken link" and "auditLog
    answers HISTORY_TAMPERED for a page holding such an entry instead of showing it"; and
    the last round's claim that nothing of the kind is a 500."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=tenant_id)  # v1
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R4")  # v2
        await gateway.execute(SET_FHIR_PREFIX, tenantId=tenant_id, prefix="/FHIR/R3")  # v3
    collection, entry, field, document = RETYPED_TO_A_WIDE_INTEGER[edit]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        changed = await client[config.database][collection].update_one(
            {"tenantId": tenant_id, **entry}, {"$set": {field: PAST_GRAPHQL_INT}}
        )
        assert changed.modified_count == 1
        async for replica in open_gateway(config):  # nothing cached: reads what is stored
            answer = await replica.post(document, tenantId=tenant_id)
    finally:
        await client.close()

    codes = [error["extensions"]["code"] for error in answer.get("errors", [])]
    assert "INTERNAL_SERVER_ERROR" not in codes, answer


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("[fec0::1]", id="site-local fec0::/10"),
        pytest.param("[::ffff:0:7f00:1]", id="IPv4-translated ::ffff:0:127.0.0.1"),
        pytest.param("[::ffff:0:a00:1]", id="IPv4-translated ::ffff:0:10.0.0.1"),
    ],
)
async def test_ipv6_forms_of_private_addresses_are_refused_before_connecting(
    gateway: Gateway, tenant_id: str, address: str
) -> None:
    """Attack (integrator, or anyone who can get a URL called): save the EHR base URL with an
    IPv6 literal the address check calls public: the deprecated site-local fec0::/10 (the
    RFC 1918 of early IPv6, still routed inside some networks) or an IPv4-translated address
    ::ffff:0:a.b.c.d (RFC 2765 SIIT, which a stateless translator delivers to a.b.c.d, here
    127.0.0.1 or 10.0.0.1). The gateway connects (UNREACHABLE here, only because this host has
    no route) instead of refusing with PRIVATE_ADDRESS; behind a translator or on a site-local
    network the call reaches the private host.

    Breaks README, Calls the gateway makes: "no loopback, link-local or private addresses ...
    An IPv6 address that leads to an IPv4 address ... is judged by that IPv4 address too"."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    connection = {"name": "EHR", "baseUrl": f"https://{address}/api", "environment": "PRODUCTION"}
    saved = await gateway.execute(
        CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection
    )
    assert saved["createExternalGateway"]["__typename"] == "SettingsSaved", saved

    tested = await gateway.execute(TEST_CONNECTION, tenantId=tenant_id)

    failure = tested["testExternalGatewayConnection"]["failure"]
    assert failure["code"] == "PRIVATE_ADDRESS", failure


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Forwarded-For", id="request-ip's Forwarded-For"),
        pytest.param("Forwarded_For", id="the same, CGI spelling"),
        pytest.param("Cf-Pseudo-IPv4", id="Cloudflare's Pseudo IPv4"),
    ],
)
async def test_a_client_address_header_under_another_spelling_is_reserved(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """Attack (editor): add a custom header `Forwarded-For: 10.0.0.1`. Client-address libraries
    (npm's request-ip, PHP's HTTP_FORWARDED_FOR snippets) read Forwarded-For beside X-Forwarded
    and Forwarded, both of which the gateway reserves, and Cloudflare's Pseudo IPv4 passes the
    client's address in Cf-Pseudo-IPv4 (request-ip reads it too); these spellings are saved, so
    an editor names the EHR's caller to an address allow-list or rate limit behind the EHR's
    front end.

    Breaks README, Security, Headers a proxy interprets: "client-address and signed-in-user
    headers under any vendor's spelling" are refused (RESERVED_HEADER)."""
    result = await save_header(gateway, tenant_id, name, "10.0.0.1")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"], result


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("X-Auth-Given-Name", id="Gatekeeper add-claims given_name"),
        pytest.param("X-Auth-Preferred-Username", id="Gatekeeper add-claims preferred_username"),
        pytest.param("OIDC_userinfo_json", id="mod_auth_openidc OIDCPassUserInfoAs json"),
        pytest.param("OIDC_userinfo_jwt", id="mod_auth_openidc OIDCPassUserInfoAs jwt"),
    ],
)
async def test_identity_headers_of_the_named_sign_in_proxies_are_reserved(
    gateway: Gateway, tenant_id: str, name: str
) -> None:
    """Attack (editor): add a custom header a sign-in proxy in front of the EHR's API uses to
    tell the application who signed in. Keycloak Gatekeeper / Louketo injects every claim named
    by --add-claims as X-Auth-<Claim> (given_name: X-Auth-Given-Name), and mod_auth_openidc
    passes the whole user info as OIDC_userinfo_json or OIDC_userinfo_jwt beside OIDC_CLAIM_*.
    Both proxies are named by the README, yet only X-Auth-Username/-Userid/-Roles/... and
    OIDC_CLAIM_* are refused: these are saved, so an editor names whomever he likes.

    Breaks README, Security, Headers a proxy interprets: signed-in-user headers "in the
    spellings of ... Keycloak Gatekeeper ... mod_auth_openidc" are refused."""
    result = await save_header(gateway, tenant_id, name, "admin@hospital.example")

    assert result["__typename"] == "ValidationFailed", result
    assert [error["code"] for error in result["errors"]] == ["RESERVED_HEADER"], result


def test_the_arabic_letter_mark_from_the_database_is_escaped() -> None:
    """Attack (database writer): put U+061C ARABIC LETTER MARK, a bidirectional control like
    U+200E/U+200F (which are escaped), in a tenant id or a secret's path; `verify-audit`,
    `chain-legacy-history` and `rotate-secrets` print it through escape_controls, which leaves
    it as it is, so it reorders what the operator's terminal shows around it.

    Breaks README, Security, Logs: text lines escape "bidirectional overrides (`\\u202e`)",
    "so do verify-audit, chain-legacy-history and rotate-secrets for what they print from the
    database", and the brief's claim that escape_controls escapes control and bidi characters."""
    printed = escape_controls("tenant clinic-a\u061c: intact")

    assert "\u061c" not in printed, repr(printed)


@pytest.mark.parametrize(
    "decoy_tenant",
    [
        pytest.param(["0"], id="a list tenant"),
        pytest.param([], id="an empty list tenant"),
    ],
)
async def test_a_swapped_id_beside_a_history_decoy_with_a_list_tenant_resolves_to_the_owner(
    database_url: str, tmp_path: Path, decoy_tenant: Any
) -> None:
    """Attack (database writer): swap two Epic tenants' gateway ids in their documents, and
    insert one history entry holding the owner's id whose `tenantId` is a list (even an
    empty one). The walk over history asks for text tenants with a range (`$gt: ""`), but a
    range matches a list whose element is text (MongoDB) and, on the embedded server, any list,
    code, date, binary, ObjectId or object, and lists sort before text: the first row is the
    decoy, which is not text, and the walk stops there. The owner's id resolves to nothing
    (the Epic routes answer 404 for the tenant's real id).

    Breaks README, External gateway ids resolve to their real owner: "the tenants whose history
    holds it are checked too, walking only text tenant ids (an entry whose tenant is null or a
    number, which sorts first, cannot end the walk before the owner ...)"; the last round's
    fix 2 (an id edited out of its owner's document resolves to the owner)."""
    config = directory_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        ids = await _two_epic_tenants(gateway)
        owner, other = ids
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            database = writer[config.database]
            documents = database["tenant_settings"]
            await documents.update_one({"_id": owner}, {"$set": {GATEWAY_ID_PATH: ids[other]}})
            await documents.update_one({"_id": other}, {"$set": {GATEWAY_ID_PATH: ids[owner]}})
            await database[HISTORY].insert_one(
                {
                    "tenantId": decoy_tenant,
                    "version": 1,
                    "settings": {
                        "providers": {
                            "EPIC": {"externalGateway": {"externalGatewayId": ids[owner]}}
                        }
                    },
                }
            )
        finally:
            await writer.close()

        resolved = await gateway.execute(RESOLVE, id=ids[owner])

    assert resolved["resolveExternalGateway"] == {"tenantId": owner, "provider": "EPIC"}, resolved


async def test_an_unchained_decoy_with_a_null_tenant_hides_no_tenant_from_the_start_up_warning(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack (database writer): strip the chain from a tenant's history (its id begins with a
    capital, as "Memorial-..." does), and insert one unchained history entry whose `tenantId` is
    null. The start-up walk over unchained tenants sorts by tenant, meets the decoy first (null
    sorts before text), turns it into the text "None" and continues after that text, so every
    tenant id that sorts below it (capitals, digits) is skipped: the warning names the decoy
    and leaves the stripped tenant out, and counts one tenant.

    Breaks README, Tamper-evident history and audit log: "at start-up the gateway logs one
    warning on ehr_gateway.security naming how many tenants (counted up to 100) and the first
    five ids"; the same kind of walk the last round fixed for gateway ids."""
    config = GatewayConfig(
        mongodb_url=database_url, database=f"unadopted_{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path, public_base_url="https://gateway.example.test",
    )  # fmt: skip
    stripped = f"Memorial-{uuid.uuid4().hex[:6]}"
    async for gateway in open_gateway(config):
        await gateway.execute(SELECT_EPIC, tenantId=stripped)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await as_older_gateway_left_it(client[config.database], stripped)
        await client[config.database][HISTORY].insert_one(
            {"tenantId": None, "version": 1, "settings": {}}
        )
    finally:
        await client.close()
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        async for _ in open_gateway(config):
            pass

    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "ehr_gateway.security" and "without a chain link" in record.getMessage()
    ]
    assert len(warnings) == 1, warnings
    assert stripped in warnings[0], warnings[0]


CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
# The Cookie header of each metadata request the shared EHR host received, in order.
COOKIES_RECEIVED: list[str | None] = []


async def _metadata_setting_a_cookie(request: Request) -> Response:
    COOKIES_RECEIVED.append(request.headers.get("cookie"))
    response = JSONResponse(CAPABILITY, media_type="application/fhir+json")
    # What a load balancer's stickiness or an EHR's session does on its first answer.
    response.set_cookie("ehr-session", f"for-{request.url.path.split('/')[1]}")
    return response


SHARED_EHR_HOST = Starlette(
    routes=[
        Route("/first-tenant/metadata", _metadata_setting_a_cookie),
        Route("/second-tenant/metadata", _metadata_setting_a_cookie),
    ]
)


async def test_a_cookie_one_tenants_ehr_sets_is_not_sent_on_another_tenants_calls(
    local_gateway: Gateway,
) -> None:
    """Attack (integrator of a tenant that shares an EHR host with another tenant, as every
    tenant of one multi-tenant EHR API does): the gateway's outbound calls go through one
    process-wide httpx client, whose cookie jar keeps every Set-Cookie an EHR answers and sends
    it on every later call to that host, whichever tenant makes it. The second tenant's
    connection test carries the session cookie the EHR set for the first tenant's: one
    tenant's session state is kept in memory and replayed on another tenant's behalf.

    Breaks README, Who may do what: "another tenant is never readable, writable or
    subscribable, whatever the roles" (here the first tenant's EHR session is used for the
    second), and Calls the gateway makes: every outbound call goes through one policy that
    keeps nothing of a call but its result (the OAuth test: "the access token itself is never
    returned or kept")."""
    COOKIES_RECEIVED.clear()
    first, second = (f"cookie-{n}-{uuid.uuid4().hex[:6]}" for n in range(2))
    async with serve_on_loopback(SHARED_EHR_HOST) as url:
        for tenant_id, path in ((first, "first-tenant"), (second, "second-tenant")):
            await local_gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
            connection = {"name": "EHR", "baseUrl": f"{url}/{path}", "environment": "PRODUCTION"}
            saved = await local_gateway.execute(
                CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=connection
            )
            assert saved["createExternalGateway"]["__typename"] == "SettingsSaved", saved
            tested = await local_gateway.execute(TEST_CONNECTION, tenantId=tenant_id)
            assert tested["testExternalGatewayConnection"]["ok"] is True, tested

    assert len(COOKIES_RECEIVED) == 2, COOKIES_RECEIVED
    assert COOKIES_RECEIVED[1] is None, COOKIES_RECEIVED
