"""The schema: every feature's root fields (gql.features), joined into one Query, Mutation and
Subscription, under the gateway's limits, extensions and error policy. A feature's fields are
defined in its own module; a new feature is joined here."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types.field import StrawberryField

from ehr_gateway.gql.compiled_reads import (
    CompiledReadsExecution,
    CompiledReadsWithoutSuggestions,
)
from ehr_gateway.gql.conditions import ConditionsChecked
from ehr_gateway.gql.documents import DocumentCache, ParseByText
from ehr_gateway.gql.execution import ExecutionWithoutSuggestions, GatewaySchema
from ehr_gateway.gql.fast_reads import FastReads
from ehr_gateway.gql.fast_writes import FastWrites
from ehr_gateway.gql.features import (
    audit,
    epic_auth,
    gateway,
    history,
    promotion,
    restriction,
    settings,
    subscriptions,
    tenant_directory,
)
from ehr_gateway.gql.limits import Limits, validation_rules
from ehr_gateway.gql.list_budget import ListBudget
from ehr_gateway.gql.multiplex import Multiplexer
from ehr_gateway.gql.operation_record import RecordExecution
from ehr_gateway.gql.persisted_documents import PersistedDocumentsExtension, PersistedDocumentsSetup
from ehr_gateway.gql.scalars import SCALAR_OVERRIDES
from ehr_gateway.gql.selection_limits import SelectionLimits
from ehr_gateway.gql.validation_cache import ValidationByText

# More fields than the schema has: a caller making fields on the fly is not remembered.
_FIELDS_MAX = 8192


class _KnownNames(NameConverter):
    """Strawberry's names, each converted once. Strawberry converts the name of every field of
    an input type each time it builds an argument from one (about 40 names for a block input,
    on every write), with the same answer every time."""

    def __init__(self) -> None:
        super().__init__()
        # By field object (each kept here, so its id is never another's): a field's GraphQL
        # name is fixed once the schema is built.
        self._fields: dict[int, tuple[StrawberryField, str]] = {}

    @lru_cache(maxsize=4096)  # noqa: B019 (one converter per schema, kept as long as it)
    def apply_naming_config(self, name: str) -> str:
        return super().apply_naming_config(name)

    def from_field(self, field: StrawberryField) -> str:
        known = self._fields.get(id(field))
        if known is not None and known[0] is field:
            return known[1]
        name = super().from_field(field)
        if len(self._fields) < _FIELDS_MAX:
            self._fields[id(field)] = (field, name)
        return name


def _root(name: str, description: str, features: tuple[type, ...]) -> type:
    """One root type holding the fields of ``features``, in the order given: the order the
    printed schema (schema.graphql) lists them in."""
    merged = merge_types(name, features)
    merged.__strawberry_definition__.description = description  # type: ignore[attr-defined]
    return merged


# Each feature's fields stay together; the features are in the order their fields were
# published in, so schema.graphql reads as it did.
Query = _root(
    "Query",
    "Reads: settings, readiness, history, audit, verification, the tenant directory.",
    (
        settings.Query,
        history.Query,
        gateway.Query,
        epic_auth.Query,
        restriction.Query,
        audit.Query,
        promotion.Query,
        tenant_directory.Query,
    ),
)
Mutation = _root(
    "Mutation",
    "Writes, each on one tenant: expected failures are typed results, not errors.",
    (settings.Mutation, gateway.Mutation, epic_auth.Mutation, promotion.Mutation),
)
Subscription = subscriptions.Subscription


def gateway_schema(
    limits: Limits = Limits(),
    *,
    introspection: bool = True,
    suggestions: bool = True,
    persisted: PersistedDocumentsSetup | None = None,
    compiled_reads: bool = True,
) -> GatewaySchema:
    """The schema under ``limits``. ``suggestions``: whether errors may suggest names ("Did you
    mean ...?"), which tell a client names of the schema it did not know: like introspection,
    for development. ``compiled_reads``: whether settings reads are written by compiled plans
    (gql.compiled_reads); False runs every field through graphql-core (the generic path the
    compiled one is tested against)."""
    # The limiters' validation rules are built once: the validation cache is keyed by the rule
    # classes, and a limiter built per request would make a new class, and a miss, every time.
    rules = validation_rules(limits, introspection=introspection)
    selection_limits = SelectionLimits(limits.max_selections, limits.max_repeats)
    # Parsed documents, shared by HTTP, WebSocket operations and the multiplexer, within one
    # token limit and one memory budget.
    documents = DocumentCache()
    # Factories: Strawberry builds a fresh extension for each operation.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: PersistedDocumentsExtension(built.persisted),
        lambda: ParseByText(documents),
        ListBudget,
        lambda: ValidationByText(selection_limits, hide_suggestions=not suggestions),
        RecordExecution,
    ]
    built = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=_execution_class(suggestions=suggestions, compiled=compiled_reads),
        scalar_overrides=SCALAR_OVERRIDES,
        config=StrawberryConfig(name_converter=_KnownNames()),
    )
    built.documents = documents
    built.suggestions = suggestions
    # Trusted documents are validated by the schema they run on, with the rules requests get.
    built.persisted = (persisted or PersistedDocumentsSetup()).build(
        built._schema, rules, selection_limits, limits.max_tokens,
        hide_suggestions=not suggestions,
    )  # fmt: skip
    built.multiplexer = Multiplexer(documents, limits.max_tokens)
    if compiled_reads:
        built.fast_reads = FastReads(built, hide_suggestions=not suggestions)
        built.fast_writes = FastWrites(built, hide_suggestions=not suggestions)
    return built


def _execution_class(*, suggestions: bool, compiled: bool) -> type[Any]:
    if compiled:
        return CompiledReadsExecution if suggestions else CompiledReadsWithoutSuggestions
    return ConditionsChecked if suggestions else ExecutionWithoutSuggestions


schema = gateway_schema()
