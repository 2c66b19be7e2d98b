"""Ellkay's settings (ehr/ellkay.py)."""

from __future__ import annotations

import pytest

from ehr_gateway.ehr.ellkay import EllkaySettings
from ehr_gateway.ehr.epic import EpicSettings
from ehr_gateway.ehr.fields import guarded_by
from ehr_gateway.ehr.secret import is_issued_key
from tests.ehr.refusals import refusal


def test_the_defaults_are_the_specs() -> None:
    ellkay = EllkaySettings()
    assert ellkay.appointment_encounter_search_max_days == 7
    assert ellkay.waitlisting_status_name == "Waitlist"
    assert ellkay.rescheduling_status_name == "Rescheduled"
    assert ellkay.account_time_zone_offset == "+00:00"
    assert ellkay.slot_search_max_days is None
    assert ellkay.appointment_confirmation_comment is None
    assert not ellkay.subscriber_key.is_set and not ellkay.site_service_key.is_set


def test_both_keys_are_write_only_secrets() -> None:
    for name in ("subscriber_key", "site_service_key"):
        assert guarded_by(EllkaySettings.model_fields[name]) == "secrets:write"


def test_both_keys_and_only_they_are_issued_keys_the_soap_password_is_verbatim() -> None:
    """An issued key is refused with white space around it when saved; a password is not."""
    issued = {name for name, field in EllkaySettings.model_fields.items() if is_issued_key(field)}
    assert issued == {"subscriber_key", "site_service_key"}
    assert not any(is_issued_key(field) for field in EpicSettings.model_fields.values())


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("accountTimeZoneOffset", "+5:00", "INVALID_OFFSET"),
        ("accountTimeZoneOffset", "+15:00", "INVALID_OFFSET"),
        ("accountTimeZoneOffset", "+14:30", "INVALID_OFFSET"),
        ("accountTimeZoneOffset", "+0\uff15:00", "INVALID_OFFSET"),
        ("appointmentConfirmationComment", "{{DATE}}", "UNKNOWN_PLACEHOLDER"),
        ("appointmentConfirmationComment", "Confirmed {{DATETIME}", "UNKNOWN_PLACEHOLDER"),
        ("appointmentConfirmationComment", "c" * 2001, "TOO_LONG"),
        ("slotSearchMaxDays", -1, "OUT_OF_RANGE"),
        ("appointmentEncounterSearchMaxDays", 36_501, "OUT_OF_RANGE"),
        ("nameForSendInteractiveRecords", "   ", "TOO_SHORT"),
        ("waitlistingStatusName", "", "TOO_SHORT"),
        ("subscriberKey", "plain-text-key", "INVALID_TYPE"),
    ],
)
def test_an_ellkay_setting_is_refused_at_its_path(field: str, value: object, code: str) -> None:
    path, found = refusal(EllkaySettings, {field: value})
    assert (path[0], found) == (field, code)


def test_a_comment_of_2000_characters_with_the_placeholder_is_accepted() -> None:
    comment = "Confirmed on {{DATETIME}}.".ljust(2000, ".")
    assert EllkaySettings(appointment_confirmation_comment=comment).appointment_confirmation_comment


def test_zero_days_is_a_limit_of_its_own() -> None:
    ellkay = EllkaySettings(slot_search_max_days=0, appointment_encounter_search_max_days=0)
    assert ellkay.slot_search_max_days == 0
