"""The admin console's description of the settings page (console/schema.json): every block of
every EHR, in the spec's order, each setting with its GraphQL name, the spec's name as its label,
its description as help, its default and the kind of input it needs. The console renders its
forms from this file alone, so a setting added to the models appears in the console once the file
is regenerated (``ehr-gateway export-console-schema > console/schema.json``; a test fails when it
drifts). It is generated rather than read by introspection, which is off in production.

The names are checked against the GraphQL schema as the file is made: a setting the console
would send must be an input field of its block, and one it reads a field of its type."""

from __future__ import annotations

import json
import re
import types
import typing
from enum import Enum
from typing import Annotated, Any, Union

from graphql import (
    GraphQLFieldMap,
    GraphQLSchema,
    get_named_type,
    is_input_object_type,
    is_object_type,
)
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ehr_gateway.ehr.blocks import PROVIDER_BLOCKS
from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGatewayConnection,
    PatientRestriction,
    SettingsBlock,
)
from ehr_gateway.ehr.fields import guarded_by
from ehr_gateway.ehr.secret import StoredSecret
from ehr_gateway.gql.possible_types import possible_types
from ehr_gateway.gql.schema import schema as gateway_schema
from ehr_gateway.runtime.access import ROLE_PERMISSIONS

# The sections of the spec's page, in its order; the EHR's own settings carry its name.
SECTIONS: tuple[tuple[SettingsBlock, str], ...] = (
    (SettingsBlock.PROVIDER, "Provider Settings"),
    (SettingsBlock.EXTERNAL_GATEWAY, "External Gateway"),
    (SettingsBlock.HEADERS, "Header Settings"),
    (SettingsBlock.PATIENT_RESTRICTION, "Patient Restriction Information Expression"),
    (SettingsBlock.FHIR, "FHIR Settings"),
    (SettingsBlock.EHR, "{ehr} Settings"),
    (SettingsBlock.OAUTH, "{ehr} OAuth Settings"),
)

PROVIDER_NAMES = {
    EhrProvider.EPIC: "Epic",
    EhrProvider.ATHENA: "Athena",
    EhrProvider.CERNER: "Cerner",
    EhrProvider.ELLKAY: "Ellkay",
}

# How each block is read (the field of IntegrationSettings) and saved (the mutation and its
# argument); a block input is @oneOf with one member per EHR, named as the EHR in lower case.
BLOCK_API: dict[SettingsBlock, tuple[str, str, str]] = {
    SettingsBlock.HEADERS: ("headers", "updateHeaderSettings", "HeaderSettingsInput"),
    SettingsBlock.FHIR: ("fhir", "updateFhirSettings", "FhirSettingsInput"),
    SettingsBlock.EHR: ("ehr", "updateEhrSettings", "EhrSettingsInput"),
    SettingsBlock.OAUTH: ("oauth", "updateOAuthSettings", "OAuthSettingsInput"),
}

# The validators that say what a string is: the form gives each its own input.
_STRING_KINDS = {
    "_https_url": "url",
    "_web_url": "url",
    "_check_identifier_system": "uri",
    "_check_uri": "uri",
    "_check_duration": "duration",
    "_check_offset": "offset",
    "_check_digits": "digits",
    "_check_template": "textarea",
}


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _unwrap(field: FieldInfo) -> tuple[Any, list[Any]]:
    """The setting's type without None and Annotated, and every constraint on it (pydantic keeps
    an Annotated type's metadata on the field only when it is not inside an Optional)."""
    annotation = _without_none(field.annotation)
    metadata = list(field.metadata)
    while typing.get_origin(annotation) is Annotated:
        annotation, *more = typing.get_args(annotation)
        metadata.extend(more)
    return annotation, metadata


