"""GraphQL inputs, generated from the ehr models: one partial-update input per block and EHR, and
one @oneOf input per block with a member per EHR.

A block input has every field of its model, all optional: an omitted field keeps its stored value,
an explicit null clears it back to its default. The inputs only shape the request; the values are
validated by the ehr models after they are merged with what is stored, so every rule (including
cross-field ones) sees the final state.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry
from pydantic import BaseModel, Field, create_model
from pydantic.alias_generators import to_camel
from strawberry.experimental.pydantic import input as pydantic_input

from ehr_gateway.ehr import athena, cerner, common, ellkay, epic
from ehr_gateway.ehr.fields import NameValue
from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.gql.enums import EhrProvider
from ehr_gateway.gql.input_conversion import build_from_sent_fields
from ehr_gateway.resolvers.settings import SECRET_MAX

PARTIAL = " Omitted fields keep their stored value; a field set to null goes back to its default."


def _unset() -> Any:
    return strawberry.UNSET


def partial(model: type[BaseModel]) -> type[BaseModel]:
    """A copy of ``model`` whose fields are all optional and default to UNSET; a write-only
    secret becomes a plain string to set it."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        description = field.description or ""
        if annotation is StoredSecret:
            annotation = str
            description = (
                f"{description} Send the new value (at most {SECRET_MAX} characters); null "
                "removes it."
            )
        fields[name] = (
            annotation | None,
            Field(default_factory=_unset, description=description),
        )
    return create_model(f"{model.__name__}Patch", **fields)


@pydantic_input(
    model=NameValue, all_fields=True, name="NameValueInput", description=NameValue.__doc__
)
class NameValueInput:
    pass


@pydantic_input(
    model=common.CustomHeader, all_fields=True, name="CustomHeaderInput",
    description=common.CustomHeader.__doc__,
)  # fmt: skip
class CustomHeaderInput:
    pass


@pydantic_input(
    model=common.ExternalGatewayConnection, all_fields=True,
    name="ExternalGatewayConnectionInput", description=common.ExternalGatewayConnection.__doc__,
)  # fmt: skip
class ExternalGatewayConnectionInput:
    pass


@pydantic_input(
    model=partial(epic.EpicHeaderSettings), all_fields=True, name="EpicHeaderSettingsInput",
    description="Epic header settings." + PARTIAL,
)  # fmt: skip
class EpicHeaderSettingsInput:
    pass


@pydantic_input(
    model=partial(common.GenericHeaderSettings), all_fields=True,
    name="GenericHeaderSettingsInput",
    description="Custom headers (Athena, Cerner, Ellkay)." + PARTIAL,
)  # fmt: skip
class GenericHeaderSettingsInput:
    pass


@pydantic_input(
    model=partial(epic.EpicFhirSettings), all_fields=True, name="EpicFhirSettingsInput",
    description="Epic FHIR settings." + PARTIAL,
)  # fmt: skip
class EpicFhirSettingsInput:
    pass


@pydantic_input(
    model=partial(athena.AthenaFhirSettings), all_fields=True, name="AthenaFhirSettingsInput",
    description="Athena FHIR settings." + PARTIAL,
)  # fmt: skip
class AthenaFhirSettingsInput:
    pass


@pydantic_input(
    model=partial(cerner.CernerFhirSettings), all_fields=True, name="CernerFhirSettingsInput",
    description="Cerner FHIR settings." + PARTIAL,
)  # fmt: skip
class CernerFhirSettingsInput:
    pass


@pydantic_input(
    model=partial(epic.EpicSettings), all_fields=True, name="EpicSettingsInput",
    description="Epic settings." + PARTIAL,
)  # fmt: skip
class EpicSettingsInput:
    pass


@pydantic_input(
    model=partial(athena.AthenaSettings), all_fields=True, name="AthenaSettingsInput",
    description="Athena settings." + PARTIAL,
)  # fmt: skip
class AthenaSettingsInput:
    pass


@pydantic_input(
    model=partial(ellkay.EllkaySettings), all_fields=True, name="EllkaySettingsInput",
    description="Ellkay settings." + PARTIAL,
)  # fmt: skip
class EllkaySettingsInput:
    pass


