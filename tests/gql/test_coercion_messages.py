"""A request whose value does not fit its type is refused with a message that says where and
what was expected (the argument path or variable, the type, and for an enum its values and the
nearest one) without the value itself, which may be a secret typed into the wrong field. The
allowed values and the suggestion come from the schema, so only where the schema is open
(development mode): elsewhere the message names the path, and the type where the document
names it.

A DateTime is RFC 3339 with its offset: a bad one, written as a literal or sent as a variable, is
refused naming the argument or variable and the form expected; one without an offset, a bare
date or hour 24 is refused too, rather than read as UTC (a dashboard in UTC+2 polling with its
local time would silently skip two hours of changes), as is an offset's minute past 59 (rather
than carried into the hour); a leap second, second 60, is taken where RFC 3339 has one (the last
minute of a UTC day at the end of a month, with an offset the local minute that is it) and
refused anywhere else, rather than read as second 59 of that minute.

A value of any JSON type (a list, an object) sent for an enum is refused without it, in the
response and the log; and a document refused once is told the same the next time it is sent,
over POST or GET."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehr_gateway.server.app import create_app
from tests.conftest import Gateway, gateway_config
from tests.issuers import SignInIssuer, new_key, serve_issuer
from tests.servers import serve_on_loopback

# The examples: an enum value in the wrong case, and a string where an Int goes. None
# of the values sent (Epic, or one with the marker) may come back.
PROVIDER_IN_THE_WRONG_CASE = """
mutation { selectEhrProvider(tenantId: "acme", provider: Epic) { __typename } }
"""
SELECT_PROVIDER = """
mutation Select($provider: EhrProvider!) {
  selectEhrProvider(tenantId: "acme", provider: $provider) { __typename }
}
"""
PAGE_SIZE_AS_TEXT = """
{ settingsHistory(tenantId: "acme", first: "ten canary-7f3a") { __typename } }
"""
HISTORY_PAGE = """
query History($first: Int!) {
  settingsHistory(tenantId: "acme", first: $first) { __typename }
}
"""
SLOT_RANGE_AS_TEXT = """
mutation Epic($input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: "acme", input: $input) { __typename }
}
"""
MARKER = "canary-7f3a"
PROVIDERS = "EPIC, ATHENA, CERNER, ELLKAY"


def _message(body: dict[str, Any]) -> str:
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert MARKER not in str(body) and "'Epic'" not in str(body)
    message: str = error["message"]
    return message


async def test_an_enum_literal_in_the_wrong_case_names_the_argument_the_type_and_the_values(
    gateway: Gateway,
) -> None:
    message = _message(await gateway.post(PROVIDER_IN_THE_WRONG_CASE))
    assert message == (
        "Argument 'provider' of 'selectEhrProvider' has an invalid value: expected EhrProvider, "
        f"one of {PROVIDERS}; the value does not exist in 'EhrProvider' enum. Did you mean "
        "'EPIC'?"
    )


async def test_an_enum_variable_in_the_wrong_case_names_the_variable_the_type_and_the_values(
    gateway: Gateway,
) -> None:
    message = _message(await gateway.post(SELECT_PROVIDER, provider="Epic"))
    assert message == (
        f"Variable '$provider' has an invalid value: expected EhrProvider, one of {PROVIDERS}; "
        "the value does not exist in 'EhrProvider' enum. Did you mean 'EPIC'?"
    )


async def test_a_string_for_an_int_says_int_expected_at_that_argument(gateway: Gateway) -> None:
    message = _message(await gateway.post(PAGE_SIZE_AS_TEXT))
    assert message == (
        "Argument 'first' of 'settingsHistory' has an invalid value: expected Int; "
        "Int cannot represent non-integer value."
    )


async def test_a_string_for_an_int_variable_says_int_expected(gateway: Gateway) -> None:
    message = _message(await gateway.post(HISTORY_PAGE, first=f"ten {MARKER}"))
    assert message == (
        "Variable '$first' has an invalid value: expected Int; "
        "Int cannot represent non-integer value."
    )


async def test_a_string_inside_an_input_names_the_path_within_the_variable(
    gateway: Gateway,
) -> None:
    variables = {"input": {"epic": {"epicMaximumSlotSearchDateRangeInDays": MARKER}}}
    message = _message(await gateway.post(SLOT_RANGE_AS_TEXT, **variables))
    assert message == (
        "Variable '$input' has an invalid value at 'epic.epicMaximumSlotSearchDateRangeInDays': "
        "expected Int; Int cannot represent non-integer value."
    )


@pytest.fixture(scope="module")
async def production(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """A gateway trusting an issuer (not development mode): no introspection, no suggestions."""
    async with serve_issuer(SignInIssuer(new_key("coercion-key"))) as issuer:
        config = gateway_config(
            database_url, Path(tmp_path_factory.mktemp("production")),
            auth_issuer=issuer.url, allow_insecure_http=True,
        )  # fmt: skip
        app = create_app(config)
        async with (
            app.router.lifespan_context(app),
            serve_on_loopback(app) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            yield Gateway(client, config, issuer.staff())


async def test_outside_development_the_message_names_path_and_type_but_not_the_values(
    production: Gateway,
) -> None:
    literal = _message(await production.post(PROVIDER_IN_THE_WRONG_CASE))
    variable = _message(await production.post(SELECT_PROVIDER, provider="Epic"))
    # The literal's document names no type: the argument's type is told by what it is.
    assert literal == (
        "Argument 'provider' of 'selectEhrProvider' has an invalid value: expected an enum "
        "value; the value does not exist in the enum."
    )
    assert variable == (
        "Variable '$provider' has an invalid value: expected EhrProvider; "
        "the value does not exist in 'EhrProvider' enum."
    )


CHANGED_SINCE = """
query Changed($since: DateTime) {
  tenants(changedSince: $since) { items { tenantId } }
}
"""
DATE_TIME_EXPECTED = (
    "expected an RFC 3339 date and time with its UTC offset, such as 2026-05-04T09:30:00Z"
)


@pytest.mark.parametrize("literal", ['"hello"', "5", '"2024-02-30T00:00:00Z"'])
async def test_a_bad_date_time_literal_names_its_argument_and_the_form_expected(
    gateway: Gateway, literal: str
) -> None:
    document = f"query Changed {{ tenants(changedSince: {literal}) {{ items {{ tenantId }} }} }}"

    body = await gateway.post(document)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["locations"] == [{"line": 1, "column": 39}]
    assert error["message"].startswith("Argument 'changedSince' of 'tenants' has an invalid value")
    assert DATE_TIME_EXPECTED in error["message"]


@pytest.mark.parametrize(
    "since", ["2026-05-04T09:30:00", "2026-05-04", "2026-05-04T24:00:00Z", "2026-05-04 09:30Z"]
)
async def test_a_date_time_rfc_3339_forbids_is_refused_naming_the_variable(
    gateway: Gateway, since: str
) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", error
    assert error["message"].startswith("Variable '$since' has an invalid value"), error
    assert DATE_TIME_EXPECTED in error["message"]


@pytest.mark.parametrize(
    "since",
    ["2026-05-04T09:30:00Z", "2026-05-04t09:30:00z", "2026-05-04T11:30:00.123456789+02:00"],
)
async def test_an_rfc_3339_date_time_with_its_offset_is_taken(gateway: Gateway, since: str) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert "errors" not in body, body


@pytest.mark.parametrize(
    "since", ["2026-05-04T09:30:00+05:99", "2026-05-04T09:30:00-00:60", "2026-05-04T09:30:00+24:00"]
)
async def test_an_offset_past_23_hours_or_59_minutes_is_refused_not_carried_over(
    gateway: Gateway, since: str
) -> None:
    # +05:99 would otherwise be read as +06:39: a typo moving the instant by 40 minutes.
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["message"].startswith("Variable '$since' has an invalid value"), error
    assert DATE_TIME_EXPECTED in error["message"]


@pytest.mark.parametrize(
    "since", ["2016-12-31T23:59:60Z", "2016-12-31T18:59:60.5-05:00", "2017-01-01T01:59:60+02:00"]
)
async def test_a_leap_second_as_rfc_3339_writes_it_is_taken(gateway: Gateway, since: str) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert "errors" not in body, body


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("2026-05-04T09:30:60Z", id="mid-morning"),
        pytest.param("2026-05-04T12:00:60.5Z", id="with-a-fraction"),
        pytest.param("2016-12-31T23:59:60+02:00", id="local-23:59-is-21:59-utc"),
        pytest.param("2026-05-04T23:59:60Z", id="not-the-end-of-a-month"),
    ],
)
async def test_second_60_outside_a_leap_second_is_refused(gateway: Gateway, since: str) -> None:
    body = await gateway.post(CHANGED_SINCE, since=since)

    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["message"].startswith("Variable '$since' has an invalid value"), error
    assert DATE_TIME_EXPECTED in error["message"]


SECRET = "hunter2-soap-password"


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({"provider": [SECRET]}, id="list"),
        pytest.param({"provider": {"password": SECRET}}, id="object"),
    ],
)
async def test_an_enum_variable_given_a_list_or_object_is_refused_without_its_value(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, variables: dict[str, Any]
) -> None:
    with caplog.at_level(logging.INFO):
        message = _message(await gateway.post(SELECT_PROVIDER, **variables))

    assert SECRET not in message and SECRET not in caplog.text
    assert message == (
        f"Variable '$provider' has an invalid value: expected EhrProvider, one of {PROVIDERS}; "
        "Enum 'EhrProvider' cannot represent non-string value."
    )


async def test_an_enum_inside_an_input_variable_given_a_list_is_refused_without_its_value(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    variables = {"input": {"epic": {"receiveCommunicationVersion": [SECRET]}}}

    with caplog.at_level(logging.INFO):
        message = _message(await gateway.post(SLOT_RANGE_AS_TEXT, **variables))

    assert SECRET not in message and SECRET not in caplog.text
    assert message.startswith(
        "Variable '$input' has an invalid value at 'epic.receiveCommunicationVersion': "
    ), message


async def test_a_refused_document_sent_again_or_over_get_is_told_the_same(
    gateway: Gateway,
) -> None:
    # Validation is cached by the document's text: the message is rewritten for each request,
    # never the cached one a second time.
    first = _message(await gateway.post(PAGE_SIZE_AS_TEXT))
    again = _message(await gateway.post(PAGE_SIZE_AS_TEXT))
    got = await gateway.client.get(
        "/graphql",
        params={"query": PAGE_SIZE_AS_TEXT},
        headers={"authorization": f"Bearer {gateway.token}"},
    )

    assert again == first
    assert got.json()["errors"][0]["message"] == first