def _kind(field: FieldInfo) -> dict[str, Any]:
    """The input a setting needs, from its type and its validators."""
    annotation, metadata = _unwrap(field)
    if annotation is StoredSecret or getattr(annotation, "is_write_only_secret", False):
        return {"kind": "secret"}
    if annotation is bool:
        return {"kind": "switch"}
    if annotation is int:
        return {"kind": "number"}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {"kind": "enum", "options": [member.name for member in annotation]}
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        while typing.get_origin(item) is Annotated:
            item = typing.get_args(item)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return {"kind": "mapping", "keys": [_name(name, f) for name, f in _fields(item)]}
        return {"kind": "list"}
    for marker in metadata:
        name = getattr(getattr(marker, "func", None), "__name__", None)
        if name in _STRING_KINDS:
            return {"kind": _STRING_KINDS[name]}
    if any((getattr(marker, "max_length", 0) or 0) > 256 for marker in metadata):
        return {"kind": "textarea"}
    return {"kind": "text"}


def _fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    return list(model.model_fields.items())


def _name(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _label_and_help(description: str, name: str) -> tuple[str, str]:
    """The spec's name of a setting starts its description: "The ssn identifier: Social ...",
    "Send data to EHR: Recording URL: voice ...", "Create a Case: Automatically add a closed
    status. If off, ...". It ends at the first colon of the first sentence that a lower-case
    explanation follows; else a short first sentence is the name, or what precedes its colon.
    Without a colon, the first clause (parentheses left out) is the name."""
    sentence = description.split(". ")[0].rstrip(".")
    position = 0
    while (colon := sentence.find(": ", position)) != -1:
        rest = description[colon + 2 :]
        if rest[:1].islower():
            return description[:colon], rest[:1].upper() + rest[1:]
        position = colon + 2
    if ": " in sentence:
        return (sentence if len(sentence) <= 50 else sentence.split(": ")[0]), description
    label = re.sub(r" \([^)]*\)", "", sentence).split(", ")[0]
    if not label or len(label) > 60:
        label = name.replace("_", " ").capitalize()
    return label, description


def _default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return None
    else:
        value = field.default
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, BaseModel):
        return None  # a write-only secret: unset
    return json.loads(json.dumps(value, default=str))


def _setting(name: str, field: FieldInfo) -> dict[str, Any]:
    description = field.description or ""
    label, help_text = _label_and_help(description, name)
    mandatory = re.search(r"(?:^|\. )Mandatory\.", description) is not None
    # The form says "Mandatory" once, from the flag.
    help_text = re.sub(r"(?:^| )Mandatory\.", "", help_text).strip()
    setting: dict[str, Any] = {
        "name": _name(name, field),
        "label": label,
        "help": help_text,
        **_kind(field),
        "default": _default(field),
        "mandatory": mandatory,
        "permission": guarded_by(field),
    }
    return setting


def _check_names(
    schema: GraphQLSchema, type_name: str, input_name: str | None, names: list[str]
) -> None:
    """Each setting is a field of its type (read) and of its input (saved)."""
    for name_of, wanted in ((type_name, is_object_type), (input_name, is_input_object_type)):
        if name_of is None:
            continue
        kind = schema.get_type(name_of)
        if kind is None or not wanted(kind):
            raise ValueError(f"{name_of} is not in the schema")
        missing = set(names) - set(kind.fields)  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"{name_of} has no field {sorted(missing)}")


def mutation_permission(schema: GraphQLSchema, mutation: str) -> str:
    """The permission a mutation needs, as its description declares it ("Requires: ...")."""
    assert schema.mutation_type is not None
    return _declared_permission(schema.mutation_type.fields, mutation)


def _declared_permission(fields: GraphQLFieldMap, name: str) -> str:
    description = fields[name].description or ""
    _, found, rest = description.partition("Requires: ")
    if not found:
        raise ValueError(f"{name} declares no permission")
    return rest.split(" ", 1)[0]


# The operations behind the console's actions: the integration actions beside their sections,
# and those of the history, audit log and promotion tabs.
ACTION_MUTATIONS = (
    "createExternalGateway",
    "regenerateExternalGatewayId",
    "testExternalGatewayConnection",
    "generateOAuthSigningKey",
    "testOAuthToken",
    "discoverJku",
    "refreshJku",
    "adoptObservedJku",
    "rollbackSettings",
    "importSettings",
)
ACTION_QUERIES = ("verifyEpicJwt", "evaluatePatientRestriction", "auditLog")


