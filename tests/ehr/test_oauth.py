"""Epic Backend Services OAuth (ehr/oauth.py): the client assertion and the token answer."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt

from ehr_gateway.ehr.oauth import (
    ASSERTION_ALG,
    ASSERTION_LIFETIME_S,
    TokenOutcome,
    client_assertion,
    new_key,
    public_jwk,
    read_token_response,
)

TOKEN_URL = "https://auth.example.test/oauth2/token"


def test_a_client_assertion_is_an_rs384_jwt_for_the_token_endpoint() -> None:
    key = new_key()
    token = jwt.decode(
        client_assertion(key, "client-1", TOKEN_URL), key, algorithms=[ASSERTION_ALG]
    )
    assert token.header == {"alg": "RS384", "typ": "JWT", "kid": key.kid}
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["aud"] == TOKEN_URL
    assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME_S == 300
    assert claims["nbf"] == claims["iat"]
    again = jwt.decode(client_assertion(key, "client-1", TOKEN_URL), key, algorithms=["RS384"])
    assert again.claims["jti"] != claims["jti"]


def test_the_published_key_is_public_only() -> None:
    published = public_jwk(new_key())
    assert published["alg"] == "RS384" and published["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & published.keys()


def test_a_token_answer_is_read_without_keeping_the_token() -> None:
    outcome = read_token_response(
        200, {"access_token": "secret-token", "token_type": "Bearer", "expires_in": 3600,
              "scope": "system/Patient.read"}
    )  # fmt: skip
    assert outcome == TokenOutcome(True, 200, "Bearer", "system/Patient.read", 3600)
    assert "secret-token" not in repr(outcome)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_client", "error_description": "bad assertion"}, "invalid_client"),
        (200, {"token_type": "Bearer"}, "invalid_response"),
        (200, "not json", "invalid_response"),
        (500, None, "invalid_response"),
        (401, {"error": ["not", "text"]}, "invalid_response"),
    ],
)
def test_a_refusal_or_an_odd_answer_is_not_ok(status: int, body: Any, error: str) -> None:
    outcome = read_token_response(status, body)
    assert (outcome.ok, outcome.status, outcome.error) == (False, status, error)


def test_answer_text_is_capped() -> None:
    outcome = read_token_response(400, {"error": "e" * 5000, "error_description": "d" * 5000})
    assert outcome.error == "e" * 512 and outcome.error_description == "d" * 512
