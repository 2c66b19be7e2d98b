"""Settings inputs built from the fields a client sent, not from every field the type has.

Strawberry turns a coerced GraphQL input value into an input object by walking every field of
the type (about 35 for a block input), converting each field's name and resolving its type,
and converting the few the client sent: on a write that sends one field, nearly all of that
walk finds nothing. ``from_input`` (the hook Strawberry calls instead of that walk, meant for
types that build their own value) does the same work once per type and schema: a table from
GraphQL name to Python name and how the value converts. Per value it then touches only the
fields present, and builds the object exactly as Strawberry's walk would: the same keyword
arguments (the fields the client sent, converted by ``convert_argument``'s own rules, and an
implicit None for fields without a default), so the same object, and nested inputs and lists
of them go through Strawberry's own conversion with the same path.

What passes unchanged: a value whose type (under any number of ``Optional``) is a leaf of the
schema's scalar registry or an enum, which ``convert_argument`` returns as it is given; every
other type (lists of inputs, nested inputs) is handed to ``convert_argument``.
``tests/gql/test_input_conversion.py`` compares the objects both build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.types.arguments import InputContext, _is_leaf_type
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.scalar import ScalarDefinition, ScalarWrapper

# One table per registry (each schema has its own): bounded, a caller building schemas on the
# fly is not remembered past it.
_REGISTRIES_MAX = 64

# For a field: its Python name, and its type when the value needs converting (None: taken as
# it is).
_Entry = tuple[str, StrawberryType | type | None]


# The types given the hook, in the order given (for the tests that compare it with Strawberry's
# own walk).
given_the_hook: list[type] = []


class _Table:
    """How one input type's values convert under one scalar registry."""

    __slots__ = ("defaults", "fields", "registry")

    def __init__(
        self,
        definition: StrawberryObjectDefinition,
        registry: Mapping[object, ScalarWrapper | ScalarDefinition],
        names: Any,
    ) -> None:
        self.registry = registry  # kept, so that its id is never another registry's
        # Strawberry's implicit None for input fields that have no default of their own.
        self.defaults: dict[str, None] = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }
        self.fields: dict[str, _Entry] = {}
        for field in definition.fields:
            type_ = field.resolve_type(type_definition=definition)
            passed = _passes_unchanged(type_, registry)
            self.fields[names.from_field(field)] = (field.python_name, None if passed else type_)


def _passes_unchanged(
    type_: StrawberryType | type, registry: Mapping[object, ScalarWrapper | ScalarDefinition]
) -> bool:
    """Whether ``convert_argument`` returns every value of ``type_`` as it is given: None and
    UNSET are, under an Optional; a leaf of the registry and an enum are, a GlobalID is not
    (it is decoded). Anything else (lists, inputs, lazy types) is left to it."""
    from strawberry.relay.types import GlobalID

    while isinstance(type_, StrawberryOptional) and not isinstance(type_, StrawberryMaybe):
        type_ = type_.of_type
    if isinstance(type_, (StrawberryMaybe, StrawberryList, LazyType)) or type_ is GlobalID:
        return False
    if has_object_definition(type_):
        return False
    if has_enum_definition(type_):
        return True
    return _is_leaf_type(type_, registry)


class _FromInput:
    """The ``from_input`` hook of one input type."""

    __slots__ = ("_definition", "_tables")

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self._definition = definition
        self._tables: dict[int, _Table] = {}

    def _table(self, context: InputContext) -> _Table:
        registry = context.scalar_registry
        table = self._tables.get(id(registry))
        if table is not None and table.registry is registry:
            return table
        table = _Table(self._definition, registry, context.config.name_converter)
        if len(self._tables) >= _REGISTRIES_MAX:
            self._tables.clear()
        self._tables[id(registry)] = table
        return table

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        table = self._table(context)
        fields = table.fields
        kwargs: dict[str, Any] = dict(table.defaults)
        for name, item in value.items():
            entry = fields.get(name)
            if entry is None:  # not a field of the type: Strawberry's walk never reads it
                continue
            python_name, type_ = entry
            kwargs[python_name] = item if type_ is None else context.convert(item, type_, name)
        return cls(**kwargs)


def build_from_sent_fields(*types: type) -> None:
    """Give each input type of ``types`` the hook above. A type with a ``Maybe`` field is
    refused: a type with a hook of its own is skipped by Strawberry's check of nulls sent to
    such fields."""
    for type_ in types:
        definition: StrawberryObjectDefinition = type_.__strawberry_definition__  # type: ignore[attr-defined]
        if not definition.is_input or definition.from_input is not None:
            raise TypeError(f"{definition.name} is not a plain input type")
        if any(isinstance(field.type, StrawberryMaybe) for field in definition.fields):
            raise TypeError(f"{definition.name} has a Maybe field")
        definition.from_input = _FromInput(definition)
        given_the_hook.append(type_)
