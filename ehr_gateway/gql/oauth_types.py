"""Epic OAuth operations' results."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.ehr.oauth import TokenOutcome
from ehr_gateway.gql.results import ValidationFailed


@strawberry.type(
    description="What Epic's token endpoint answered to a signed client assertion. The access "
    "token itself is never returned or stored."
)
class OAuthTokenTest:
    ok: bool = strawberry.field(description="Whether a token was issued.")
    status: int = strawberry.field(description="The HTTP status (0 when no answer came).")
    token_type: str | None = strawberry.field(description="The issued token's type, e.g. Bearer.")
    scope: str | None = strawberry.field(description="The scope the token was granted.")
    expires_in: int | None = strawberry.field(
        description="Seconds the token would be valid: the token URL's expires_in, when it is a "
        "whole number of seconds up to 2147483647 (sent as a number or a string of digits); null "
        "when it sent none or another value (negative, fractional, larger, not a number)."
    )
    error: str | None = strawberry.field(
        description="The OAuth error (e.g. invalid_client), or why no answer came (UNREACHABLE, "
        "TIMEOUT, PRIVATE_ADDRESS, NOT_JSON, REDIRECT_REFUSED: the token URL answered with a "
        "redirect, which is not followed, ...)."
    )
    error_description: str | None = strawberry.field(
        description="The token URL's error_description, when it sent one."
    )

    @classmethod
    def of(cls, outcome: TokenOutcome) -> OAuthTokenTest:
        return cls(
            ok=outcome.ok, status=outcome.status, token_type=outcome.token_type,
            scope=outcome.scope, expires_in=outcome.expires_in, error=outcome.error,
            error_description=outcome.error_description,
        )  # fmt: skip


OAuthTokenTestResult = Annotated[
    OAuthTokenTest | ValidationFailed,
    strawberry.union(
        "OAuthTokenTestResult",
        description="What the token URL answered, or why the test could not run (settings "
        "missing).",
    ),
]
