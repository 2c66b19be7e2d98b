"""Epic's settings (ehr/epic.py): headers, FHIR, the Epic block with its cross-field rules, and
OAuth."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_gateway.ehr.epic import (
    EpicFhirSettings,
    EpicHeaderSettings,
    EpicOAuthSettings,
    EpicSettings,
    ReceiveCommunicationVersion,
)
from ehr_gateway.ehr.fields import DAYS_MAX, guarded_by
from ehr_gateway.ehr.secret import IMPORTING, SENT_FIELDS, StoredSecret
from tests.ehr.refusals import refusal, refusals

# Hypothesis checks each example against a deadline by default: a timing assertion, which a
# loaded machine fails. These are about values, not speed.
UNTIMED = settings(deadline=None)

PASSWORD = StoredSecret(ciphertext="c2VhbGVk", key_id="k1", updated_at=datetime.now(UTC))


def password() -> dict[str, Any]:
    return PASSWORD.model_dump(mode="json", by_alias=True, exclude_computed_fields=True)


# --- Headers ------------------------------------------------------------------------------------


def test_the_three_epic_headers_are_unset_by_default() -> None:
    headers = EpicHeaderSettings()
    assert (headers.epic_client_id, headers.epic_user_id, headers.epic_user_id_type) == (
        None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize("field", ["epicClientId", "epicUserId", "epicUserIdType"])
def test_an_epic_header_is_sent_as_an_http_header_value(field: str) -> None:
    assert refusal(EpicHeaderSettings, {field: "abc\r\nX-Injected: 1"}) == (
        (field,), "INVALID_HEADER_VALUE",
    )  # fmt: skip
    assert refusal(EpicHeaderSettings, {field: "x" * 257}) == ((field,), "TOO_LONG")


# --- FHIR ---------------------------------------------------------------------------------------


def test_the_fhir_defaults_are_the_specs() -> None:
    fhir = EpicFhirSettings()
    assert fhir.model_dump(exclude_defaults=True) == {}
    assert fhir.use_batch is False and fhir.direct_reschedule_use_case is False
    assert fhir.category_filter_array == []


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("ssnIdentifier", "unr:oid:1.1.111", "INVALID_URN"),
        ("mrnIdentifier", "urn:oid:1.2.x", "INVALID_URN"),
        ("practitionerExternalUrn", "1.2.840.114350.1", "INVALID_URN"),
        ("locationExternalUrn", "location", "INVALID_URN"),
        ("selfServiceIdentifier", "urn:uuid:ABC", "INVALID_URN"),
        ("dayRangeForTemporalSearches", -1, "OUT_OF_RANGE"),
        ("dayRangeForTemporalSearches", DAYS_MAX + 1, "OUT_OF_RANGE"),
        ("urlPrefix", "", "TOO_SHORT"),
        ("useBatch", "yes please", "INVALID_TYPE"),
    ],
)
def test_a_fhir_setting_is_refused_at_its_path(field: str, value: object, code: str) -> None:
    assert refusal(EpicFhirSettings, {field: value}) == ((field,), code)


def test_a_category_code_is_refused_at_its_index_and_at_most_100_are_kept() -> None:
    assert refusal(EpicFhirSettings, {"categoryFilterArray": ["409063004", "40  90 63"]}) == (
        ("categoryFilterArray", "1"), "INVALID_CODE",
    )  # fmt: skip
    codes = [f"code-{n:03}" for n in range(101)]
    assert len(EpicFhirSettings.model_validate({"categoryFilterArray": codes[:100]})
               .category_filter_array) == 100  # fmt: skip
    assert refusal(EpicFhirSettings, {"categoryFilterArray": codes}) == (
        ("categoryFilterArray",), "TOO_MANY",
    )  # fmt: skip


# --- The Epic block -----------------------------------------------------------------------------


def test_the_epic_defaults_are_the_specs() -> None:
    epic = EpicSettings()
    assert epic.epic_user_id_type == "External"
    assert epic.epic_maximum_slot_search_date_range_in_days == 30
    assert epic.max_allowed_slot_search_date_range_days == 90
    assert epic.use_oauth is False and epic.enable_default_jku_server_url_pattern is False
    assert epic.soap_password.is_set is False
    assert epic.quick_crm_topic_mapping == []


def test_the_jku_is_https_the_issuer_may_be_http_the_audience_is_any_string() -> None:
    """The JKU is fetched, and the outbound client calls https only; the issuer is only
    compared with each token's iss; the audience is any StringOrURI."""
    epic = EpicSettings.model_validate(
        {
            "jkuServerUrl": "https://keys.example.test/jwks.json",
            "jwtIssuerUrl": "http://issuer.example.test/oauth2",
            "jwtAudience": "epic-gateway",
        }
    )
    assert epic.jku_server_url == "https://keys.example.test/jwks.json"
    assert epic.jwt_issuer_url == "http://issuer.example.test/oauth2"
    assert epic.jwt_audience == "epic-gateway"


