"""integrationSettings.observedJku and the base path route over an observation whose fields a
database writer gave types no gateway writes (a count that is text or past GraphQL's Int, a date
that is text): the observation is left out, the settings read answers, and the route records the
next token as it would on a tenant with no observation. A count saturates at the largest Int."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from ehr_gateway.storage.observations import OBSERVED_JKU
from tests.conftest import TEST_DATABASE, Gateway
from tests.epic_issuer import Issuer
from tests.gql.test_jku_onboarding import OBSERVED, _call, _click_to_call, _placeholder

INT_MAX = 2**31 - 1  # GraphQL's Int: a 32-bit signed integer


def _set_count(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(observation: dict[str, Any]) -> None:
        observation["count"] = value

    return edit


def _set_variant_count(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(observation: dict[str, Any]) -> None:
        observation["variants"][0]["count"] = value

    return edit


def _set_first_seen(value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(observation: dict[str, Any]) -> None:
        observation["firstSeen"] = value

    return edit


RETYPED = {
    "a count past GraphQL's Int": _set_count(INT_MAX + 1),
    "a negative count": _set_count(-1),
    "a count that is text": _set_count("2"),
    "a variant's count that is a list": _set_variant_count([2]),
    "a first sighting that is text": _set_first_seen("yesterday"),
}


async def _edit_observation(
    gateway: Gateway, tenant_id: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    """What a database writer does with its own client (the embedded database asks none)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(gateway.config.mongodb_url)
    try:
        observed = client[TEST_DATABASE][OBSERVED_JKU]
        document = await observed.find_one({"_id": tenant_id})
        assert document is not None
        [observation] = document["observations"]
        edit(observation)
        await observed.update_one(
            {"_id": tenant_id}, {"$set": {"observations": document["observations"]}}
        )
    finally:
        await client.close()


@pytest.mark.parametrize("retyped", list(RETYPED))
async def test_an_observation_retyped_is_left_out_and_the_next_one_recorded(
    local_gateway: Gateway, epic: Issuer, tenant_id: str, retyped: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    token = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, token)).status_code == 202
    await _edit_observation(local_gateway, tenant_id, RETYPED[retyped])

    shown = await local_gateway.post(OBSERVED, tenantId=tenant_id)
    again = await _call(local_gateway, base_path_url, token)
    after = await local_gateway.execute(OBSERVED, tenantId=tenant_id)

    assert "errors" not in shown, shown["errors"]
    assert shown["data"]["integrationSettings"]["observedJku"] == []
    assert again.status_code == 202, again.text
    [observed] = after["integrationSettings"]["observedJku"]
    assert (observed["url"], observed["count"]) == (epic.jwks_url, 1)


async def test_a_count_saturates_at_the_largest_graphql_int(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    token = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, token)).status_code == 202
    await _edit_observation(local_gateway, tenant_id, _set_count(INT_MAX))
    await _edit_observation(local_gateway, tenant_id, _set_variant_count(INT_MAX))

    assert (await _call(local_gateway, base_path_url, token)).status_code == 202
    after = await local_gateway.post(OBSERVED, tenantId=tenant_id)

    assert "errors" not in after, after["errors"]
    [observed] = after["data"]["integrationSettings"]["observedJku"]
    assert observed["count"] == INT_MAX
