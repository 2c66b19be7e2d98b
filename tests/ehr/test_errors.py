"""Validation failures as the API reports them (ehr/errors.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ehr_gateway.ehr.epic import EpicFhirSettings, EpicSettings
from ehr_gateway.ehr.errors import FieldError, field_errors


def errors_of(data: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        EpicSettings.model_validate(data)
    return raised.value


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"context": ""}, "TOO_SHORT"),
        ({"context": "c" * 257}, "TOO_LONG"),
        ({"epicMaximumSlotSearchDateRangeInDays": -1}, "OUT_OF_RANGE"),
        ({"maxAllowedSlotSearchDateRangeDays": 40_000}, "OUT_OF_RANGE"),
        ({"receiveCommunicationVersion": "V9"}, "INVALID_CHOICE"),
        ({"useOauth": "maybe"}, "INVALID_TYPE"),
        ({"context": 5}, "INVALID_TYPE"),
        ({"quickCrmTopicMapping": "refill"}, "INVALID_TYPE"),
        ({"soapPasword": "typo"}, "UNKNOWN_FIELD"),
        ({"jkuServerUrl": "ftp://x.example"}, "INVALID_URL"),  # a rule's own code, upper-cased
    ],
)
def test_pydantic_error_types_are_renamed_to_the_stable_codes(
    data: dict[str, object], code: str
) -> None:
    (error,) = field_errors(errors_of(data))
    assert error.code == code


def test_errors_are_put_under_the_prefix_of_the_input() -> None:
    (error,) = field_errors(errors_of({"context": ""}), ("input", "epic"))
    assert error == FieldError(("input", "epic", "context"), "TOO_SHORT", error.message)


def test_a_rule_over_two_fields_blames_the_one_a_save_sent() -> None:
    error = errors_of({"epicMaximumSlotSearchDateRangeInDays": 100})
    (blamed,) = field_errors(error)
    assert blamed.path == ("epicMaximumSlotSearchDateRangeInDays",)
    (sent,) = field_errors(error, sent={"maxAllowedSlotSearchDateRangeDays"})
    assert sent.path == ("maxAllowedSlotSearchDateRangeDays",)
    (neither,) = field_errors(error, sent={"context"})
    assert neither.path == ("epicMaximumSlotSearchDateRangeInDays",)


def test_no_message_carries_the_submitted_value() -> None:
    marker = "s3cr3t-marker"
    error = errors_of(
        {"context": 5, "jkuServerUrl": f"ftp://{marker}", marker: 1, "useOauth": marker}
    )
    for found in field_errors(error):
        assert marker not in found.message


@pytest.mark.parametrize(
    "days",
    [
        pytest.param(1.5, id="fraction"),
        pytest.param(1e30, id="beyond-any-integer"),
    ],
)
def test_a_number_that_is_no_whole_number_gets_a_stable_code_not_pydantics_own(
    days: float,
) -> None:
    # An import document is JSON, not GraphQL's Int: pydantic's own names (INT_FROM_FLOAT,
    # INT_PARSING_SIZE) must not reach the API.
    with pytest.raises(ValidationError) as raised:
        EpicFhirSettings.model_validate({"dayRangeForTemporalSearches": days})
    (error,) = field_errors(raised.value)
    assert error.code in {"INVALID_TYPE", "OUT_OF_RANGE"}
