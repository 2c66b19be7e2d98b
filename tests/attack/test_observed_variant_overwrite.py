"""A forged token that copies the genuine token's issuer, kid and alg (all public: they are in
every token Epic sends, and in Epic's key set) lands in the same observed variant as Epic's
token and replaces the token kept for it. Adoption then finds no token that Epic's key set
verifies: one request after each Epic call blocks onboarding (UNVERIFIED_OBSERVATION), although
the README says a later request never overwrites an earlier observation's variant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.observations import MAX_OBSERVED_PER_TENANT
from tests.conftest import Gateway
from tests.epic_issuer import Issuer, serve_issuer
from tests.gql.test_jku_onboarding import ADOPT, _call, _click_to_call, _placeholder


@pytest.fixture
async def attacker() -> AsyncIterator[Issuer]:
    async with serve_issuer(first_kid="mallory") as issuer:
        yield issuer


async def test_a_forged_copy_of_the_genuine_variant_does_not_block_adoption(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    genuine = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, genuine)).status_code == 202
    # Mallory copies the header and issuer of Epic's token (kid k1, RS384, Epic's iss and jku)
    # and signs with her own key.
    forged = attacker.token(
        attacker.keys[0], aud=base_path_url, iss=epic.url,
        header={"typ": "JWT", "jku": epic.jwks_url, "kid": epic.keys[0].kid},
    )  # fmt: skip
    assert (await _call(local_gateway, base_path_url, forged)).status_code == 202

    adopted = (await local_gateway.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url))[
        "adoptObservedJku"
    ]

    assert adopted["__typename"] == "SettingsSaved", adopted


async def test_forged_variants_seen_more_often_do_not_evict_the_genuine_one(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    # Mallory, who knows the base path URL before Epic first calls, names Epic's key set first
    # (her variant is then the oldest, which is always kept) ...
    forged = attacker.token(
        attacker.keys[0], aud=base_path_url, header={"typ": "JWT", "jku": epic.jwks_url}
    )
    assert (await _call(local_gateway, base_path_url, forged)).status_code == 202
    genuine = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, genuine)).status_code == 202
    # ... and after Epic's call sends three more variants, each twice (well within the burst).
    for kid in ("m1", "m2", "m3"):
        other = attacker.token(
            attacker.keys[0], aud=base_path_url,
            header={"typ": "JWT", "jku": epic.jwks_url, "kid": kid},
        )  # fmt: skip
        for _ in range(2):
            assert (await _call(local_gateway, base_path_url, other)).status_code == 202

    adopted = (await local_gateway.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url))[
        "adoptObservedJku"
    ]

    assert adopted["__typename"] == "SettingsSaved", adopted


async def test_urls_named_once_after_epic_do_not_evict_epics_jku(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    # Mallory names a junk URL before Epic first calls: hers is then the first JKU ever seen,
    # the one the README says is never evicted.
    junk = _click_to_call(attacker, base_path_url, jku="https://junk.mallory.example/j")
    assert (await _call(local_gateway, base_path_url, junk)).status_code == 202
    genuine = _click_to_call(epic, base_path_url)
    assert (await _call(local_gateway, base_path_url, genuine)).status_code == 202
    # Then one request per host, as often as Epic called (once): later last-seen wins the tie.
    for n in range(MAX_OBSERVED_PER_TENANT - 1):
        forged = _click_to_call(attacker, base_path_url, jku=f"https://k{n}.mallory.example/j")
        assert (await _call(local_gateway, base_path_url, forged)).status_code == 202

    adopted = (await local_gateway.execute(ADOPT, tenantId=tenant_id, url=epic.jwks_url))[
        "adoptObservedJku"
    ]

    assert adopted["__typename"] == "SettingsSaved", adopted
