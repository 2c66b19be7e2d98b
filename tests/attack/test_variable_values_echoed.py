"""Attack on "errors never quote a submitted value" (gql/errors.py: a value may be a secret, a
SOAP password sent to the wrong variable, and messages go to the client, browser consoles and
the gateway's log): a variable of an enum type given a JSON list, object, number or boolean is
refused with graphql-core's "Enum 'EhrProvider' cannot represent non-string value: [...]", which
the rewrite does not recognise (its pattern expects an unquoted type name before "cannot
represent"), so the value goes out whole, in the response and in the "request refused" log line.
"""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Gateway

SELECT = """
mutation Select($provider: EhrProvider!) {
  selectEhrProvider(tenantId: "acme", provider: $provider) { __typename }
}
"""
SECRET = "hunter2-soap-password"


@pytest.mark.parametrize(
    "value",
    [[SECRET], {"password": SECRET}],
    ids=["list", "object"],
)
async def test_a_non_string_enum_variable_is_refused_without_its_value(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, value: object
) -> None:
    with caplog.at_level(logging.INFO):
        body = await gateway.post(SELECT, provider=value)

    messages = [error["message"] for error in body["errors"]]
    assert messages
    assert [message for message in messages if SECRET in message] == [], messages
    assert SECRET not in caplog.text


UPDATE_EHR = """
mutation Save($input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: "acme", input: $input) { __typename }
}
"""


async def test_a_non_string_enum_inside_an_input_variable_is_refused_without_its_value(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    value = {"epic": {"receiveCommunicationVersion": [SECRET]}}

    with caplog.at_level(logging.INFO):
        body = await gateway.post(UPDATE_EHR, input=value)

    messages = [error["message"] for error in body["errors"]]
    assert messages
    assert [message for message in messages if SECRET in message] == [], messages
    assert SECRET not in caplog.text
