"""Arguments many root fields take, described once."""

from __future__ import annotations

from typing import Annotated

import strawberry

TenantArg = Annotated[
    strawberry.ID,
    strawberry.argument(description="The tenant's id, as the caller's token names it."),
]
