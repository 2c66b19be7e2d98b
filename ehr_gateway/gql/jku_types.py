"""JKU discovery and inbound JWT verification: results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.experimental.pydantic import type as pydantic_type
from strawberry.scalars import JSON

from ehr_gateway.ehr import common
from ehr_gateway.storage.observations import Observation


@pydantic_type(
    model=common.JkuKey, all_fields=True, name="JkuKey", description=common.JkuKey.__doc__
)
class JkuKeyType:
    pass


@pydantic_type(
    model=common.JkuSnapshot, all_fields=True, name="JkuKeySet",
    description=common.JkuSnapshot.__doc__,
)  # fmt: skip
class JkuKeySetType:
    pass


@strawberry.type(
    description="A JKU named by the JWTs of requests to the tenant's base path URL, as observed: "
    "nothing here was verified or fetched. adoptObservedJku (integrators) checks it and makes it "
    "the JKU Server URL."
)
class ObservedJku:
    url: str = strawberry.field(description="The `jku` the tokens' header named.")
    kid: str | None = strawberry.field(description="The `kid` of the first token that named it.")
    alg: str | None = strawberry.field(description="The `alg` of the first token that named it.")
    issuer: str | None = strawberry.field(
        description="The `iss` claim of the first token that named it."
    )
    first_seen: datetime = strawberry.field(description="When a token first named it.")
    last_seen: datetime = strawberry.field(description="When a token last named it.")
    count: int = strawberry.field(description="How many accepted requests named it.")

    @classmethod
    def of(cls, seen: Observation) -> ObservedJku:
        return cls(
            url=seen.url, kid=seen.kid, alg=seen.alg, issuer=seen.issuer,
            first_seen=seen.first_seen, last_seen=seen.last_seen, count=seen.count,
        )  # fmt: skip


@strawberry.type(description="The JWT is genuine: signed by a key of the configured JKU, by the "
                 "configured issuer, and within its validity period.")  # fmt: skip
class JwtVerified:
    claims: JSON = strawberry.field(description="The token's claims.")
    kid: str | None = strawberry.field(description="The id of the key that signed it.")
    alg: str = strawberry.field(description="The algorithm it was signed with.")


@strawberry.type(description="The JWT is refused, and why.")
class JwtRejected:
    code: str = strawberry.field(
        description="MALFORMED, DISALLOWED_ALG, JKU_MISMATCH, UNKNOWN_KID, BAD_SIGNATURE, "
        "EXPIRED, NOT_YET_VALID, WRONG_ISSUER, MISSING_CLAIM, INVALID_CLAIM, NOT_CONFIGURED, "
        "JKU_UNAVAILABLE, JKU_INVALID, NOT_FOUND, NOT_EPIC or TOO_LONG."
    )
    message: str = strawberry.field(description="The reason in words.")
    token_jku: str | None = strawberry.field(
        default=None,
        description="The JKU the token's header named, for JKU_MISMATCH (null if it was too long "
        "or not printable): observed JKUs show it too, and adoptObservedJku adopts it.",
    )


JwtVerification = Annotated[
    JwtVerified | JwtRejected,
    strawberry.union("JwtVerification", description="Whether the JWT is genuine, and why not."),
]
