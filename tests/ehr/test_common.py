"""The blocks every EHR has (ehr/common.py): the external gateway connection, custom headers
and the patient restriction."""

from __future__ import annotations

from typing import Any

import pytest

from ehr_gateway.ehr.common import (
    EhrProvider,
    ExternalGatewayConnection,
    GatewayEnvironment,
    GenericHeaderSettings,
    PatientRestriction,
    SettingsBlock,
)
from ehr_gateway.ehr.fields import guarded_by
from tests.ehr.refusals import refusal, refusals

CONNECTION: dict[str, Any] = {
    "name": "Primary EHR connection",
    "baseUrl": "https://ehr.example.test/api/FHIR/R4",
    "environment": "NON_PRODUCTION",
}


def test_the_api_names_of_providers_and_blocks() -> None:
    assert [p.value for p in EhrProvider] == ["EPIC", "ATHENA", "CERNER", "ELLKAY"]
    assert [b.value for b in SettingsBlock] == [
        "PROVIDER", "EXTERNAL_GATEWAY", "HEADERS", "PATIENT_RESTRICTION", "FHIR", "EHR", "OAUTH",
    ]  # fmt: skip


def test_a_connection_is_a_name_an_https_base_url_and_an_environment() -> None:
    connection = ExternalGatewayConnection.model_validate(CONNECTION)
    assert connection.environment is GatewayEnvironment.NON_PRODUCTION
    assert connection.description is None


def test_every_field_of_a_connection_but_its_description_is_required() -> None:
    assert sorted(refusals(ExternalGatewayConnection, {})) == [
        (("baseUrl",), "REQUIRED"),
        (("environment",), "REQUIRED"),
        (("name",), "REQUIRED"),
    ]


@pytest.mark.parametrize(
    ("change", "path", "code"),
    [
        pytest.param({"baseUrl": "http://athena.example.test/api"}, "baseUrl", "INVALID_URL",
                     id="plain-http"),
        pytest.param({"baseUrl": "https://admin:pw@athena.example.test"}, "baseUrl",
                     "INVALID_URL", id="credentials"),
        pytest.param({"baseUrl": "https://127.1/api"}, "baseUrl", "AMBIGUOUS_HOST",
                     id="ambiguous-host"),
        pytest.param({"environment": "STAGING"}, "environment", "INVALID_CHOICE",
                     id="unknown-environment"),
        pytest.param({"name": ""}, "name", "TOO_SHORT", id="empty-name"),
        pytest.param({"description": "d" * 2001}, "description", "TOO_LONG",
                     id="description-2001"),
    ],
)  # fmt: skip
def test_a_connection_field_is_refused_at_its_path(
    change: dict[str, Any], path: str, code: str
) -> None:
    assert refusal(ExternalGatewayConnection, {**CONNECTION, **change}) == ((path,), code)


def test_the_base_url_may_be_plain_http_only_where_the_deployment_allows_it() -> None:
    insecure = {**CONNECTION, "baseUrl": "http://127.0.0.1:8080/fhir"}
    context = {"allow_insecure_http": True}
    assert ExternalGatewayConnection.model_validate(insecure, context=context).base_url.startswith(
        "http://"
    )


def test_every_refused_field_of_a_connection_is_reported_at_once() -> None:
    connection = {**CONNECTION, "name": "", "baseUrl": "ftp://cerner.example.test"}
    assert sorted(refusals(ExternalGatewayConnection, connection)) == [
        (("baseUrl",), "INVALID_URL"),
        (("name",), "TOO_SHORT"),
    ]


def test_the_base_url_needs_the_integration_permission() -> None:
    assert guarded_by(ExternalGatewayConnection.model_fields["base_url"]) == "integration:edit"
    assert guarded_by(ExternalGatewayConnection.model_fields["name"]) is None


def test_generic_headers_default_to_none() -> None:
    assert GenericHeaderSettings().custom_headers == []


def test_header_names_are_unique_case_insensitively() -> None:
    headers = [{"name": "X-Trace-Id", "value": "one"}, {"name": "x-trace-id", "value": "two"}]
    assert refusal(GenericHeaderSettings, {"customHeaders": headers}) == (
        ("customHeaders",),
        "DUPLICATE_NAME",
    )


def test_a_header_is_refused_at_its_index_and_field() -> None:
    headers = [{"name": "X-Site", "value": "7"}, {"name": "Host", "value": "evil.example"}]
    assert refusal(GenericHeaderSettings, {"customHeaders": headers}) == (
        ("customHeaders", "1", "name"),
        "RESERVED_HEADER",
    )


def test_at_most_50_custom_headers() -> None:
    headers = [{"name": f"X-H{i}", "value": "v"} for i in range(51)]
    assert (
        len(GenericHeaderSettings.model_validate({"customHeaders": headers[:50]}).custom_headers)
        == 50
    )
    assert refusal(GenericHeaderSettings, {"customHeaders": headers}) == (
        ("customHeaders",),
        "TOO_MANY",
    )


def test_a_patient_restriction_is_at_most_1000_characters() -> None:
    assert PatientRestriction().expression is None
    assert PatientRestriction(expression="age < 18").expression == "age < 18"
    long = "age < 18 || " * 90 + "age < 18"
    assert len(long) > 1000
    assert refusal(PatientRestriction, {"expression": long}) == (("expression",), "TOO_LONG")


def test_the_restriction_model_holds_any_text_the_expression_is_checked_by_the_save() -> None:
    # The model caps the length only; the CEL check (ehr.restriction) is the save's to run.
    assert PatientRestriction(expression="patient_age < 18").expression == "patient_age < 18"
