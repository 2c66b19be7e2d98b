"""resolvers/jku_observations.py called directly: a request to a tenant's base path URL records
the JKU its JWT names (nothing trusted), and an integrator adopts it, after the key set it names
verifies a token that named it."""

from __future__ import annotations

from dataclasses import replace

from ehr_gateway.ehr.common import EhrProvider, SettingsBlock
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.gateway import create_external_gateway
from ehr_gateway.resolvers.jku_observations import (
    Observed,
    Refused,
    adopt_observed_jku,
    observe_jku,
    observed_jkus,
)
from ehr_gateway.resolvers.settings import get_settings, select_provider
from ehr_gateway.runtime.jku_observation_log import JkuObservations
from ehr_gateway.storage.observations import ObservedJkuStore
from tests.epic_issuer import Issuer
from tests.resolvers.helpers import failed, saved

EPIC = EhrProvider.EPIC
CONNECTION = {
    "name": "Epic",
    "baseUrl": "https://ehr.example.test/api",
    "environment": "PRODUCTION",
}
ADDRESS = "127.0.0.1"


def observing(context: Context) -> Context:
    """The context with the process's record of observed JKUs, as the app gives it."""
    store = ObservedJkuStore(context.repository.database)
    return replace(context, jku_observations=JkuObservations(store))


async def epic_gateway(context: Context, tenant_id: str) -> str:
    """An Epic tenant with an external gateway; its id."""
    saved(await select_provider(context, tenant_id, EPIC, 0))
    saved(await create_external_gateway(context, tenant_id, CONNECTION, 1))
    settings = await get_settings(context, tenant_id)
    assert settings is not None
    gateway = settings.providers[EPIC].external_gateway
    assert gateway is not None
    return gateway.external_gateway_id


async def test_an_observed_jku_is_adopted_with_the_issuer_of_the_token_it_verifies(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    context = observing(context)
    gateway_id = await epic_gateway(context, tenant_id)
    token = epic.token(epic.keys[0], header={"jku": epic.jwks_url})

    assert await observe_jku(context, gateway_id, token, ADDRESS) == Observed(epic.jwks_url)
    (seen,) = await observed_jkus(context, tenant_id)
    assert seen.url == epic.jwks_url and seen.variants[0].issuer == epic.url

    assert saved(await adopt_observed_jku(context, tenant_id, epic.jwks_url, 2)) == 3

    settings = await get_settings(context, tenant_id)
    assert settings is not None
    ehr = settings.providers[EPIC].ehr
    assert (ehr["jkuServerUrl"], ehr["jwtIssuerUrl"]) == (epic.jwks_url, epic.url)
    recorded = settings.providers[EPIC].jku
    assert recorded is not None and recorded.url == epic.jwks_url
    (newest,), _ = await context.repository.history(tenant_id, before=None, limit=1)
    assert newest.changed_blocks == (SettingsBlock.EHR,)


async def test_only_an_observed_jku_whose_keys_verify_a_token_naming_it_is_adopted(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    context = observing(context)
    gateway_id = await epic_gateway(context, tenant_id)
    assert failed(await adopt_observed_jku(context, tenant_id, epic.jwks_url, None)) == [
        (("url",), "NOT_OBSERVED")
    ]
    forged_key = Issuer().rotate("k1")  # same kid, another key: anyone can name a JKU
    forged = epic.token(forged_key, header={"jku": epic.jwks_url})
    assert isinstance(await observe_jku(context, gateway_id, forged, ADDRESS), Observed)
    assert failed(await adopt_observed_jku(context, tenant_id, epic.jwks_url, None)) == [
        (("url",), "UNVERIFIED_OBSERVATION")
    ]


async def test_a_request_that_cannot_be_recorded_is_refused_with_its_status(
    context: Context, tenant_id: str, epic: Issuer
) -> None:
    context = observing(context)
    gateway_id = await epic_gateway(context, tenant_id)
    token = epic.token(epic.keys[0], header={"jku": epic.jwks_url})
    no_jku = epic.token(epic.keys[0])
    cases = [
        (await observe_jku(context, gateway_id, None, ADDRESS), 401, "no_token"),
        (await observe_jku(context, gateway_id, "not a jwt", ADDRESS), 400, "malformed"),
        (await observe_jku(context, gateway_id, no_jku, ADDRESS), 400, "no_jku"),
        (await observe_jku(context, "short", token, ADDRESS), 404, "not_found"),
        (await observe_jku(context, "A" * 24, token, ADDRESS), 404, "not_found"),
    ]
    for refused, status, code in cases:
        assert isinstance(refused, Refused) and (refused.status, refused.code) == (status, code)
    assert await observed_jkus(context, tenant_id) == []