@pytest.mark.parametrize(
    "audience", ["https://gateway.example.test", "urn:example:epic-cti", "epic-gateway"]
)
def test_an_audience_is_an_http_url_with_a_host_or_any_other_string_or_uri(audience: str) -> None:
    assert EpicSettings.model_validate({"jwtAudience": audience}).jwt_audience == audience


def test_a_hostless_audience_stored_before_it_was_refused_is_still_read() -> None:
    epic = EpicSettings.model_validate({"jwtAudience": "https://"}, context={"stored": True})
    assert epic.jwt_audience == "https://"


JKU_OVER_HTTP = {"jkuServerUrl": "http://keys.example.test/jwks.json"}


def test_a_plain_http_jku_is_refused_as_the_outbound_client_would_refuse_to_call_it() -> None:
    assert refusal(EpicSettings, JKU_OVER_HTTP) == (("jkuServerUrl",), "INSECURE_URL")
    assert refusal(EpicSettings, {"jkuServerUrl": "HTTP://KEYS.EXAMPLE.TEST/jwks.json"}) == (
        ("jkuServerUrl",), "INSECURE_URL",
    )  # fmt: skip


@pytest.mark.parametrize(
    "context",
    [
        pytest.param({"allow_insecure_http": True}, id="deployment-calls-plain-http"),
        pytest.param({"stored": True}, id="stored-before-the-rule"),
    ],
)
def test_a_plain_http_jku_is_taken_where_it_can_be_called_or_was_stored(
    context: dict[str, Any],
) -> None:
    epic = EpicSettings.model_validate(JKU_OVER_HTTP, context=context)
    assert epic.jku_server_url == JKU_OVER_HTTP["jkuServerUrl"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("jkuServerUrl", "ftp://keys.example.test/jwks", "INVALID_URL"),
        ("jkuServerUrl", "https://epic example.test/jwks", "INVALID_URL"),
        ("jkuServerUrl", "https://0x7f.1/jwks", "AMBIGUOUS_HOST"),
        ("jwtIssuerUrl", "issuer.example.test/oauth2", "INVALID_URL"),
        ("jwtAudience", "", "TOO_SHORT"),
        # An http(s) audience names a service by its host; without one it names none.
        ("jwtAudience", "https://", "INVALID_URL"),
        ("jwtAudience", "https:///epic/cti", "INVALID_URL"),
        ("jwtAudience", "HTTP://", "INVALID_URL"),
        ("context", "", "TOO_SHORT"),
        ("context", "c" * 257, "TOO_LONG"),
        ("soapUsername", "svc\nadmin", "CONTROL_CHARACTER"),
        ("receiveCommunicationVersion", "V2", "INVALID_CHOICE"),
        ("epicMaximumSlotSearchDateRangeInDays", -1, "OUT_OF_RANGE"),
        ("maxAllowedSlotSearchDateRangeDays", DAYS_MAX + 1, "OUT_OF_RANGE"),
    ],
)
def test_an_epic_setting_is_refused_at_its_path(field: str, value: object, code: str) -> None:
    assert refusal(EpicSettings, {field: value}) == ((field,), code)


def test_the_receive_communication_versions() -> None:
    assert [v.value for v in ReceiveCommunicationVersion] == ["V1", "V3"]


def test_trust_settings_need_the_integration_permission() -> None:
    guarded = {name for name, field in EpicSettings.model_fields.items() if guarded_by(field)}
    assert guarded == {
        "jku_server_url", "enable_default_jku_server_url_pattern", "jwt_issuer_url",
        "jwt_audience", "soap_password", "soap_username", "use_oauth", "oauth_base_path",
    }  # fmt: skip
    assert guarded_by(EpicSettings.model_fields["soap_password"]) == "secrets:write"
    assert guarded_by(EpicOAuthSettings.model_fields["oauth_token_url"]) == "integration:edit"


def test_quick_crm_topic_names_are_unique() -> None:
    mapping = [{"name": "refill", "value": "intent-101"}, {"name": "refill", "value": "i-2"}]
    assert refusal(EpicSettings, {"quickCrmTopicMapping": mapping}) == (
        ("quickCrmTopicMapping",), "DUPLICATE_NAME",
    )  # fmt: skip


