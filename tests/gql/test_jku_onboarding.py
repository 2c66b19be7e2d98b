"""Finding the JKU without a ticket, as the spec's procedure goes: the JKU Server URL is a
placeholder (the base path URL), Epic makes a click-to-call request to the base path URL, the
gateway records which JKU its JWT named, an integrator adopts it (discovery on that URL), and the
same JWT then verifies. A forged header is only ever observed; a flood is capped."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.runtime.jku_observation_log import TENANT_BURST, TENANT_RATE, WRITE_INTERVAL_S
from ehr_gateway.storage.observations import (
    MAX_OBSERVED_PER_SERVER,
    MAX_OBSERVED_PER_TENANT,
    MAX_OBSERVED_SHOWN,
    MAX_OBSERVED_TOKEN,
    OBSERVED_JKU,
    ObservedJkuStore,
)
from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.epic_issuer import Issuer, serve_issuer

SAVE_CONNECTION = """
mutation SaveConnection($tenantId: ID!, $connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: $tenantId, connection: $connection) {
    ... on SettingsSaved { settings { externalGateway { basePathUrl } } }
  }
}
"""
SAVE_EPIC_SETTINGS = """
mutation SaveEpicSettings($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code } }
  }
}
"""
OBSERVED = """
query Observed($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    observedJku { url kid alg issuer firstSeen lastSeen count }
    ehr { ... on EpicSettings { jkuServerUrl jwtIssuerUrl enableDefaultJkuServerUrlPattern } }
    jkuKeySet { url keys { kid } }
  }
}
"""
ADOPT = """
mutation Adopt($tenantId: ID!, $url: String!) {
  adoptObservedJku(tenantId: $tenantId, url: $url) {
    __typename
    ... on SettingsSaved {
      settings {
        ehr { ... on EpicSettings { jkuServerUrl jwtIssuerUrl enableDefaultJkuServerUrlPattern } }
        jkuKeySet { url keys { kid } }
      }
    }
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
VERIFY = """
query Verify($tenantId: ID!, $token: String!) {
  verifyEpicJwt(tenantId: $tenantId, token: $token) {
    __typename
    ... on JwtVerified { claims kid alg }
    ... on JwtRejected { code message tokenJku }
  }
}
"""
CONNECTION = {"name": "Epic", "baseUrl": "https://fhir.hospital.example/api",
              "environment": "PRODUCTION"}  # fmt: skip


@pytest.fixture
async def attacker() -> AsyncIterator[Issuer]:
    async with serve_issuer(first_kid="mallory") as issuer:
        yield issuer


async def _placeholder(staff: Gateway, tenant_id: str) -> str:
    """An Epic tenant set up as the spec says when the JKU is unknown: its JKU Server URL is the
    base path URL. Returns the base path URL."""
    await staff.execute(SELECT_EPIC, tenantId=tenant_id)
    saved = await staff.execute(SAVE_CONNECTION, tenantId=tenant_id, connection=CONNECTION)
    base_path_url: str = saved["createExternalGateway"]["settings"]["externalGateway"][
        "basePathUrl"
    ]
    stored = await staff.execute(
        SAVE_EPIC_SETTINGS, tenantId=tenant_id, input={"epic": {"jkuServerUrl": base_path_url}}
    )
    assert stored["updateEhrSettings"]["__typename"] == "SettingsSaved", stored
    return base_path_url


def _click_to_call(issuer: Issuer, base_path_url: str, **header: Any) -> str:
    """A JWT as Epic signs one for a click-to-call request to the base path URL."""
    return issuer.token(
        issuer.keys[0], aud=base_path_url, header={"typ": "JWT", "jku": issuer.jwks_url, **header}
    )


async def _call(
    gateway: Gateway, base_path_url: str, token: str | None = None, **request: Any
) -> httpx.Response:
    """A request to the base path URL (POST, the token as a bearer token unless ``request``
    says otherwise)."""
    headers = request.pop("headers", {})
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return await gateway.client.request(
        request.pop("method", "POST"), urlsplit(base_path_url).path, headers=headers, **request
    )


async def _settings(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    settings: dict[str, Any] = (await gateway.execute(OBSERVED, tenantId=tenant_id))[
        "integrationSettings"
    ]
    return settings


async def _verify(gateway: Gateway, tenant_id: str, token: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gateway.execute(VERIFY, tenantId=tenant_id, token=token))[
        "verifyEpicJwt"
    ]
    return result


async def test_observe_adopt_verify(local_gateway: Gateway, epic: Issuer, tenant_id: str) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    token = _click_to_call(epic, base_path_url)
    assert (await _verify(local_gateway, tenant_id, token))["code"] == "NOT_CONFIGURED"
    version = (await _settings(local_gateway, tenant_id))["version"]

    answer = await _call(local_gateway, base_path_url, token)

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "observed"}
    assert epic.jwks_served == 0  # observed, never fetched
    viewer = local_gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    seen = await _settings(viewer, tenant_id)
    assert seen["version"] == version  # an observation is not a settings change
    [observed] = seen["observedJku"]
    assert observed | {"firstSeen": None, "lastSeen": None} == {
        "url": epic.jwks_url, "kid": "k1", "alg": "RS384", "issuer": epic.url,
        "firstSeen": None, "lastSeen": None, "count": 1,
    }  # fmt: skip
    assert observed["firstSeen"] == observed["lastSeen"]

    integrator = local_gateway.as_caller(tenants=[tenant_id], roles=["integrator"])
    adopted = (await integrator.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url))[
        "adoptObservedJku"
    ]

    assert adopted["__typename"] == "SettingsSaved", adopted
    assert adopted["settings"]["ehr"] == {
        "jkuServerUrl": epic.jwks_url, "jwtIssuerUrl": epic.url,
        "enableDefaultJkuServerUrlPattern": False,
    }  # fmt: skip
    assert adopted["settings"]["jkuKeySet"] == {"url": epic.jwks_url, "keys": [{"kid": "k1"}]}
    verified = await _verify(local_gateway, tenant_id, token)
    assert verified["__typename"] == "JwtVerified", verified
    assert verified["claims"]["aud"] == base_path_url

    again = await _call(local_gateway, base_path_url + "/api/click-to-call", token)
    assert again.status_code == 202  # an endpoint beneath the base path URL observes as well
    [observed] = (await _settings(viewer, tenant_id))["observedJku"]
    assert observed["count"] == 2
    assert observed["lastSeen"] >= observed["firstSeen"]


async def test_a_forged_header_is_only_observed(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    genuine = _click_to_call(epic, base_path_url)
    await _call(local_gateway, base_path_url, genuine)
    adopted = await local_gateway.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url)
    assert adopted["adoptObservedJku"]["__typename"] == "SettingsSaved", adopted
    # Mallory signs with her own key, names her key set, and claims Epic's issuer.
    forged = attacker.token(
        attacker.keys[0], aud=base_path_url, iss=epic.url,
        header={"typ": "JWT", "jku": attacker.jwks_url},
    )  # fmt: skip

    answer = await _call(local_gateway, base_path_url, forged)

    assert answer.status_code == 202
    settings = await _settings(local_gateway, tenant_id)
    assert [seen["url"] for seen in settings["observedJku"]] == [epic.jwks_url, attacker.jwks_url]
    assert settings["ehr"]["jkuServerUrl"] == epic.jwks_url  # observed, not trusted
    refused = await _verify(local_gateway, tenant_id, forged)
    assert refused["code"] == "JKU_MISMATCH"
    assert refused["tokenJku"] == attacker.jwks_url
    assert attacker.jwks_url in refused["message"]
    assert attacker.jwks_served == 0

    viewer = local_gateway.as_caller(tenants=[tenant_id], roles=["viewer"])
    denied = await viewer.post(ADOPT, tenantId=tenant_id, url=attacker.jwks_url)
    assert denied["data"] is None
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    never_named = await local_gateway.execute(
        ADOPT, tenantId=tenant_id, url=attacker.url + "/elsewhere"
    )
    assert never_named["adoptObservedJku"]["errors"] == [
        {"path": ["url"], "code": "NOT_OBSERVED",
         "message": "no request to the base path URL named this JKU"},
    ]  # fmt: skip
    assert attacker.jwks_served == 0
    assert (await _verify(local_gateway, tenant_id, genuine))["__typename"] == "JwtVerified"


async def test_adoption_checks_the_url_as_a_typed_in_jku(
    gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """On a gateway that calls only public https URLs (the default), an observed JKU on plain
    http or on a private address is refused as a typed-in one would be, and nothing is stored
    or fetched."""
    base_path_url = await _placeholder(gateway, tenant_id)
    loopback = "https://127.0.0.1:1/keys"
    for jku in (epic.jwks_url, loopback):
        await _call(gateway, base_path_url, _click_to_call(epic, base_path_url, jku=jku))
    before = await _settings(gateway, tenant_id)

    refusals = [
        (await gateway.execute(ADOPT, tenantId=tenant_id, url=url))["adoptObservedJku"]
        for url in (epic.jwks_url, loopback)
    ]

    assert [(r["errors"][0]["path"], r["errors"][0]["code"]) for r in refusals] == [
        (["url"], "INSECURE_URL"), (["url"], "PRIVATE_ADDRESS"),
    ]  # fmt: skip
    assert await _settings(gateway, tenant_id) == before
    assert epic.jwks_served == 0


async def test_a_flood_is_capped(
    local_gateway: Gateway, database_url: str, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)

    tokens = [_click_to_call(attacker, base_path_url, jku=f"{attacker.jwks_url}?n={n}")
              for n in range(100)]  # fmt: skip
    started = time.monotonic()
    answers = [await _call(local_gateway, base_path_url, token) for token in tokens]

    elapsed = time.monotonic() - started
    statuses = [answer.status_code for answer in answers]
    accepted = statuses.count(202)
    assert set(statuses) == {202, 429}
    assert accepted <= TENANT_BURST + TENANT_RATE * elapsed + 1
    assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 429)
    observed = (await _settings(local_gateway, tenant_id))["observedJku"]
    # One key server: at most MAX_OBSERVED_PER_SERVER of its URLs are kept.
    assert len(observed) == MAX_OBSERVED_PER_SERVER
    assert sum(seen["count"] for seen in observed) == MAX_OBSERVED_PER_SERVER
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        stored = await client[TEST_DATABASE][OBSERVED_JKU].find_one({"_id": tenant_id})
    finally:
        await client.close()
    assert stored is not None
    assert len(stored["observations"]) <= MAX_OBSERVED_PER_TENANT
    # Writes are coalesced: the first request's, then at most one per interval.
    assert stored["revision"] <= 2 + (time.monotonic() - started) / WRITE_INTERVAL_S


async def test_replicas_add_up_their_counts(
    database_url: str, tmp_path: Path, epic: Issuer, tenant_id: str
) -> None:
    """Each replica counts between its writes; what one has not written yet is not lost, and
    the other's writes do not overwrite it."""
    config = gateway_config(database_url, tmp_path)
    async for first in open_gateway(config):
        base_path_url = await _placeholder(first, tenant_id)
        token = _click_to_call(epic, base_path_url)
        async for second in open_gateway(config):
            for replica in (first, second, first, second, second):
                assert (await _call(replica, base_path_url, token)).status_code == 202
        # The second has stopped, writing what it had counted; the first still holds a count.
        [observed] = (await _settings(first, tenant_id))["observedJku"]
        assert observed["count"] == 5
    async for restarted in open_gateway(config):
        [observed] = (await _settings(restarted, tenant_id))["observedJku"]
        assert observed["count"] == 5


async def test_what_is_not_an_epic_jwt_is_not_recorded(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    without_jku = epic.token(epic.keys[0], aud=base_path_url)
    unknown = base_path_url.rsplit("/", 1)[0] + "/" + uuid.uuid4().hex

    refusals = [
        await _call(local_gateway, base_path_url, method="GET"),
        await _call(local_gateway, base_path_url, "not-a-jwt"),
        await _call(local_gateway, base_path_url, without_jku),
        await _call(local_gateway, base_path_url, "x" * 20_000),
        await _call(local_gateway, base_path_url, content=b"{" * 70_000,
                    headers={"content-type": "application/json"}),
        await _call(local_gateway, unknown, _click_to_call(epic, base_path_url)),
    ]  # fmt: skip

    assert [(r.status_code, r.json()["error"]) for r in refusals] == [
        (401, "no_token"), (400, "malformed"), (400, "no_jku"), (413, "too_long"),
        (413, "too_large"), (404, "not_found"),
    ]  # fmt: skip
    assert (await _settings(local_gateway, tenant_id))["observedJku"] == []


async def test_observed_jku_lists_the_five_seen_first(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """The schema says at most 5 are shown (up to 20 are kept): the first seen, which no later
    sender can push out of view."""
    base_path_url = await _placeholder(local_gateway, tenant_id)
    named = [f"https://k{n}.mallory.example/j" for n in range(MAX_OBSERVED_SHOWN + 3)]
    for url in named:
        forged = _click_to_call(epic, base_path_url, jku=url)
        assert (await _call(local_gateway, base_path_url, forged)).status_code == 202

    shown = (await _settings(local_gateway, tenant_id))["observedJku"]

    assert [seen["url"] for seen in shown] == named[:MAX_OBSERVED_SHOWN]


async def test_a_token_longer_than_an_observation_keeps_is_refused(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    """Each kept token costs the tenant's document its length: a padded one is refused, so a
    full document stays small."""
    base_path_url = await _placeholder(local_gateway, tenant_id)
    padded = epic.token(
        epic.keys[0], aud=base_path_url, pad="x" * MAX_OBSERVED_TOKEN,
        header={"typ": "JWT", "jku": epic.jwks_url},
    )  # fmt: skip

    answer = await _call(local_gateway, base_path_url, padded)

    assert (answer.status_code, answer.json()["error"]) == (413, "too_long")
    assert (await _settings(local_gateway, tenant_id))["observedJku"] == []


async def test_what_is_shown_is_read_without_the_tokens(
    local_gateway: Gateway, database_url: str, epic: Issuer, tenant_id: str
) -> None:
    """A full document's tokens are most of its size, and observedJku shows none: they are kept
    apart from the rows shown, and the read of what is shown leaves them out."""
    base_path_url = await _placeholder(local_gateway, tenant_id)
    token = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, token)).status_code == 202
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database_url)
    try:
        store = ObservedJkuStore(client[TEST_DATABASE])
        shown = await store.read(tenant_id, tokens=False)
        for_adoption = await store.read(tenant_id)
    finally:
        await client.close()

    assert [seen.url for seen in shown] == [epic.jwks_url]
    assert [variant.token for variant in shown[0].variants] == [None]
    assert [variant.token for variant in for_adoption[0].variants] == [token]
