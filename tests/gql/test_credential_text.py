"""Credentials are sent to other systems (SOAP, ELLKAY's API), where a control character ends or
splits them: a NUL cuts a C string short, a line break starts a new header (and U+2028/U+2029
are line breaks to JavaScript and many viewers). They are refused when saved, with the field's
path and CONTROL_CHARACTER, the value not echoed and nothing stored. A key another system issued
(ELLKAY's) is refused with white space or an invisible format character (a zero-width space, a
byte order mark) around it, which a paste brings along; a password is kept verbatim."""

from __future__ import annotations

import json
from typing import Any

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


SOAP_PASSWORD = """
query SoapPassword($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version
    ehr { ... on EpicSettings { soapPassword { isSet fingerprint } } }
  }
}
"""

# ELLKAY's keys as they arrive pasted from an e-mail, a PDF or a web page.
PASTED_KEYS = [
    pytest.param({"subscriberKey": "3F2504E0-4F89-11D3-9A0C-0305E82C3301 "},
                 "subscriberKey", id="trailing-space"),
    pytest.param({"siteServiceKey": " q5Xw+9/Lk2hT0vRb8ZcN4e=="},
                 "siteServiceKey", id="leading-space"),
    pytest.param({"siteServiceKey": "q5Xw+9/Lk2hT0vRb8ZcN4e==\u00a0"},
                 "siteServiceKey", id="trailing-no-break-space"),
    pytest.param({"subscriberKey": "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
                  "siteServiceKey": "\u3000q5Xw+9/Lk2hT0vRb8ZcN4e=="},
                 "siteServiceKey", id="ideographic-space-beside-a-clean-key"),
    # Invisible format characters (Unicode Cf) a web page, a chat message or a Windows text
    # file brings along: not white space to str.strip, but another key to ELLKAY all the same.
    pytest.param({"subscriberKey": "3F2504E0-4F89-11D3-9A0C-0305E82C3301\u200b"},
                 "subscriberKey", id="trailing-zero-width-space"),
    pytest.param({"siteServiceKey": "\ufeffq5Xw+9/Lk2hT0vRb8ZcN4e=="},
                 "siteServiceKey", id="leading-byte-order-mark"),
    pytest.param({"siteServiceKey": "q5Xw+9/Lk2hT0vRb8ZcN4e==\u2060"},
                 "siteServiceKey", id="trailing-word-joiner"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "refused"), PASTED_KEYS)
async def test_an_ellkay_key_pasted_with_white_space_around_it_is_refused(
    gateway: Gateway, tenant_id: str, fields: dict[str, str], refused: str
) -> None:
    """A key kept with the space (or the zero-width space) a paste brought is another key,
    which ELLKAY refuses at every call, and the page cannot show it (the key is write-only):
    refused at its field, with a message that names it, and nothing stored (not even the other,
    clean key)."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ELLKAY")

    result = (await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"ellkay": fields}))[
        "updateEhrSettings"
    ]

    assert result["__typename"] == "ValidationFailed"
    assert [(e["path"], e["code"]) for e in result["errors"]] == [
        (["input", "ellkay", refused], "SURROUNDING_WHITESPACE")
    ]
    assert refused in result["errors"][0]["message"]
    assert all(value.strip() not in json.dumps(result) for value in fields.values())
    settings = (await gateway.execute(INTEGRATION_SETTINGS, tenantId=tenant_id))[
        "integrationSettings"
    ]
    assert settings["version"] == 1  # nothing stored


async def test_a_soap_password_is_kept_verbatim_spaces_around_it_included(
    gateway: Gateway, tenant_id: str
) -> None:
    """A password may begin or end with a space (Epic's SOAP user is the customer's to
    choose): unlike an issued key, it is stored as sent, a different secret from the one
    without the spaces."""
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    credentials = {"soapUsername": "soap-refills", "soapPassword": " Refill-pass-42 "}

    spaced = await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})
    first = await gateway.execute(SOAP_PASSWORD, tenantId=tenant_id)
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": credentials})
    again = await gateway.execute(SOAP_PASSWORD, tenantId=tenant_id)
    trimmed = {**credentials, "soapPassword": "Refill-pass-42"}
    await gateway.execute(UPDATE_EHR, tenantId=tenant_id, input={"epic": trimmed})
    other = await gateway.execute(SOAP_PASSWORD, tenantId=tenant_id)

    assert spaced["updateEhrSettings"]["__typename"] == "SettingsSaved", spaced
    assert again == first  # the same password sent again: nothing changes
    assert other["integrationSettings"]["version"] == first["integrationSettings"]["version"] + 1
    fingerprint = "ehr", "soapPassword", "fingerprint"
    assert _at(other, fingerprint) != _at(first, fingerprint)


def _at(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    found: Any = data["integrationSettings"]
    for key in path:
        found = found[key]
    return found
