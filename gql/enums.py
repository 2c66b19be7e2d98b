"""The ehr enumerations, registered as GraphQL enums. Registration marks the classes themselves,
so generated types and resolvers use the ehr enums directly; import them from here to be sure
the registration has happened."""

from __future__ import annotations

import strawberry

from ehr.athena import SendDataDecision
from ehr.common import EhrProvider, GatewayEnvironment, SettingsBlock
from ehr.epic import ReceiveCommunicationVersion
from ehr.readiness import CheckState

for _enum in (
    EhrProvider,
    SettingsBlock,
    GatewayEnvironment,
    ReceiveCommunicationVersion,
    SendDataDecision,
    CheckState,
):
    strawberry.enum(_enum, description=_enum.__doc__)

__all__ = [
    "CheckState",
    "EhrProvider",
    "GatewayEnvironment",
    "ReceiveCommunicationVersion",
    "SendDataDecision",
    "SettingsBlock",
]
