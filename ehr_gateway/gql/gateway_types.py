"""External gateway operations' results: the connection test and id resolution."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.gql.enums import EhrProvider
from ehr_gateway.gql.results import ValidationFailed
from ehr_gateway.resolvers.gateway import ConnectionTest


@strawberry.type(description="Why an outbound call failed; the message never carries secrets.")
class OutboundFailure:
    code: str = strawberry.field(
        description="UNREACHABLE, TIMEOUT, PRIVATE_ADDRESS, INSECURE_URL, TOO_MANY_REDIRECTS, "
        "INSECURE_REDIRECT, RESPONSE_TOO_LARGE, HTTP_STATUS, NOT_JSON, NOT_FHIR or HTTP_ERROR."
    )
    message: str = strawberry.field(description="What went wrong, in words.")


@strawberry.type(description="What the EHR's FHIR metadata endpoint answered.")
class GatewayConnectionTest:
    url: str | None = strawberry.field(description="The metadata URL that was called.")
    reachable: bool = strawberry.field(description="Whether the server answered at all.")
    ok: bool = strawberry.field(description="Whether it answered with a CapabilityStatement.")
    fhir_version: str | None = strawberry.field(
        description="The FHIR version the CapabilityStatement declares."
    )
    software_name: str | None = strawberry.field(description="The server software's name.")
    software_version: str | None = strawberry.field(description="The server software's version.")
    failure: OutboundFailure | None = strawberry.field(
        description="Why the call failed; null when it succeeded."
    )

    @classmethod
    def of(cls, test: ConnectionTest) -> GatewayConnectionTest:
        capability = test.capability
        return cls(
            url=test.url,
            reachable=test.reachable,
            ok=capability is not None,
            fhir_version=capability.fhir_version if capability else None,
            software_name=capability.software_name if capability else None,
            software_version=capability.software_version if capability else None,
            failure=OutboundFailure(code=test.failure_code, message=test.failure_message or "")
            if test.failure_code
            else None,
        )


ConnectionTestResult = Annotated[
    GatewayConnectionTest | ValidationFailed,
    strawberry.union(
        "ConnectionTestResult",
        description="What the EHR answered, or why the test could not run (settings missing).",
    ),
]


@strawberry.type(description="The tenant and EHR an external gateway id belongs to.")
class ExternalGatewayOwner:
    tenant_id: strawberry.ID = strawberry.field(description="The tenant the id belongs to.")
    provider: EhrProvider = strawberry.field(description="The EHR the id connects to.")
