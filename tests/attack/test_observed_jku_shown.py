"""The schema says integrationSettings.observedJku holds "at most 5" JKUs; it returns every one
a tenant keeps (up to 20), each chosen by whoever sends tokens to the base path URL."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.epic_issuer import Issuer
from tests.gql.test_jku_onboarding import _call, _click_to_call, _placeholder, _settings

DOCUMENTED_MOST = 5


async def test_observed_jku_lists_at_most_five(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    for n in range(DOCUMENTED_MOST + 3):
        forged = _click_to_call(epic, base_path_url, jku=f"https://k{n}.mallory.example/j")
        assert (await _call(local_gateway, base_path_url, forged)).status_code == 202

    shown = (await _settings(local_gateway, tenant_id))["observedJku"]

    assert len(shown) <= DOCUMENTED_MOST, [seen["url"] for seen in shown]
