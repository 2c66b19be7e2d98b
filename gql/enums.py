"""The ehr enumerations, registered as GraphQL enums (so generated types can refer to them)."""

from __future__ import annotations

import strawberry

from ehr import athena, common, epic, readiness

EhrProvider = strawberry.enum(common.EhrProvider, description=common.EhrProvider.__doc__)
SettingsBlock = strawberry.enum(common.SettingsBlock, description=common.SettingsBlock.__doc__)
GatewayEnvironment = strawberry.enum(
    common.GatewayEnvironment, description=common.GatewayEnvironment.__doc__
)
ReceiveCommunicationVersion = strawberry.enum(
    epic.ReceiveCommunicationVersion, description=epic.ReceiveCommunicationVersion.__doc__
)
SendDataDecision = strawberry.enum(
    athena.SendDataDecision, description=athena.SendDataDecision.__doc__
)
CheckState = strawberry.enum(readiness.CheckState, description=readiness.CheckState.__doc__)
