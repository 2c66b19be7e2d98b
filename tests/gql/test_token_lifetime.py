"""testOAuthToken's expiresIn: the token endpoint's ``expires_in`` when it is a lifetime in whole
seconds that fits GraphQL's Int (up to 2^31 - 1), whether sent as a JSON number or, as some
servers do, as a string of digits; null otherwise (absent, negative, fractional, beyond Int,
not a number). The token was still issued, so the test is still ok: the gateway never uses the
lifetime, and no value a token endpoint sends becomes an internal error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import Gateway
from tests.documents import GENERATE_SIGNING_KEY, SET_UP_EPIC_OAUTH, TEST_OAUTH_TOKEN
from tests.servers import serve_on_loopback


class TokenEndpoint:
    """A token endpoint that issues a token to any client, its ``expires_in`` written as the
    test sets it: raw JSON text, so that numbers Python would not write (1e400) are sent as a
    server would send them."""

    def __init__(self) -> None:
        self.url = ""
        self.expires_in = "3600"

    async def token(self, request: Request) -> Response:
        body = f'{{"access_token": "a", "token_type": "Bearer", "expires_in": {self.expires_in}}}'
        return Response(body, media_type="application/json")


@pytest.fixture(scope="module")
async def endpoint() -> AsyncIterator[TokenEndpoint]:
    endpoint = TokenEndpoint()
    app = Starlette(routes=[Route("/token", endpoint.token, methods=["POST"])])
    async with serve_on_loopback(app) as url:
        endpoint.url = f"{url}/token"
        yield endpoint


async def _tested_with(gateway: Gateway, endpoint: TokenEndpoint, expires_in: str) -> object:
    tenant_id = f"lifetime-{uuid.uuid4().hex[:8]}"
    await gateway.execute(SET_UP_EPIC_OAUTH, tenantId=tenant_id, tokenUrl=endpoint.url)
    await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)
    endpoint.expires_in = expires_in
    # execute fails the test on any GraphQL error: Int's range is enforced when the answer is
    # written, as an error beside a null.
    tested = (await gateway.execute(TEST_OAUTH_TOKEN, tenantId=tenant_id))["testOAuthToken"]
    assert tested["__typename"] == "OAuthTokenTest", tested
    assert (tested["ok"], tested["status"], tested["error"]) == (True, 200, None), tested
    return tested["expiresIn"]


@pytest.mark.parametrize(
    ("expires_in", "reported"),
    [
        ("3600", 3600),
        ('"3600"', 3600),  # a string of digits, as some token endpoints send it
        ("3600.0", 3600),  # a whole number written with a fraction
        ("0", 0),
        ("2147483647", 2**31 - 1),
    ],
)
async def test_a_whole_number_of_seconds_is_reported(
    local_gateway: Gateway, endpoint: TokenEndpoint, expires_in: str, reported: int
) -> None:
    assert await _tested_with(local_gateway, endpoint, expires_in) == reported


@pytest.mark.parametrize(
    "expires_in",
    [
        "2147483648",  # beyond GraphQL's Int
        "100000000000000000000000000000",
        '"2147483648"',
        "1e400",  # read as infinity
        "-1",
        '"-1"',
        "3599.5",
        "NaN",
        "true",  # a bool is no lifetime, though Python counts True as the int 1
        "null",
        '"an hour"',
        '"\u0663\u0666\u0660\u0660"',  # 3600 in Arabic-Indic digits, which int() would read
        '" 3600"',
    ],
)
async def test_anything_else_is_null_and_the_token_still_issued(
    local_gateway: Gateway, endpoint: TokenEndpoint, expires_in: str
) -> None:
    assert await _tested_with(local_gateway, endpoint, expires_in) is None
