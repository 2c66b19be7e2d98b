"""tenants: the tenant directory, paged by keyset, filtered by EHR, readiness and changed-since,
scoped to the caller's tenants; each row's readiness is the one stored with the tenant's current
version, and must say what `readiness` says after every kind of write."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from ehr_gateway.server.config import GatewayConfig
from tests.conftest import Gateway, open_gateway
from tests.documents import (
    CREATE_EXTERNAL_GATEWAY,
    DISCOVER_JKU,
    EXPORT_SETTINGS,
    READINESS,
    SELECT_PROVIDER,
    UPDATE_EHR,
    UPDATE_FHIR,
    UPDATE_HEADERS,
    UPDATE_OAUTH,
    UPDATE_PATIENT_RESTRICTION,
)
from tests.epic_issuer import AUDIENCE, Issuer
from tests.own_database import own_database

TENANTS = """
query Tenants($first: Int, $after: String, $provider: EhrProvider, $ready: Boolean,
              $changedSince: DateTime) {
  tenants(first: $first, after: $after, provider: $provider, ready: $ready,
          changedSince: $changedSince) {
    items { tenantId provider version ready missingCount missingPaths changedAt changedBy }
    pageInfo { endCursor hasNextPage }
  }
}
"""
CONNECTION = {"name": "EHR", "baseUrl": "https://ehr.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip
REFRESH = """
mutation Refresh($tenantId: ID!) { refreshJku(tenantId: $tenantId) { __typename } }
"""
GENERATE_KEY = """
mutation GenerateKey($tenantId: ID!) { generateOAuthSigningKey(tenantId: $tenantId) { __typename } }
"""
REGENERATE_ID = """
mutation Regenerate($tenantId: ID!) {
  regenerateExternalGatewayId(tenantId: $tenantId) { __typename }
}
"""
ADOPT = """
mutation Adopt($tenantId: ID!, $url: String!) {
  adoptObservedJku(tenantId: $tenantId, url: $url) { __typename }
}
"""
BASE_PATH_URL = """
query BasePathUrl($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) { externalGateway { basePathUrl } }
}
"""
ROLLBACK = """
mutation Rollback($tenantId: ID!, $to: Int!) {
  rollbackSettings(tenantId: $tenantId, toVersion: $to) { __typename }
}
"""
IMPORT = """
mutation Import($tenantId: ID!, $doc: JSON!) {
  importSettings(tenantId: $tenantId, document: $doc, dryRun: false) { __typename }
}
"""


@pytest.fixture
async def own_config(database_url: str, tmp_path: Path) -> AsyncIterator[GatewayConfig]:
    """A database of its own for a test that leaves a database writer's entries behind."""
    async with own_database(database_url, tmp_path) as config:
        yield config


def directory_config(database_url: str, data_dir: Path, **overrides: Any) -> GatewayConfig:
    """A gateway on a database of its own: the directory lists exactly this test's tenants."""
    settings: dict[str, Any] = {
        "mongodb_url": database_url,
        "database": f"directory_{uuid.uuid4().hex[:12]}",
        "data_dir": data_dir,
        "public_base_url": "https://gateway.example.test",
        **overrides,
    }
    return GatewayConfig(**settings)


