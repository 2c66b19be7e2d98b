"""What adoptObservedJku trusts of an observation comes from a token the adopted key set signed:
anyone who knows a tenant's base path URL can send it tokens naming Epic's (public) JKU with an
issuer and kid of their own, or naming key sets of their own, and none of that may become the
tenant's JWT Issuer URL, block adopting Epic's key set, or push Epic's observation out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ehr_gateway.storage.observations import MAX_OBSERVED_PER_TENANT
from tests.conftest import Gateway
from tests.epic_issuer import Issuer, serve_issuer
from tests.gql.test_jku_onboarding import (
    ADOPT,
    _call,
    _click_to_call,
    _placeholder,
    _settings,
    _verify,
)

FORGER_ISSUER = "https://mallory.example/issuer"


def _forge(
    attacker: Issuer,
    base_path_url: str,
    *,
    jku: str,
    kid: str | None = None,
    iss: str | None = None,
) -> str:
    """Mallory's token, signed with her own key, naming ``jku`` (``kid``, ``iss``) as she likes."""
    header = {"typ": "JWT", "jku": jku} | ({"kid": kid} if kid is not None else {})
    claims = {"iss": iss} if iss is not None else {}
    return attacker.token(attacker.keys[0], aud=base_path_url, header=header, **claims)


async def _observe(gateway: Gateway, base_path_url: str, token: str) -> None:
    """A call on the base path route, which takes every token for observation (202)."""
    assert (await _call(gateway, base_path_url, token)).status_code == 202


async def _adopt(gateway: Gateway, tenant_id: str, url: str) -> dict[str, Any]:
    return (await gateway.execute(ADOPT, tenantId=tenant_id, url=url))["adoptObservedJku"]


@pytest.fixture
async def attacker() -> AsyncIterator[Issuer]:
    async with serve_issuer(first_kid="mallory") as issuer:
        yield issuer


async def test_a_forged_token_cannot_set_the_issuer_of_the_genuine_jku(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    genuine = _click_to_call(epic, base_path_url)
    await _observe(local_gateway, base_path_url, genuine)
    # Mallory's token names Epic's key set and kid but her own issuer, signed with her own key.
    forged = _forge(attacker, base_path_url, jku=epic.jwks_url, kid="k1", iss=FORGER_ISSUER)
    await _observe(local_gateway, base_path_url, forged)

    [seen] = (await _settings(local_gateway, tenant_id))["observedJku"]
    integrator = local_gateway.as_caller(tenants=[tenant_id], roles=["integrator"])
    adopted = await _adopt(integrator, tenant_id, epic.jwks_url)

    assert seen["issuer"] == epic.url, seen
    assert seen["count"] == 2
    assert adopted["__typename"] == "SettingsSaved", adopted
    assert adopted["settings"]["ehr"]["jwtIssuerUrl"] == epic.url, adopted
    assert (await _verify(local_gateway, tenant_id, genuine))["__typename"] == "JwtVerified"


async def test_the_forged_variant_is_skipped_even_when_it_is_the_most_seen(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    assert (
        await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))
    ).status_code == 202
    forged = _forge(attacker, base_path_url, jku=epic.jwks_url, kid="k1", iss=FORGER_ISSUER)
    for _ in range(3):
        await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

    assert adopted["settings"]["ehr"]["jwtIssuerUrl"] == epic.url, adopted


async def test_a_forged_kid_cannot_block_adopting_the_genuine_jku(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    assert (
        await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))
    ).status_code == 202
    forged = _forge(attacker, base_path_url, jku=epic.jwks_url, kid="no-such-kid", iss=epic.url)
    await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

    assert adopted["__typename"] == "SettingsSaved", adopted