def action_permissions(schema: GraphQLSchema) -> dict[str, str]:
    """The permission each integration action needs, as its operation declares it: the page
    disables what a role may not do and says which permission it lacks."""
    assert schema.mutation_type is not None and schema.query_type is not None
    permissions = {
        name: _declared_permission(schema.mutation_type.fields, name) for name in ACTION_MUTATIONS
    }
    for name in ACTION_QUERIES:
        permissions[name] = _declared_permission(schema.query_type.fields, name)
    return permissions


def _block_form(
    schema: GraphQLSchema, provider: EhrProvider, block: SettingsBlock, model: type[BaseModel]
) -> dict[str, Any]:
    read_field, mutation, input_name = BLOCK_API[block]
    member = provider.name.lower()
    argument = schema.get_type(input_name)
    assert is_input_object_type(argument), input_name
    member_input = get_named_type(argument.fields[member].type).name
    settings = [_setting(name, field) for name, field in _fields(model)]
    _check_names(schema, model.__name__, member_input, [s["name"] for s in settings])
    return {
        "field": read_field,
        "type": model.__name__,
        "mutation": mutation,
        "permission": mutation_permission(schema, mutation),
        "member": member,
        "settings": settings,
    }


def console_forms(schema: GraphQLSchema) -> dict[str, Any]:
    """The description of the settings page the console renders."""
    connection = [_setting(name, field) for name, field in _fields(ExternalGatewayConnection)]
    _check_names(
        schema, "ExternalGateway", "ExternalGatewayConnectionInput", [s["name"] for s in connection]
    )
    restriction = [_setting(name, field) for name, field in _fields(PatientRestriction)]
    _check_names(schema, "PatientRestriction", None, [s["name"] for s in restriction])
    restriction[0]["label"] = "Patient restriction expression"
    restriction[0]["kind"] = "textarea"
    providers = {}
    for provider, blocks in PROVIDER_BLOCKS.items():
        ehr = PROVIDER_NAMES[provider]
        sections = []
        for block, title in SECTIONS:
            if block in BLOCK_API and block not in blocks:
                continue
            section: dict[str, Any] = {"block": block.name, "title": title.format(ehr=ehr)}
            if block in blocks and not blocks[block].model_fields:
                continue  # Cerner's own settings: the spec lists none
            if block in blocks:
                section.update(_block_form(schema, provider, block, blocks[block]))
            sections.append(section)
        providers[provider.name] = {"name": ehr, "sections": sections}
    keyless = sorted(
        name
        for name, kind in schema.type_map.items()
        if is_object_type(kind)
        and "id" not in kind.fields
        and not name.startswith("__")
        and name not in {"Query", "Mutation", "Subscription"}
    )
    return {
        "providers": providers,
        "selectProvider": {
            "mutation": "selectEhrProvider",
            "permission": mutation_permission(schema, "selectEhrProvider"),
            "options": [
                {"value": provider.name, "label": name} for provider, name in PROVIDER_NAMES.items()
            ],
        },
        "externalGateway": {
            "mutation": "createExternalGateway",
            "permission": mutation_permission(schema, "createExternalGateway"),
            "settings": connection,
        },
        "patientRestriction": {
            "mutation": "updatePatientRestriction",
            "permission": mutation_permission(schema, "updatePatientRestriction"),
            "settings": restriction,
        },
        # What each role of a token may do, so the page shows as read-only what a save would
        # refuse instead of failing on click.
        "roles": {
            role.value: sorted(permission.value for permission in permissions)
            for role, permissions in ROLE_PERMISSIONS.items()
        },
        "actions": action_permissions(schema),
        # For urql's graphcache: unions and interfaces, and the types it keeps inside their
        # parent because they have no id of their own.
        "possibleTypes": possible_types(schema),
        "embeddedTypes": keyless,
    }


def console_forms_json() -> str:
    """console/schema.json as committed."""
    return json.dumps(console_forms(gateway_schema._schema), indent=1) + "\n"