# The slot search rule: a single search may not exceed the total.


@UNTIMED
@given(st.integers(0, DAYS_MAX), st.integers(0, DAYS_MAX))
def test_the_slot_search_maximum_may_not_exceed_the_total(single: int, total: int) -> None:
    data = {
        "epicMaximumSlotSearchDateRangeInDays": single,
        "maxAllowedSlotSearchDateRangeDays": total,
    }
    if single <= total:
        assert EpicSettings.model_validate(data).max_allowed_slot_search_date_range_days == total
    else:
        assert refusal(EpicSettings, data) == (
            ("epicMaximumSlotSearchDateRangeInDays",), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL",
        )  # fmt: skip


def test_the_slot_search_rule_holds_against_the_default_total() -> None:
    assert refusal(EpicSettings, {"epicMaximumSlotSearchDateRangeInDays": 100}) == (
        ("epicMaximumSlotSearchDateRangeInDays",), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL",
    )  # fmt: skip
    assert refusal(EpicSettings, {"maxAllowedSlotSearchDateRangeDays": 20}) == (
        ("epicMaximumSlotSearchDateRangeInDays",), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL",
    )  # fmt: skip


def test_the_slot_search_error_goes_on_the_field_a_save_sent() -> None:
    data = {"epicMaximumSlotSearchDateRangeInDays": 100, "maxAllowedSlotSearchDateRangeDays": 90}
    sent = {"maxAllowedSlotSearchDateRangeDays"}
    assert refusals(EpicSettings, data, sent=sent) == [
        (("maxAllowedSlotSearchDateRangeDays",), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL")
    ]


# The SOAP pair: a username and a password are set together.


def test_a_soap_username_and_password_together_are_accepted() -> None:
    epic = EpicSettings.model_validate({"soapUsername": "soap-refills", "soapPassword": password()})
    assert epic.soap_username == "soap-refills" and epic.soap_password.is_set


def test_a_soap_username_alone_is_incomplete_and_blames_the_password() -> None:
    assert refusal(EpicSettings, {"soapUsername": "soap-refills"}) == (
        ("soapPassword",), "SOAP_CREDENTIALS_INCOMPLETE",
    )  # fmt: skip


def test_a_soap_password_alone_is_incomplete_and_blames_the_username() -> None:
    assert refusal(EpicSettings, {"soapPassword": password()}) == (
        ("soapUsername",), "SOAP_CREDENTIALS_INCOMPLETE",
    )  # fmt: skip


def test_a_save_sending_neither_half_may_leave_the_pair_as_it_was() -> None:
    # A stored username whose password an import could not carry: another field's save is fine.
    context = {SENT_FIELDS: frozenset({"context"})}
    data = {"soapUsername": "soap-refills", "context": "Scheduling"}
    assert EpicSettings.model_validate(data, context=context).soap_username == "soap-refills"
    # Sending one half is the user at that form: the pair must be completed.
    context = {SENT_FIELDS: frozenset({"soapUsername"})}
    assert refusal(EpicSettings, data, context) == (
        ("soapPassword",), "SOAP_CREDENTIALS_INCOMPLETE",
    )  # fmt: skip


@pytest.mark.parametrize("context", [{IMPORTING: True}, {"stored": True}])
def test_an_import_or_a_stored_block_may_hold_the_username_alone(context: dict[str, Any]) -> None:
    epic = EpicSettings.model_validate({"soapUsername": "soap-refills"}, context=context)
    assert epic.soap_username == "soap-refills" and not epic.soap_password.is_set


# --- OAuth --------------------------------------------------------------------------------------


def test_the_token_url_is_https() -> None:
    assert EpicOAuthSettings().oauth_token_url is None
    url = "https://auth.example.test/oauth2/token"
    assert EpicOAuthSettings(oauth_token_url=url).oauth_token_url == url
    for bad in ("http://auth.example.test/oauth2/token", "ftp://auth.example.test/token",
                "https://epic.example.test:99999/token"):  # fmt: skip
        assert refusal(EpicOAuthSettings, {"oauthTokenUrl": bad}) == (
            ("oauthTokenUrl",), "INVALID_URL",
        )  # fmt: skip


def test_a_plain_http_token_url_is_taken_only_where_the_deployment_allows_it() -> None:
    url = "http://127.0.0.1:9000/token"
    oauth = EpicOAuthSettings.model_validate(
        {"oauthTokenUrl": url}, context={"allow_insecure_http": True}
    )
    assert oauth.oauth_token_url == url
