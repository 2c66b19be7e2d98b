"""The base path URL as a route anyone can reach: which requests it counts against which rate
limit, where it takes the token from, and which tenants it answers for. Behind the load balancer
the README requires, every client (Epic included) arrives from one address; in-process, every
request has the same client address too."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import httpx

from ehr_gateway.runtime.jku_observation_log import MISS_BURST
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import SELECT_ATHENA
from tests.epic_issuer import Issuer
from tests.gql.test_jku_onboarding import _call, _click_to_call, _placeholder, _settings
from tests.processes import GatewayProcess

MADE_UP = "https://gateway.example.test/gateways/" + "A" * 24


async def test_a_flood_at_a_made_up_id_does_not_silence_epic(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    forged = _click_to_call(epic, MADE_UP)
    for _ in range(80):
        await _call(local_gateway, MADE_UP, method="GET")  # no token
        await _call(local_gateway, MADE_UP, forged)  # a token, for no tenant

    answer = await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))

    assert answer.status_code == 202, (answer.status_code, answer.text)
    assert (await _settings(local_gateway, tenant_id))["observedJku"] != []


async def test_the_jwt_comes_as_a_bearer_token_or_a_json_member_only(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    token = _click_to_call(epic, base_path_url)

    # What any web page can make a browser send (a link, an image, a form) is not taken.
    cross_site = [
        await _call(local_gateway, base_path_url, method="GET", params={"jwt": token}),
        await _call(local_gateway, base_path_url, params={"jwt": token}),
        await _call(local_gateway, base_path_url, data={"jwt": token}),
        await _call(local_gateway, base_path_url, content=f'{{"jwt": "{token}"}}',
                    headers={"content-type": "text/plain"}),
    ]  # fmt: skip
    accepted = [
        await _call(local_gateway, base_path_url, token),
        await _call(local_gateway, base_path_url, json={"jwt": token, "phone": "+15555550100"}),
    ]

    assert [(a.status_code, a.json()["error"]) for a in cross_site] == [(401, "no_token")] * 4
    assert [answer.status_code for answer in accepted] == [202, 202]
    [observed] = (await _settings(local_gateway, tenant_id))["observedJku"]
    assert observed["count"] == 2


async def test_the_epic_base_path_of_a_tenant_on_athena_is_not_found(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    await local_gateway.execute(SELECT_ATHENA, tenantId=tenant_id)

    answer = await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))

    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")
    assert (await _settings(local_gateway, tenant_id))["observedJku"] == []


# Distinct made-up ids, each a new per-address bucket, spend the process's budget for ids not in
# the directory; Epic's id, in the directory from the start, is answered anyway (before, only an
# id this process had already found was: after every restart, Epic's first call got 429).
UNKNOWN_SPENT = "too many requests for unknown gateways"


async def _spend_the_unknown_id_budget(gateway: Gateway, epic: Issuer) -> None:
    """Made-up ids, each new, until the gateway refuses them for the budget."""
    for _ in range(MISS_BURST * 10):
        made_up = "https://gateway.example.test/gateways/" + uuid.uuid4().hex
        answer = await _call(gateway, made_up, _click_to_call(epic, made_up))
        if answer.status_code == 429 and answer.json()["message"] == UNKNOWN_SPENT:
            return
    raise AssertionError("the unknown-id budget was never spent")


async def test_distinct_made_up_ids_do_not_silence_epics_first_call(
    local_gateway: Gateway, epic: Issuer, tenant_id: str
) -> None:
    base_path_url = await _placeholder(local_gateway, tenant_id)
    await _spend_the_unknown_id_budget(local_gateway, epic)

    # Epic's call comes while the flood goes on (the budget refills at 10 a second).
    answer = await _call(local_gateway, base_path_url, _click_to_call(epic, base_path_url))

    assert answer.status_code == 202, (answer.status_code, answer.text)


async def test_after_a_restart_epics_id_is_answered_during_a_flood(
    database_url: str, tmp_path: Path, epic: Issuer, tenant_id: str
) -> None:
    """A restarted gateway (or a new replica) has never looked Epic's id up: it reads every
    Epic gateway id when it starts."""
    config = gateway_config(database_url, tmp_path)
    async for before in open_gateway(config):
        base_path_url = await _placeholder(before, tenant_id)
    async for restarted in open_gateway(config):
        await _spend_the_unknown_id_budget(restarted, epic)

        answer = await _call(restarted, base_path_url, _click_to_call(epic, base_path_url))

        assert answer.status_code == 202, (answer.status_code, answer.text)


# uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a client on the gateway's host (or
# behind a same-host proxy that passes the header on) would name a new address per request.
CREATE_EPIC_GATEWAY = """
mutation Create($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
  createExternalGateway(tenantId: $tenantId, connection: {
    name: "Epic", baseUrl: "https://fhir.hospital.example/api", environment: PRODUCTION
  }) { ... on SettingsSaved { settings { externalGateway { externalGatewayId } } } }
}
"""
FROM_THIS_ADDRESS = "too many requests from this address"


def _segment(member: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(member).encode()).rstrip(b"=").decode()


# Unverified anyway: a header naming a JKU and a signature of nothing.
TOKEN = ".".join(
    [_segment({"alg": "RS384", "jku": "https://keys.example/j", "kid": "a"}),
     _segment({"iss": "https://mallory.example"}), "c2ln"]
)  # fmt: skip


def test_x_forwarded_for_does_not_reset_the_per_address_limit(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path / "data")
    try:
        created = gateway.graphql(CREATE_EPIC_GATEWAY, tenantId="acme")["data"]
        gateway_id = created["createExternalGateway"]["settings"]["externalGateway"][
            "externalGatewayId"
        ]
        with httpx.Client(base_url=gateway.url, timeout=10) as client:
            answers = [
                client.post(
                    f"/gateways/{gateway_id}",
                    headers={"authorization": f"Bearer {TOKEN}",
                             "x-forwarded-for": f"203.0.113.{n}"},
                ).json().get("message")
                for n in range(150)
            ]  # fmt: skip
    finally:
        gateway.stop()

    # One client, one connection: past the burst of 60 the address limit refuses some (as it
    # does without the header); with the header honoured it never refuses any.
    assert FROM_THIS_ADDRESS in answers, answers
