"""The ehr enumerations, registered as GraphQL enums. Registration marks the classes themselves,
so generated types and resolvers use the ehr enums directly; import them from here to be sure
the registration has happened.

Every value is described: a client's generated types and GraphiQL show the text, and the ehr
layer (which knows nothing of GraphQL) keeps plain enums, so the words live here."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

import strawberry

from ehr_gateway.ehr.athena import SendDataDecision
from ehr_gateway.ehr.common import EhrProvider, GatewayEnvironment, SettingsBlock
from ehr_gateway.ehr.epic import ReceiveCommunicationVersion
from ehr_gateway.ehr.readiness import CheckState


def register(
    enum: type[Enum],
    values: Mapping[Enum, str],
    *,
    name: str | None = None,
    description: str | None = None,
) -> None:
    """Registers ``enum`` with a description for every value (a value left out fails at import,
    not in a client's generated code)."""
    strawberry.enum(enum, name=name, description=description or enum.__doc__)
    undescribed = [member.name for member in enum if member not in values]
    if undescribed:
        raise ValueError(f"{enum.__name__}: values without a description: {undescribed}")
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[enum(value.value)]


register(
    EhrProvider,
    {
        EhrProvider.EPIC: "Epic.",
        EhrProvider.ATHENA: "athenahealth (athenaOne).",
        EhrProvider.CERNER: "Oracle Health (Cerner).",
        EhrProvider.ELLKAY: "ELLKAY.",
    },
)
register(
    SettingsBlock,
    {
        SettingsBlock.PROVIDER: "The EHR provider the tenant integrates with.",
        SettingsBlock.EXTERNAL_GATEWAY: "The external gateway connection (its id and the EHR's "
        "API).",
        SettingsBlock.HEADERS: "The headers sent with every EHR call.",
        SettingsBlock.PATIENT_RESTRICTION: "The patient restriction rule (a CEL expression).",
        SettingsBlock.FHIR: "The FHIR settings.",
        SettingsBlock.EHR: "The settings specific to the EHR provider.",
        SettingsBlock.OAUTH: "The OAuth settings.",
    },
)
register(
    GatewayEnvironment,
    {
        GatewayEnvironment.PRODUCTION: "The EHR's production environment (real patients).",
        GatewayEnvironment.NON_PRODUCTION: "A test, staging or sandbox environment of the EHR.",
    },
)
register(
    ReceiveCommunicationVersion,
    {
        ReceiveCommunicationVersion.V1: "ReceiveCommunication version 1.",
        ReceiveCommunicationVersion.V3: "ReceiveCommunication version 3.",
    },
)
register(
    SendDataDecision,
    {
        SendDataDecision.PHONE_MESSAGE: "As a phone message document.",
        SendDataDecision.PATIENT_CASE: "As a patient case (needs the case class).",
    },
)
register(
    CheckState,
    {
        CheckState.SET: "The setting has a value of its own.",
        CheckState.DEFAULT: "The setting is unset and its default applies.",
        CheckState.MISSING: "The setting is unset and needed: the tenant is not ready.",
    },
)

__all__ = [
    "CheckState",
    "EhrProvider",
    "GatewayEnvironment",
    "ReceiveCommunicationVersion",
    "SendDataDecision",
    "SettingsBlock",
]
