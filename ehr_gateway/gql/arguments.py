"""Arguments many root fields take, described once."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from ehr_gateway.resolvers.context import Context

TenantArg = Annotated[
    strawberry.ID,
    strawberry.argument(description="The tenant's id, as the caller's token names it."),
]

EXPECTED_VERSION = (
    "The version the client last read. If the settings have changed since, nothing is stored "
    "and the result is VersionConflict. Omit it to write over whatever version is current."
)
VersionArg = Annotated[int | None, strawberry.argument(description=EXPECTED_VERSION)]

# What a root field's resolver is told about the operation: the request's context.
ContextInfo = Info[Context, None]