@pydantic_input(
    model=partial(epic.EpicOAuthSettings), all_fields=True, name="EpicOAuthSettingsInput",
    description="Epic OAuth settings." + PARTIAL,
)  # fmt: skip
class EpicOAuthSettingsInput:
    pass


_MEMBER = " Exactly one member; it must be the tenant's active EHR."
_NAMES = {"epic": "Epic", "athena": "Athena", "cerner": "Cerner", "ellkay": "Ellkay"}


def _member(ehr: str) -> Any:
    """A member of a @oneOf block input, named for its EHR."""
    return strawberry.field(
        default=strawberry.UNSET,
        description=f"The block's {_NAMES[ehr]} settings: for a tenant whose active EHR is "
        f"{_NAMES[ehr]}.",
    )


@strawberry.input(one_of=True, description="Header settings for one EHR." + _MEMBER)
class HeaderSettingsInput:
    epic: EpicHeaderSettingsInput | None = _member("epic")
    athena: GenericHeaderSettingsInput | None = _member("athena")
    cerner: GenericHeaderSettingsInput | None = _member("cerner")
    ellkay: GenericHeaderSettingsInput | None = _member("ellkay")


@strawberry.input(one_of=True, description="FHIR settings for one EHR." + _MEMBER)
class FhirSettingsInput:
    epic: EpicFhirSettingsInput | None = _member("epic")
    athena: AthenaFhirSettingsInput | None = _member("athena")
    cerner: CernerFhirSettingsInput | None = _member("cerner")


@strawberry.input(
    one_of=True,
    description="EHR-specific settings for one EHR (Cerner has none to set)." + _MEMBER,
)
class EhrSettingsInput:
    epic: EpicSettingsInput | None = _member("epic")
    athena: AthenaSettingsInput | None = _member("athena")
    ellkay: EllkaySettingsInput | None = _member("ellkay")


@strawberry.input(one_of=True, description="OAuth settings for one EHR." + _MEMBER)
class OAuthSettingsInput:
    epic: EpicOAuthSettingsInput | None = _member("epic")


# Per input class, its fields' names and their camelCase forms, in the fields' order: worked
# out once, not for each of the ~35 fields of a block input on every write. Input classes are
# made at import, so this holds a fixed number of entries.
_CAMEL_NAMES: dict[type, tuple[tuple[str, str], ...]] = {}


def _camel_names(cls: type) -> tuple[tuple[str, str], ...]:
    names = _CAMEL_NAMES.get(cls)
    if names is None:
        names = tuple((field.name, to_camel(field.name)) for field in dataclasses.fields(cls))
        _CAMEL_NAMES[cls] = names
    return names


def plain(value: Any) -> Any:
    """A GraphQL input value as JSON-like data with camelCase keys; UNSET fields are left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields: dict[str, Any] = {}
        for name, camel in _camel_names(type(value)):
            item = getattr(value, name)
            if item is not strawberry.UNSET:
                fields[camel] = plain(item)
        return fields
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def chosen_member(one_of: Any) -> tuple[EhrProvider, dict[str, Any]]:
    """The member a @oneOf block input carries (GraphQL guarantees exactly one), as the EHR it
    names and its fields."""
    for field in dataclasses.fields(one_of):
        member = getattr(one_of, field.name)
        if member is not strawberry.UNSET and member is not None:
            return EhrProvider(field.name.upper()), plain(member)
    raise ValueError("a @oneOf input arrived without a member")


# Built from the fields a client sent (the fields of a block input are nearly all left out).
build_from_sent_fields(
    NameValueInput,
    CustomHeaderInput,
    ExternalGatewayConnectionInput,
    EpicHeaderSettingsInput,
    GenericHeaderSettingsInput,
    EpicFhirSettingsInput,
    AthenaFhirSettingsInput,
    CernerFhirSettingsInput,
    EpicSettingsInput,
    AthenaSettingsInput,
    EllkaySettingsInput,
    EpicOAuthSettingsInput,
    HeaderSettingsInput,
    FhirSettingsInput,
    EhrSettingsInput,
    OAuthSettingsInput,
)