@pytest.fixture
async def directory(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in open_gateway(directory_config(database_url, tmp_path)):
        yield opened


async def page(gateway: Gateway, **variables: Any) -> dict[str, Any]:
    data = await gateway.execute(TENANTS, **variables)
    result: dict[str, Any] = data["tenants"]
    return result


async def every_row(gateway: Gateway, **variables: Any) -> list[dict[str, Any]]:
    """Every row, page after page, to the end."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        found = await page(gateway, after=after, **variables)
        rows += found["items"]
        if not found["pageInfo"]["hasNextPage"]:
            return rows
        after = found["pageInfo"]["endCursor"]


async def select(gateway: Gateway, tenant_id: str, provider: str) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)


async def ready_cerner(gateway: Gateway, tenant_id: str) -> None:
    """A Cerner tenant with everything it needs (the SSN identifier from the default)."""
    await select(gateway, tenant_id, "CERNER")
    await gateway.execute(
        UPDATE_FHIR, tenantId=tenant_id, input={"cerner": {"mrnIdentifier": "urn:oid:1.2.3"}}
    )
    await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=CONNECTION)


async def test_staff_page_through_every_tenant_by_id(directory: Gateway) -> None:
    providers = ["EPIC", "ATHENA", "CERNER", "ELLKAY", "EPIC", "CERNER", "ATHENA"]
    tenant_ids = [f"t{n}-{uuid.uuid4().hex[:6]}" for n in range(len(providers))]
    for tenant_id, provider in zip(tenant_ids, providers, strict=True):
        await select(directory, tenant_id, provider)
    first = await page(directory, first=3)
    assert first["pageInfo"]["hasNextPage"] is True
    assert [row["tenantId"] for row in first["items"]] == sorted(tenant_ids)[:3]
    rows = await every_row(directory, first=3)
    assert [row["tenantId"] for row in rows] == sorted(tenant_ids)
    by_id = {row["tenantId"]: row for row in rows}
    for tenant_id, provider in zip(tenant_ids, providers, strict=True):
        row = by_id[tenant_id]
        assert (row["provider"], row["version"], row["changedBy"]) == (provider, 1, "test-staff")
        assert datetime.fromisoformat(row["changedAt"]).tzinfo is not None
        assert row["ready"] is False and row["missingCount"] == len(row["missingPaths"]) > 0
    # A page past the end is empty and keeps its place.
    last = await page(directory, first=3, after=first["pageInfo"]["endCursor"])
    tail = await page(directory, first=50, after=last["pageInfo"]["endCursor"])
    assert tail["pageInfo"]["hasNextPage"] is False
    end = await page(directory, first=5, after=tail["pageInfo"]["endCursor"])
    assert end == {"items": [], "pageInfo": tail["pageInfo"]}


async def test_filters_by_provider_by_readiness_and_by_changed_since(directory: Gateway) -> None:
    ready, athena, epic = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("a", "b", "c"))
    await ready_cerner(directory, ready)
    await select(directory, athena, "ATHENA")
    await select(directory, epic, "EPIC")
    [row] = (await page(directory, ready=True))["items"]
    assert row["tenantId"] == ready and row["missingCount"] == 0 and row["missingPaths"] == []
    assert [r["tenantId"] for r in (await page(directory, ready=False))["items"]] == sorted(
        [athena, epic]
    )
    [row] = (await page(directory, provider="ATHENA"))["items"]
    assert row["tenantId"] == athena
    assert row["missingPaths"] == ["ehr.practiceId", "externalGateway"]
    assert (await page(directory, provider="ELLKAY", ready=False))["items"] == []
    assert (await page(directory, provider="CERNER", ready=False))["items"] == []

    # Changed since: by last change, oldest first, from the given time on.
    since = (await page(directory, provider="EPIC"))["items"][0]["changedAt"]
    await asyncio.sleep(0.01)
    await directory.execute(UPDATE_EHR, tenantId=athena, input={"athena": {"practiceId": "195900"}})
    rows = (await page(directory, changedSince=since))["items"]
    assert [(r["tenantId"], r["version"]) for r in rows] == [(epic, 1), (athena, 2)]
    athena_changed = rows[1]["changedAt"]
    rows = (await page(directory, changedSince=athena_changed))["items"]
    assert [r["tenantId"] for r in rows] == [athena]
    rows = (await page(directory, changedSince=since, provider="ATHENA", ready=False))["items"]
    assert [r["tenantId"] for r in rows] == [athena]


async def test_paging_by_id_while_others_write_meets_every_tenant_once(
    directory: Gateway,
) -> None:
    tenant_ids = sorted(f"p{n:02d}-{uuid.uuid4().hex[:4]}" for n in range(20))
    for tenant_id in tenant_ids:
        await select(directory, tenant_id, "ATHENA")
    seen: list[str] = []
    after = None
    turn = 0
    while True:
        found = await page(directory, first=3, after=after)
        seen += [row["tenantId"] for row in found["items"]]
        # Between pages, writes to tenants already listed, not yet listed, and new tenants,
        # some of which sort before the cursor (they are not part of this pass).
        for tenant_id in (tenant_ids[turn % 20], tenant_ids[(turn * 7 + 5) % 20]):
            await directory.execute(
                UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": f"{turn}"}}
            )
        await select(directory, f"a{turn:02d}-new", "EPIC")
        turn += 1
        if not found["pageInfo"]["hasNextPage"]:
            break
        after = found["pageInfo"]["endCursor"]
    listed = [tenant_id for tenant_id in seen if tenant_id in tenant_ids]
    assert listed == tenant_ids  # each once, in order, none missed
    assert len(seen) == len(set(seen))


async def test_paging_by_change_while_others_write_ends_with_every_tenants_newest_version(
    directory: Gateway,
) -> None:
    tenant_ids = [f"c{n:02d}-{uuid.uuid4().hex[:4]}" for n in range(12)]
    for tenant_id in tenant_ids:
        await select(directory, tenant_id, "ATHENA")
    since = "2020-01-01T00:00:00+00:00"
    sightings: list[tuple[str, int]] = []
    after = None
    turn = 0
    while True:
        found = await page(directory, first=4, after=after, changedSince=since)
        sightings += [(row["tenantId"], row["version"]) for row in found["items"]]
        if turn < 3:  # a tenant already listed and one not yet listed change meanwhile
            for tenant_id in (tenant_ids[turn], tenant_ids[-1 - turn]):
                await directory.execute(
                    UPDATE_EHR, tenantId=tenant_id, input={"athena": {"practiceId": f"{turn}"}}
                )
        turn += 1
        if not found["pageInfo"]["hasNextPage"]:
            break
        after = found["pageInfo"]["endCursor"]
    assert len(sightings) == len(set(sightings))  # no version listed twice
    newest = {row["tenantId"]: row["version"] for row in await every_row(directory, first=50)}
    last_seen = dict(sightings)  # each tenant's last sighting
    assert last_seen == newest and set(newest) == set(tenant_ids)


async def test_a_caller_lists_only_the_tenants_its_token_names(directory: Gateway) -> None:
    own, also_own, other = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("m", "n", "o"))
    for tenant_id in (own, also_own, other):
        await ready_cerner(directory, tenant_id)
    for role in ("viewer", "editor", "integrator", "service"):
        caller = directory.as_caller(tenants=[own, also_own, "never-created"], roles=[role])
        rows = await every_row(caller, first=1)
        assert [row["tenantId"] for row in rows] == sorted([own, also_own])
        for filters in (
            {"ready": True},
            {"provider": "CERNER"},
            {"changedSince": "2020-01-01T00:00:00Z"},
        ):
            body = json.dumps(await every_row(caller, first=1, **filters))
            assert other not in body
    # A cursor made up to start just before the other tenant still lists only the caller's.
    caller = directory.as_caller(tenants=[own], roles=["viewer"])
    forged = base64.urlsafe_b64encode(json.dumps({"o": "byId", "k": other[:-1]}).encode())
    found = await page(caller, after=forged.decode().rstrip("="))
    assert other not in json.dumps(found)
    nobody = directory.as_caller(tenants=["unknown"], roles=["viewer"])
    assert (await page(nobody))["items"] == []


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"first": 0}, "first"),
        ({"first": -5}, "first"),
        ({"first": 201}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "eyJvIjoiYnlJZCIsImsiOjF9"}, "after"),  # {"o":"byId","k":1}
        ({"after": "x" * 5000}, "after"),
    ],
)
async def test_a_bad_argument_is_refused_naming_it(
    directory: Gateway, variables: dict[str, Any], argument: str
) -> None:
    body = await directory.post(TENANTS, **variables)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}
    assert error["message"].startswith(f"{argument}: ")
    if argument == "after":  # whatever the client sent is not repeated back
        assert variables["after"] not in error["message"]


async def test_a_cursor_of_one_order_is_refused_in_the_other(directory: Gateway) -> None:
    for n in range(3):
        await select(directory, f"o{n}-{uuid.uuid4().hex[:4]}", "EPIC")
    by_id = (await page(directory, first=1))["pageInfo"]["endCursor"]
    by_change = (await page(directory, first=1, changedSince="2020-01-01T00:00:00Z"))["pageInfo"][
        "endCursor"
    ]
    for variables in (
        {"after": by_change},
        {"after": by_id, "changedSince": "2020-01-01T00:00:00Z"},
    ):
        body = await directory.post(TENANTS, **variables)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}


# --- The stored readiness is the computed one, after every kind of write ----------------------


async def assert_row_matches_readiness(gateway: Gateway, tenant_id: str, step: str) -> None:
    readiness = (await gateway.execute(READINESS, tenantId=tenant_id))["readiness"]
    rows = (await page(gateway, first=200))["items"]
    [row] = [row for row in rows if row["tenantId"] == tenant_id]
    missing = [".".join(check["path"]) for check in readiness["missing"]]
    assert (row["ready"], row["missingCount"], row["missingPaths"]) == (
        readiness["ready"],
        len(missing),
        missing,
    ), step
    filtered = await every_row(gateway, ready=readiness["ready"])
    assert tenant_id in [row["tenantId"] for row in filtered], step


async def test_the_stored_readiness_follows_every_kind_of_write(
    database_url: str, tmp_path: Path, epic: Issuer
) -> None:
    config = directory_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True
    )
    tenant_id = f"w-{uuid.uuid4().hex[:8]}"
    epic.rotate()
    ehr = {
        "context": "Scheduling",
        "jwtIssuerUrl": epic.url,
        "jwtAudience": AUDIENCE,
        "enableDefaultJkuServerUrlPattern": True,
    }
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("select Epic", SELECT_PROVIDER, {"provider": "EPIC"}),
        ("headers", UPDATE_HEADERS, {"input": {"epic": {
            "epicClientId": "c1", "epicUserId": "U", "epicUserIdType": "Internal"}}}),
        ("FHIR", UPDATE_FHIR, {"input": {"epic": {"mrnIdentifier": "urn:oid:1.2.3"}}}),
        ("EHR", UPDATE_EHR, {"input": {"epic": ehr}}),
        ("external gateway", CREATE_EXTERNAL_GATEWAY, {"connection": CONNECTION}),
        ("discover the JKU", DISCOVER_JKU, {"issuerUrl": epic.url}),
        ("refresh the JKU", REFRESH, {}),
        ("use OAuth", UPDATE_EHR, {"input": {"epic": {"useOauth": True}}}),
        ("OAuth settings", UPDATE_OAUTH, {"input": {"epic": {
            "epicClientId": "c1", "oauthTokenUrl": "https://ehr.hospital.example/token"}}}),
        ("signing key", GENERATE_KEY, {}),
        ("new external gateway id", REGENERATE_ID, {}),
        ("JKU Server URL changed", UPDATE_EHR, {"input": {"epic": {
            "jkuServerUrl": "https://ehr.hospital.example/other-keys"}}}),
        ("patient restriction", UPDATE_PATIENT_RESTRICTION, {"expression": "age < 18"}),
        ("switch to Cerner", SELECT_PROVIDER, {"provider": "CERNER"}),
        ("back to Epic", SELECT_PROVIDER, {"provider": "EPIC"}),
        ("rollback", ROLLBACK, {"to": 3}),
    ]  # fmt: skip
    async for gateway in open_gateway(config):
        seen_ready = set()
        for step, document, variables in steps:
            data = await gateway.execute(document, tenantId=tenant_id, **variables)
            [result] = data.values()
            assert result["__typename"] == "SettingsSaved", (step, result)
            await assert_row_matches_readiness(gateway, tenant_id, step)
            seen_ready.add((await page(gateway))["items"][0]["ready"])
        assert seen_ready == {True, False}  # the steps took the tenant through both
        # Import: another tenant's export, onto a new tenant and over this one.
        exported = (await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id))["exportSettings"]
        imported = f"i-{uuid.uuid4().hex[:8]}"
        for target in (imported, tenant_id):
            data = await gateway.execute(IMPORT, tenantId=target, doc=exported)
            assert data["importSettings"]["__typename"] == "SettingsSaved", data
            await assert_row_matches_readiness(gateway, target, f"import onto {target}")


async def test_the_stored_readiness_follows_an_observed_jku_adopted(
    database_url: str, tmp_path: Path, epic: Issuer
) -> None:
    config = directory_config(
        database_url, tmp_path, allow_insecure_http=True, outbound_allow_private=True
    )
    tenant_id = f"j-{uuid.uuid4().hex[:8]}"
    async for gateway in open_gateway(config):
        await select(gateway, tenant_id, "EPIC")
        await gateway.execute(CREATE_EXTERNAL_GATEWAY, tenantId=tenant_id, connection=CONNECTION)
        settings = (await gateway.execute(BASE_PATH_URL, tenantId=tenant_id))["integrationSettings"]
        base_path_url = settings["externalGateway"]["basePathUrl"]
        # The spec's placeholder: the JKU Server URL is the base path URL until Epic names one.
        await gateway.execute(
            UPDATE_EHR, tenantId=tenant_id, input={"epic": {"jkuServerUrl": base_path_url}}
        )
        await assert_row_matches_readiness(gateway, tenant_id, "placeholder")
        before = (await page(gateway))["items"][0]
        token = epic.token(
            epic.keys[0], aud=base_path_url, header={"typ": "JWT", "jku": epic.jwks_url}
        )
        observed = await gateway.client.post(
            urlsplit(base_path_url).path, headers={"authorization": f"Bearer {token}"}
        )
        assert observed.status_code == 202, observed.text
        # An observation is not a settings version: the row stays as it was.
        assert (await page(gateway))["items"][0] == before
        adopted = await gateway.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url)
        assert adopted["adoptObservedJku"]["__typename"] == "SettingsSaved", adopted
        await assert_row_matches_readiness(gateway, tenant_id, "adopted")
        after = (await page(gateway))["items"][0]
        # The issuer URL and the key set came with the adoption.
        gone = set(before["missingPaths"]) - set(after["missingPaths"])
        assert gone == {"ehr.jwtIssuerUrl", "jkuKeySet"}, after


async def test_rows_are_assessed_again_when_the_deployment_defaults_change(
    database_url: str, tmp_path: Path
) -> None:
    config = directory_config(database_url, tmp_path)
    tenant_id = f"d-{uuid.uuid4().hex[:8]}"
    async for gateway in open_gateway(config):
        await ready_cerner(gateway, tenant_id)  # ready only through the default SSN identifier
        assert (await page(gateway, ready=True))["items"][0]["tenantId"] == tenant_id
    without_default = config.model_copy(update={"default_ssn_identifier": None})
    async for gateway in open_gateway(without_default):
        await assert_row_matches_readiness(gateway, tenant_id, "no SSN default")
        [row] = (await page(gateway))["items"]
        assert row["ready"] is False and row["missingPaths"] == ["fhir.ssnIdentifier"]
        assert (await page(gateway, ready=True))["items"] == []


ALIASED_PAGES = """
query ManyPages {
  a: tenants(first: 200) { items { tenantId } }
  b: tenants(first: 150) { items { tenantId } }
  c: tenants(first: 100) { items { tenantId } }
}
"""


async def test_one_operation_may_ask_for_a_bounded_number_of_rows(directory: Gateway) -> None:
    body = await directory.post(ALIASED_PAGES)
    assert body["data"] is None  # the fields are non-null: the refusal nulls the operation
    [error] = body["errors"]
    assert error["path"] == ["c"]
    assert error["extensions"] == {"code": "COST_LIMIT", "limit": 400}


async def test_a_row_edited_in_the_database_is_not_listed_until_the_tenants_next_write(
    directory: Gateway, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A database writer without the key edits a tenant's row (made ready, by another author):
    the row's seal no longer verifies, so the row is left out, whatever the filter,
    and paging goes on past it; the tenant's next write lists it again as stored."""
    prefix = f"e{uuid.uuid4().hex[:6]}"
    before, edited, after = (f"{prefix}-{n}" for n in range(3))
    for tenant_id in (before, edited, after):
        await select(directory, tenant_id, "EPIC")  # version 1, not ready
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[directory.config.database]["tenant_settings"].update_one(
            {"_id": edited},
            {"$set": {"directory.ready": True, "directory.missing": 0,
                      "updatedBy": "someone-else"}},
        )  # fmt: skip
    finally:
        await writer.close()

    with caplog.at_level(logging.WARNING, logger="ehr_gateway.security"):
        one_at_a_time = await every_row(directory, first=1)
        ready = await every_row(directory, ready=True)

    assert [row["tenantId"] for row in one_at_a_time] == [before, after]
    assert ready == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "ehr_gateway.security"]
    assert sum(edited in line and "directory row" in line for line in warnings) == 1, warnings

    saved = await directory.execute(
        UPDATE_HEADERS, tenantId=edited, input={"epic": {"epicClientId": "client-2"}}
    )
    assert saved["updateHeaderSettings"]["__typename"] == "SettingsSaved", saved
    rows = {row["tenantId"]: row for row in await every_row(directory)}
    assert (rows[edited]["version"], rows[edited]["ready"]) == (2, False)
    assert rows[edited]["changedBy"] != "someone-else"