async def test_a_jku_no_verifying_token_named_is_not_adopted(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    # Only Mallory's token names Epic's key set: nothing Epic signed vouches for the issuer.
    forged = _forge(attacker, base_path_url, jku=epic.jwks_url, kid="k1", iss=FORGER_ISSUER)
    await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)
    settings = await _settings(local_gateway, tenant_id)

    assert adopted["__typename"] == "ValidationFailed", adopted
    assert [(e["path"], e["code"]) for e in adopted["errors"]] == [
        (["url"], "UNVERIFIED_OBSERVATION")
    ]
    assert settings["ehr"]["jwtIssuerUrl"] is None
    assert settings["ehr"]["jkuServerUrl"] == base_path_url  # nothing stored


async def test_forged_tokens_cannot_evict_the_genuine_observation(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    assert (
        await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))
    ).status_code == 202
    # More URLs than a tenant keeps (within its burst), on one key server and on many hosts.
    for n in range(8):
        forged = _click_to_call(attacker, base_path_url, jku=f"{attacker.jwks_url}?n={n}")
        await _observe(local_gateway, base_path_url, forged)
    for n in range(MAX_OBSERVED_PER_TENANT):
        forged = _click_to_call(attacker, base_path_url, jku=f"https://k{n}.mallory.example/j")
        await _observe(local_gateway, base_path_url, forged)

    seen = [o["url"] for o in (await _settings(local_gateway, tenant_id))["observedJku"]]
    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

    assert epic.jwks_url in seen, seen
    assert adopted["__typename"] == "SettingsSaved", adopted


async def test_a_key_set_behind_a_redirect_on_epics_host_is_not_adopted(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    # Epic's host has an open redirect: Mallory names a URL on it that leads to her key set.
    epic_looking = f"{epic.url}/go?to={attacker.jwks_url}"
    forged = _click_to_call(attacker, base_path_url, jku=epic_looking)
    await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic_looking)
    settings = await _settings(local_gateway, tenant_id)

    assert adopted["__typename"] == "ValidationFailed", adopted
    assert [(e["path"], e["code"]) for e in adopted["errors"]] == [(["url"], "REDIRECT_REFUSED")]
    assert settings["ehr"]["jkuServerUrl"] == base_path_url  # nothing stored


# A forged token copying the genuine one's issuer, kid and alg (all public) lands in the same
# variant: the token kept for it is the first, never the latest.
async def test_a_forged_copy_of_the_genuine_variant_does_not_block_adoption(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    genuine = _click_to_call(epic, base_path_url)
    await _observe(local_gateway, base_path_url, genuine)
    # Mallory copies the header and issuer of Epic's token (kid k1, RS384, Epic's iss and jku)
    # and signs with her own key.
    forged = _forge(attacker, base_path_url, jku=epic.jwks_url, kid=epic.keys[0].kid, iss=epic.url)
    await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

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
    await _observe(local_gateway, base_path_url, forged)
    genuine = _click_to_call(epic, base_path_url)
    await _observe(local_gateway, base_path_url, genuine)
    # ... and after Epic's call sends three more variants, each twice (well within the burst).
    for kid in ("m1", "m2", "m3"):
        other = _forge(attacker, base_path_url, jku=epic.jwks_url, kid=kid)
        for _ in range(2):
            await _observe(local_gateway, base_path_url, other)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

    assert adopted["__typename"] == "SettingsSaved", adopted


async def test_urls_named_once_after_epic_do_not_evict_epics_jku(
    local_gateway: Gateway, epic: Issuer, attacker: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    # Mallory names a junk URL before Epic first calls: hers is then the first JKU ever seen,
    # the one the README says is never evicted.
    junk = _click_to_call(attacker, base_path_url, jku="https://junk.mallory.example/j")
    await _observe(local_gateway, base_path_url, junk)
    genuine = _click_to_call(epic, base_path_url)
    await _observe(local_gateway, base_path_url, genuine)
    # Then one request per host, as often as Epic called (once): later last-seen wins the tie.
    for n in range(MAX_OBSERVED_PER_TENANT - 1):
        forged = _click_to_call(attacker, base_path_url, jku=f"https://k{n}.mallory.example/j")
        await _observe(local_gateway, base_path_url, forged)

    adopted = await _adopt(local_gateway, tenant_id, epic.jwks_url)

    assert adopted["__typename"] == "SettingsSaved", adopted
