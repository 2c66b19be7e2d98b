"""Idempotency keys: a retried write with the same key returns the first outcome and stores
nothing twice; the key is scoped to the caller and tenant, checked, and refused for another
request. (tests/faults/test_idempotent_retries.py retries across lost answers, racing replicas
and database outages.)"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from ehr_gateway.gql.schema import schema
from tests.conftest import TEST_DATABASE, Gateway
from tests.documents import SELECT_ELLKAY
from tests.ledger import check_ledger, read_ledger

STORE_VALUE = """
mutation StoreValue($tenantId: ID!, $value: String!, $expectedVersion: Int, $key: String) {
  updateEhrSettings(
    tenantId: $tenantId
    input: {ellkay: {waitlistingStatusName: $value}}
    expectedVersion: $expectedVersion
    idempotencyKey: $key
  ) {
    __typename
    ... on SettingsSaved {
      settings { version ehr { ... on EllkaySettings { waitlistingStatusName } } }
    }
    ... on VersionConflict { currentVersion }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

STORE_VALUE_INLINE = """
mutation StoreValueInline($tenantId: ID!) {
  updateEhrSettings(
    tenantId: $tenantId
    input: {ellkay: {waitlistingStatusName: "inline"}}
    idempotencyKey: "inline-key"
  ) {
    ... on SettingsSaved { settings { version } }
  }
}
"""

ROLL_BACK = """
mutation RollBack($tenantId: ID!, $toVersion: Int!, $key: String) {
  rollbackSettings(tenantId: $tenantId, toVersion: $toVersion, idempotencyKey: $key) {
    __typename
    ... on SettingsSaved { settings { version } }
    ... on ValidationFailed { errors { path code } }
  }
}
"""

TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!, $key: String) {
  testExternalGatewayConnection(tenantId: $tenantId, idempotencyKey: $key) { __typename }
}
"""


async def new_tenant(gateway: Gateway, tenant_id: str) -> None:
    await gateway.execute(SELECT_ELLKAY, tenantId=tenant_id)  # version 1


async def store(gateway: Gateway, tenant_id: str, value: str, **variables: Any) -> dict[str, Any]:
    data = await gateway.execute(STORE_VALUE, tenantId=tenant_id, value=value, **variables)
    result: dict[str, Any] = data["updateEhrSettings"]
    return result


async def store_with_header(
    gateway: Gateway, tenant_id: str, value: str, header: str, **variables: Any
) -> dict[str, Any]:
    response = await gateway.client.post(
        "/graphql",
        json={
            "query": STORE_VALUE,
            "variables": {"tenantId": tenant_id, "value": value, **variables},
        },
        headers={"authorization": f"Bearer {gateway.token}", "idempotency-key": header},
    )
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["updateEhrSettings"]
    return result


def ledger(gateway: Gateway, tenant_id: str, acknowledged: dict[int, Any]) -> dict[int, Any]:
    return check_ledger(
        gateway.config.mongodb_url or "", TEST_DATABASE, tenant_id, acknowledged
    ).values


def error_codes(result: dict[str, Any]) -> list[tuple[list[str], str]]:
    return [(error["path"], error["code"]) for error in result["errors"]]


async def test_a_retry_with_the_same_key_returns_the_version_the_first_attempt_stored(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)
    first = await store(gateway, tenant_id, "first", expectedVersion=1, key="k-1")
    assert first["settings"] == {"version": 2, "ehr": {"waitlistingStatusName": "first"}}
    await store(gateway, tenant_id, "later")  # version 3: the tenant moved on

    # The client never saw the first answer and retries, as it was, with expectedVersion 1:
    # not a VersionConflict, and not the current settings, but the version it stored.
    retried = await store(gateway, tenant_id, "first", expectedVersion=1, key="k-1")

    assert retried == first
    assert ledger(gateway, tenant_id, {2: "first", 3: "later"}) == {
        1: None, 2: "first", 3: "later",
    }  # fmt: skip


async def test_the_same_key_for_another_request_is_refused_and_stores_nothing(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)
    await store(gateway, tenant_id, "first", key="k-2")

    other_value = await store(gateway, tenant_id, "second", key="k-2")
    other_mutation = (await gateway.execute(ROLL_BACK, tenantId=tenant_id, toVersion=1, key="k-2"))[
        "rollbackSettings"
    ]

    for refused in (other_value, other_mutation):
        assert refused["__typename"] == "ValidationFailed"
        assert error_codes(refused) == [(["idempotencyKey"], "IDEMPOTENCY_KEY_REUSED")]
    assert "k-2" not in other_value["errors"][0]["message"]
    assert ledger(gateway, tenant_id, {2: "first"}) == {1: None, 2: "first"}


async def test_a_key_is_the_callers_own(gateway: Gateway, tenant_id: str) -> None:
    await new_tenant(gateway, tenant_id)
    alice = gateway.as_caller(tenants=[tenant_id], roles=["editor"], subject="alice")
    bob = gateway.as_caller(tenants=[tenant_id], roles=["editor"], subject="bob")

    by_alice = await store(alice, tenant_id, "same", key="shared-key")
    await store(gateway, tenant_id, "between")
    by_bob = await store(bob, tenant_id, "same", key="shared-key")

    # Bob's key is not Alice's: his write is a write of its own (a new version).
    assert by_alice["settings"]["version"] == 2
    assert by_bob["settings"]["version"] == 4
    # (The same value twice, by two callers: the ledger's "nothing stored twice" does not apply.)
    stored = read_ledger(gateway.config.mongodb_url or "", TEST_DATABASE, tenant_id)
    assert stored.values == {1: None, 2: "same", 3: "between", 4: "same"}
    assert stored.audited_versions == [1, 2, 3, 4]


async def test_a_key_is_the_tenants_own(gateway: Gateway, tenant_id: str) -> None:
    other_tenant = f"{tenant_id}-other"
    await new_tenant(gateway, tenant_id)
    await new_tenant(gateway, other_tenant)

    here = await store(gateway, tenant_id, "value", key="k-tenant")
    there = await store(gateway, other_tenant, "value", key="k-tenant")

    assert here["__typename"] == there["__typename"] == "SettingsSaved"
    assert ledger(gateway, other_tenant, {2: "value"}) == {1: None, 2: "value"}


async def test_the_header_works_as_the_argument_does(gateway: Gateway, tenant_id: str) -> None:
    await new_tenant(gateway, tenant_id)

    first = await store_with_header(gateway, tenant_id, "by-header", "h-1")
    # The header as an IETF structured-field string (quoted) names the same key, and so does
    # the argument.
    quoted = await store_with_header(gateway, tenant_id, "by-header", '"h-1"')
    argument = await store(gateway, tenant_id, "by-header", key="h-1")
    both = await store_with_header(gateway, tenant_id, "by-header", "h-1", key="h-1")

    assert first["settings"]["version"] == 2
    assert quoted == argument == both == first
    assert ledger(gateway, tenant_id, {2: "by-header"}) == {1: None, 2: "by-header"}


async def test_the_header_is_read_as_http_defines_its_value(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    # Whitespace around a field value is not part of it (RFC 9110).
    spaced = await store_with_header(gateway, tenant_id, "spaced", " \tspaced ")
    argument = await store(gateway, tenant_id, "spaced", key="spaced")
    # A quoted value is an RFC 8941 string: its escapes are undone, not taken literally.
    escaped = await store_with_header(gateway, tenant_id, "escaped", '"a\\"b"')
    unescaped = await store(gateway, tenant_id, "escaped", key='a"b')
    unterminated = await store_with_header(gateway, tenant_id, "never", '"a\\"')

    assert spaced["settings"]["version"] == 2 and argument == spaced
    assert escaped["settings"]["version"] == 3 and unescaped == escaped
    assert error_codes(unterminated) == [(["idempotencyKey"], "INVALID_IDEMPOTENCY_KEY")]
    assert ledger(gateway, tenant_id, {2: "spaced", 3: "escaped"}) == {
        1: None, 2: "spaced", 3: "escaped",
    }  # fmt: skip


async def test_a_header_and_an_argument_that_differ_are_refused(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    refused = await store_with_header(gateway, tenant_id, "v", "header-key", key="argument-key")

    assert error_codes(refused) == [(["idempotencyKey"], "IDEMPOTENCY_KEY_MISMATCH")]
    assert ledger(gateway, tenant_id, {}) == {1: None}


async def test_a_malformed_key_is_refused_naming_the_argument(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    for key in ("", "x" * 256, "has space", "caf\u00e9", "tab\there"):
        refused = await store(gateway, tenant_id, "never", key=key)
        assert error_codes(refused) == [(["idempotencyKey"], "INVALID_IDEMPOTENCY_KEY")], key
    for header in ("", "x" * 256, "has space", '"two words"'):
        refused = await store_with_header(gateway, tenant_id, "never", header)
        assert "errors" in refused and error_codes(refused) == [
            (["idempotencyKey"], "INVALID_IDEMPOTENCY_KEY")
        ], repr(header)
    longest = await store(gateway, tenant_id, "longest", key="~" * 255)

    assert longest["settings"]["version"] == 2
    assert ledger(gateway, tenant_id, {2: "longest"}) == {1: None, 2: "longest"}


async def test_the_same_request_spelled_inline_or_in_variables_is_the_same_request(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    inline = (await gateway.execute(STORE_VALUE_INLINE, tenantId=tenant_id))["updateEhrSettings"]
    variables = await store(gateway, tenant_id, "inline", key="inline-key")

    assert variables["settings"]["version"] == inline["settings"]["version"] == 2


async def test_concurrent_attempts_with_one_key_store_one_version(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    answers = await asyncio.gather(
        *(store(gateway, tenant_id, "once", key="k-race") for _ in range(8))
    )

    assert {answer["settings"]["version"] for answer in answers} == {2}
    assert ledger(gateway, tenant_id, {2: "once"}) == {1: None, 2: "once"}


async def test_a_key_past_its_24_hours_names_a_new_write(gateway: Gateway, tenant_id: str) -> None:
    await new_tenant(gateway, tenant_id)
    await store(gateway, tenant_id, "day-one", key="k-old")
    await store(gateway, tenant_id, "day-two")
    # A day and a minute pass (the clock of the stored version is moved back instead).
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        gateway.config.mongodb_url, tz_aware=True
    )
    try:
        history = client[TEST_DATABASE]["tenant_settings_history"]
        row = await history.find_one({"tenantId": tenant_id, "version": 2})
        assert row is not None
        row["changedAt"] -= timedelta(hours=24, minutes=1)
        # Replaced whole: the embedded server's $set stores a date as a string.
        await history.replace_one({"_id": row["_id"]}, row)
    finally:
        await client.close()

    again = await store(gateway, tenant_id, "day-one", key="k-old")

    assert again["settings"]["version"] == 4


async def test_a_mutation_that_stores_nothing_accepts_the_key(
    gateway: Gateway, tenant_id: str
) -> None:
    await new_tenant(gateway, tenant_id)

    for _ in range(2):
        data = await gateway.execute(TEST_CONNECTION, tenantId=tenant_id, key="k-test")
        assert data["testExternalGatewayConnection"]["__typename"] == "ValidationFailed"
    refused = await gateway.execute(TEST_CONNECTION, tenantId=tenant_id, key="bad key")
    assert refused["testExternalGatewayConnection"]["__typename"] == "ValidationFailed"


def test_every_mutation_takes_an_idempotency_key() -> None:
    mutation = schema._schema.mutation_type
    assert mutation is not None
    missing = [
        name for name, field in mutation.fields.items() if "idempotencyKey" not in field.args
    ]
    assert not missing, missing


async def test_a_key_beside_arguments_no_text_encoding_can_hold_is_answered_not_an_error(
    gateway: Gateway,
) -> None:
    """JSON can carry a lone surrogate, which UTF-8 cannot: the request the key stands for is
    still kept as bytes, and the mutation answers as it would without the key (a refused
    tenant id), not with an internal error (found by the fuzz test)."""
    body = await gateway.post(
        STORE_VALUE, tenantId="\ud800", value="v", expectedVersion=None, key="lone-surrogate"
    )
    assert "errors" not in body, body
    failed = body["data"]["updateEhrSettings"]
    assert failed["__typename"] == "ValidationFailed"
    assert [error["path"] for error in failed["errors"]] == [["tenantId"]]
