"""The sign-in issuer's key set is fetched within the outbound timeout as a whole: an issuer (or
anything on its path) that drips it a part at a time, each within the timeout, is given up on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.conftest import gateway_config, open_gateway
from tests.documents import READ_VERSION
from tests.issuers import SignInIssuer, new_key, serve_issuer

# What the staff token needs to read settings, and no more.
VIEWER = ["viewer"]
# The gateway's outbound timeout in the issuer test, and how the issuer drips its key set: a
# part every DRIP_EVERY_S (each well within the timeout), DRIP_PARTS of them (far beyond it).
OUTBOUND_TIMEOUT_S = 1.0
DRIP_EVERY_S = 0.3
DRIP_PARTS = 30


@dataclass
class DrippingIssuer(SignInIssuer):
    """An OpenID issuer whose key set arrives a few bytes at a time, each part within any read
    timeout; notes whether it got to send the last part."""

    drip_finished: bool = False

    async def key_set(self, request: Request) -> Response:
        body = orjson.dumps(self.public_key_set())
        size = -(-len(body) // DRIP_PARTS)

        async def parts() -> AsyncIterator[bytes]:
            for start in range(0, len(body), size):
                yield body[start : start + size]
                await asyncio.sleep(DRIP_EVERY_S)
            self.drip_finished = True

        return StreamingResponse(parts(), media_type="application/json")


@pytest.fixture
async def dripping_issuer() -> AsyncIterator[DrippingIssuer]:
    async with serve_issuer(DrippingIssuer(new_key("drip-key-1"))) as issuer:
        yield issuer


async def test_a_key_set_dripped_past_the_outbound_timeout_is_given_up_on(
    database_url: str, tmp_path: Path, dripping_issuer: DrippingIssuer
) -> None:
    """Attack (a misbehaving or compromised sign-in issuer, or anything on its path): send the
    key set a few bytes at a time, each part within the outbound timeout (1 s here), 30 parts
    0.3 s apart. README ("Calls the gateway makes"): the sign-in issuer "is read by a client of
    its own with the outbound timeout". That client is a plain httpx client, whose timeout
    bounds each read, not the call: the gateway reads the whole 9 s drip, holding the key
    fetch's lock, so every request needing the keys (each one once they are 5 minutes old)
    waits behind it, without bound. The outbound client for tenants' calls bounds the whole
    call (runtime.outbound.exchange: asyncio.timeout over every hop); this one does not."""
    config = gateway_config(
        database_url, tmp_path, auth_issuer=dripping_issuer.url, allow_insecure_http=True,
        outbound_timeout_s=OUTBOUND_TIMEOUT_S,
    )  # fmt: skip
    async for gateway in open_gateway(config):
        await gateway.client.post(
            "/graphql",
            json={"query": READ_VERSION, "variables": {"tenantId": "acme"}},
            headers={"authorization": f"Bearer {dripping_issuer.staff(VIEWER)}"},
            timeout=60,
        )
    assert not dripping_issuer.drip_finished, (
        f"the gateway read a key set dripped over {DRIP_PARTS * DRIP_EVERY_S:g} s to its end, "
        f"with an outbound timeout of {OUTBOUND_TIMEOUT_S:g} s"
    )
