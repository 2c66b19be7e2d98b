"""What one GraphQL document may ask for, and the validation rules that hold it to that."""

from __future__ import annotations

from dataclasses import dataclass

from graphql import ASTValidationRule
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    QueryDepthLimiter,
)

from ehr_gateway.gql.selection_limits import DEFAULT_MAX_REPEATS, DEFAULT_MAX_SELECTIONS


@dataclass(frozen=True, slots=True)
class Limits:
    """What one GraphQL document may ask for."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 800
    max_selections: int = DEFAULT_MAX_SELECTIONS
    max_repeats: int = DEFAULT_MAX_REPEATS


def validation_rules(limits: Limits, *, introspection: bool) -> list[type[ASTValidationRule]]:
    """The rules the gateway adds to GraphQL's own: the depth and alias limits, and no
    introspection unless it is on."""
    rules: list[type[ASTValidationRule]] = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not introspection:
        rules.extend(DisableIntrospection().validation_rules)
    return rules
