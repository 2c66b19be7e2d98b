"""Patient restriction: evaluating a tenant's CEL expression for a patient."""

from __future__ import annotations

from typing import Annotated

import strawberry

from ehr_gateway.gql.arguments import ContextInfo, TenantArg
from ehr_gateway.gql.authorization import needs
from ehr_gateway.gql.results import ValidationFailed
from ehr_gateway.resolvers import settings
from ehr_gateway.resolvers.outcomes import Failed
from ehr_gateway.runtime.access import Permission


@strawberry.type(description="The outcome of evaluating a tenant's patient restriction.")
class RestrictionEvaluated:
    restricted: bool = strawberry.field(
        description="Whether the patient's information is restricted (false when the tenant has "
        "no expression)."
    )
    expression: str | None = strawberry.field(description="The expression that was evaluated.")


RestrictionResult = Annotated[
    RestrictionEvaluated | ValidationFailed,
    strawberry.union(
        "RestrictionResult",
        description="The evaluation, or why it could not run (e.g. an age out of range).",
    ),
]


@strawberry.type
class Query:
    @strawberry.field(
        extensions=needs(Permission.READ),
        description="Evaluate the tenant's patient restriction expression for a patient's age.",
    )
    async def evaluate_patient_restriction(
        self,
        info: ContextInfo,
        tenant_id: TenantArg,
        age: Annotated[int, strawberry.argument(description="The patient's age in whole years.")],
    ) -> RestrictionResult:
        outcome = await settings.evaluate_patient_restriction(info.context, tenant_id, age)
        if isinstance(outcome, Failed):
            return ValidationFailed.of(outcome)
        restricted, expression = outcome
        return RestrictionEvaluated(restricted=restricted, expression=expression)