async def test_a_directory_row_of_another_type_does_not_stop_the_start(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    """A database writer sets one tenant's directory row to a string: a gateway still starts
    (the start-up refresh assesses rows again, it does not trust them to be mappings), and
    lists the other tenants."""
    config = directory_config(database_url, tmp_path)
    other = f"{tenant_id}-other"
    async for gateway in open_gateway(config):
        await select(gateway, tenant_id, "EPIC")
        await select(gateway, other, "EPIC")
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        await writer[config.database]["tenant_settings"].update_one(
            {"_id": tenant_id}, {"$set": {"directory": "not a row"}}
        )
    finally:
        await writer.close()

    started: list[str] = []
    try:
        async for gateway in open_gateway(config):
            listed = await gateway.execute(TENANTS)
            started += [row["tenantId"] for row in listed["tenants"]["items"]]
    except AttributeError as failure:
        pytest.fail(f"the gateway did not start: {failure!r}")

    assert other in started


# Directory keys no gateway writes, on rows a database writer inserted (each decoy is one row,
# or many: more than a page). A range on text matches a list holding text (MongoDB) and, on the
# embedded server, any list, date, ObjectId or object; lists sort before text there, the others
# after it. Turned into text, such a key ("['n']", "2026-01-01 ...") made the next page skip
# every row below it, or list again every row above it.
NON_TEXT_KEYS: dict[str, list[Any]] = {
    "a list key": [["n"]],
    "an empty list key": [[]],
    "a date key": [datetime(2026, 1, 1, tzinfo=UTC)],
    "an object id key": [ObjectId()],
    "an object key": [{"id": "n"}],
    "many list keys": [[f"n{n}"] for n in range(7)],
}


@pytest.mark.parametrize("keys", NON_TEXT_KEYS.values(), ids=NON_TEXT_KEYS.keys())
@pytest.mark.parametrize("first", [1, 2])
async def test_rows_whose_key_is_not_text_neither_hide_nor_repeat_a_tenant(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, keys: list[Any], first: int
) -> None:
    config = own_config
    # Ids below and above the text of such a key, which the next page once started after.
    tenants = sorted(f"{name}-{uuid.uuid4().hex[:6]}" for name in ("3", "Memorial", "clinic", "z"))
    async for gateway in open_gateway(config):
        for tenant in tenants:
            await select(gateway, tenant, "EPIC")
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            row = {"ready": False, "missing": 0}
            await writer[config.database]["tenant_settings"].insert_many(
                [
                    {
                        "_id": f"decoy-{n}",
                        "version": 1,
                        "provider": "EPIC",
                        "directory": {"byId": key, "byChange": key, **row},
                    }
                    for n, key in enumerate(keys)
                ]
            )
        finally:
            await writer.close()

        listed: list[str] = []
        after = None
        for _ in range(2 * len(tenants) + len(keys)):  # more pages than a listing needs
            found = await page(gateway, first=first, after=after)
            listed += [row["tenantId"] for row in found["items"]]
            if not found["pageInfo"]["hasNextPage"]:
                break
            after = found["pageInfo"]["endCursor"]

    assert listed == tenants


@pytest.mark.parametrize("version", [[1], {"v": 1}], ids=["a list", "an object"])
async def test_a_tenant_whose_version_is_of_another_type_is_not_listed(
    database_url: str, own_config: GatewayConfig, tmp_path: Path, tenant_id: str, version: Any
) -> None:
    """A database writer retypes one tenant's version: its row no longer verifies (the row's
    seal covers the version) and is left out, and logged, without failing the listing."""
    config = own_config
    other = f"{tenant_id}-other"
    async for gateway in open_gateway(config):
        await select(gateway, tenant_id, "EPIC")
        await select(gateway, other, "EPIC")
        writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
        try:
            await writer[config.database]["tenant_settings"].update_one(
                {"_id": tenant_id}, {"$set": {"version": version}}
            )
        finally:
            await writer.close()

        listed = await gateway.post(TENANTS)

    assert "errors" not in listed, listed["errors"]
    assert [row["tenantId"] for row in listed["data"]["tenants"]["items"]] == [other]
