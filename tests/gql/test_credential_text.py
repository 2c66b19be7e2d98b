"""Credentials are sent to other systems (SOAP, ELLKAY's API), where a control character ends or
splits them: a NUL cuts a C string short, a line break starts a new header (and U+2028/U+2029
are line breaks to JavaScript and many viewers). They are refused when saved, with the field's
path and CONTROL_CHARACTER, the value not echoed and nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Gateway
from tests.documents import INTEGRATION_SETTINGS, SELECT_PROVIDER, UPDATE_EHR

REFUSED = [
    pytest.param("EPIC", {"soapUsername": "svc\x00admin", "soapPassword": "Refill-pass-42"},
                 "soapUsername", id="nul-in-soap-username"),
    pytest.param("EPIC", {"soapUsername": "svc", "soapPassword": "Refill\x00-pass-42"},
                 "soapPassword", id="nul-in-soap-password"),
    pytest.param("EPIC", {"soapUsername": "svc", "soapPassword": "Refill\r\nX-Admin: 1"},
                 "soapPassword", id="line-break-in-soap-password"),
    pytest.param("EPIC", {"soapUsername": "svc\x1b[2J", "soapPassword": "Refill-pass-42"},
                 "soapUsername", id="escape-in-soap-username"),
    pytest.param("ELLKAY", {"subscriberKey": "subscriber\x00key"},
                 "subscriberKey", id="nul-in-ellkay-subscriber-key"),
    pytest.param("ELLKAY", {"siteServiceKey": "site\x7fkey"},
                 "siteServiceKey", id="delete-in-ellkay-site-service-key"),
    pytest.param("EPIC", {"soapUsername": "svc\u2028admin", "soapPassword": "Refill-pass-42"},
                 "soapUsername", id="line-separator-in-soap-username"),
    pytest.param("EPIC", {"soapUsername": "svc", "soapPassword": "Refill\u2029-pass-42"},
                 "soapPassword", id="paragraph-separator-in-soap-password"),
    pytest.param("ELLKAY", {"subscriberKey": "subscriber\u2028key"},
                 "subscriberKey", id="line-separator-in-ellkay-subscriber-key"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "fields", "refused"), REFUSED)
async def test_a_control_character_in_a_credential_is_refused(
    gateway: Gateway, tenant_id: str, provider: str, fields: dict[str, str], refused: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider=provider)
    member = provider.lower()

    result = (await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={member: fields}))[
        "updateEhrSettings"
    ]

    assert result["__typename"] == "ValidationFailed"
    assert [(e["path"], e["code"]) for e in result["errors"]] == [
        (["input", member, refused], "CONTROL_CHARACTER")
    ]
    assert fields[refused] not in json.dumps(result)
    settings = (await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id))[
        "integrationSettings"
    ]
    assert settings["version"] == 1  # nothing stored


async def test_credentials_in_other_scripts_and_with_spaces_are_accepted(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    credentials = {"soapUsername": "sérvice åccount", "soapPassword": "pässwörd mit Leerzeichen"}
    result = await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})

    assert result["updateEhrSettings"]["__typename"] == "SettingsSaved"
