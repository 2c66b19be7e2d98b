"""JKU discovery and inbound JWT verification: results."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.experimental.pydantic import type as pydantic_type
from strawberry.scalars import JSON

from ehr import common


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
    message: str


JwtVerification = Annotated[JwtVerified | JwtRejected, strawberry.union("JwtVerification")]
