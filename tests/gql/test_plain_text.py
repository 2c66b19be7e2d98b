"""Plain-text settings hold what a person types. A name, id or code is one line: a control
character (NUL, tab, a line break, escape, DEL) or a Unicode line or paragraph separator in it
is refused when saved, with the field's path and CONTROL_CHARACTER, since every system it is
sent to and every form and log that shows it reads it differently (a NUL ends it in C, a line
break starts another header or log entry). A note (a connection's description, a comment
template) keeps its tabs and line breaks, and refuses the other control characters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import SELECT_PROVIDER_BY_NAME

SAVE_EHR = """
mutation SaveEhr($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
    ... on SettingsSaved { settings { version } }
  }
}
"""
CREATE_CONNECTION = """
mutation CreateConnection($tenantId: ID!, $connection: ExternalGatewayConnectionInput!) {
  createExternalGateway(tenantId: $tenantId, connection: $connection) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
COMMENT = """
query Comment($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    ehr { ... on EllkaySettings { appointmentConfirmationComment } }
  }
}
"""

ONE_LINE = "must be one line of text: no control characters such as NUL, tab or line breaks"
LINES = (
    "must not contain control characters such as NUL or escape (tabs and line breaks are allowed)"
)


async def save_ehr(
    gateway: Gateway, tenant_id: str, provider: str, fields: dict[str, Any]
) -> dict[str, Any]:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider=provider)
    data = await gateway.execute(SAVE_EHR, tenantId=tenant_id, input={provider.lower(): fields})
    result: dict[str, Any] = data["updateEhrSettings"]
    return result


@pytest.mark.parametrize(
    ("provider", "fields", "path"),
    [
        pytest.param("ELLKAY", {"waitlistingStatusName": "Wait\x00list"},
                     ["waitlistingStatusName"], id="nul-in-a-status-name"),
        pytest.param("ELLKAY", {"waitlistingStatusName": "Wait\tlist"},
                     ["waitlistingStatusName"], id="tab-in-a-status-name"),
        pytest.param("ELLKAY", {"reschedulingStatusName": "Moved\nX-Admin: 1"},
                     ["reschedulingStatusName"], id="line-break-in-a-status-name"),
        pytest.param("EPIC", {"vipFlagType": "VIP\x1b[2J"}, ["vipFlagType"],
                     id="escape-in-a-flag-type"),
        pytest.param("EPIC", {"vipFlagType": "VIP\x85flag"}, ["vipFlagType"],
                     id="c1-next-line-in-a-flag-type"),
        pytest.param("EPIC", {"quickCrmTopicMapping": [{"name": "Refill", "value": "10\u20281"}]},
                     ["quickCrmTopicMapping", "0", "value"], id="line-separator-in-a-mapping"),
    ],
)  # fmt: skip
async def test_a_control_character_in_a_one_line_setting_is_refused(
    gateway: Gateway, tenant_id: str, provider: str, fields: dict[str, Any], path: list[str]
) -> None:
    result = await save_ehr(gateway, tenant_id, provider, fields)

    assert result == {
        "__typename": "ValidationFailed",
        "errors": [
            {"path": ["input", provider.lower(), *path], "code": "CONTROL_CHARACTER",
             "message": ONE_LINE}
        ],
    }  # fmt: skip


async def test_a_comment_template_keeps_its_tabs_and_line_breaks(
    gateway: Gateway, tenant_id: str
) -> None:
    comment = "Confirmed by the contact center\r\non {{DATETIME}}\n\tThank you"

    result = await save_ehr(
        gateway, tenant_id, "ELLKAY", {"appointmentConfirmationComment": comment}
    )

    assert result["__typename"] == "SettingsSaved", result
    data = await gateway.execute(COMMENT, tenantId=tenant_id)
    assert data["integrationSettings"]["ehr"] == {"appointmentConfirmationComment": comment}


@pytest.mark.parametrize("text", ["Confirmed\x00", "Confirmed\x07 on {{DATETIME}}", "A\u2029B"])
async def test_a_comment_template_refuses_other_control_characters(
    gateway: Gateway, tenant_id: str, text: str
) -> None:
    result = await save_ehr(gateway, tenant_id, "ELLKAY", {"appointmentConfirmationComment": text})

    assert result["errors"] == [
        {"path": ["input", "ellkay", "appointmentConfirmationComment"],
         "code": "CONTROL_CHARACTER", "message": LINES}
    ]  # fmt: skip


async def test_a_connection_is_named_on_one_line_and_described_in_several(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER_BY_NAME, tenantId=tenant_id, provider="EPIC")
    connection = {
        "name": "Epic\nproduction",
        "baseUrl": "https://fhir.example.org/api",
        "environment": "PRODUCTION",
        "description": "Refills\x00 and scheduling",
    }

    data = await gateway.execute(CREATE_CONNECTION, tenantId=tenant_id, connection=connection)

    assert data["createExternalGateway"]["errors"] == [
        {"path": ["connection", "name"], "code": "CONTROL_CHARACTER", "message": ONE_LINE},
        {"path": ["connection", "description"], "code": "CONTROL_CHARACTER", "message": LINES},
    ]

    connection.update(name="Epic production", description="Refills\nand\tscheduling")
    data = await gateway.execute(CREATE_CONNECTION, tenantId=tenant_id, connection=connection)
    assert data["createExternalGateway"]["__typename"] == "SettingsSaved"
