"""A flood of distinct made-up gateway ids from one address (every client has the load balancer's
address) spends the process-wide budget for unknown ids, and then Epic's own id is refused
too, unless this process happened to find it before: after every restart, deploy or new
replica, Epic's first click-to-call (the one onboarding waits for) answers 429 for as long as
the flood lasts (10 made-up ids a second suffice). The per-address limit does not stop it: it is
keyed by address *and* id, so each made-up id gets a fresh bucket. The README says a flood at
made-up ids does not silence Epic behind a load balancer."""

from __future__ import annotations

import uuid

from resolvers.jku_observation_log import MISS_BURST
from tests.conftest import Gateway
from tests.epic_issuer import Issuer
from tests.gql.test_jku_onboarding import _call, _click_to_call, _placeholder

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
