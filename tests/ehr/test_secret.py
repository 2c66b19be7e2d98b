"""Write-only secrets as the settings hold them (ehr/secret.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ehr_gateway.ehr.secret import (
    IMPORTING,
    SENT_FIELDS,
    StoredSecret,
    field_binding,
    may_lack_secret,
    signing_key_binding,
)

PAIR = {"soapUsername", "soapPassword"}


def test_a_secret_is_set_once_it_has_ciphertext() -> None:
    assert StoredSecret().is_set is False
    secret = StoredSecret(ciphertext="c2VhbGVk", key_id="k1", updated_at=datetime.now(UTC))
    assert secret.is_set is True
    shown = secret.model_dump(by_alias=True)
    assert shown["isSet"] is True


def test_a_secret_is_bound_to_its_tenant_and_field() -> None:
    assert field_binding("t1", "EPIC", "EHR", "soapPassword") == "t1:EPIC:EHR:soapPassword"
    assert field_binding("t2", "EPIC", "EHR", "soapPassword") != field_binding(
        "t1", "EPIC", "EHR", "soapPassword"
    )
    assert signing_key_binding("t1", "EPIC", "kid-1") == "t1:EPIC:signing-key:kid-1"


@pytest.mark.parametrize(
    ("context", "may"),
    [
        ({"stored": True}, True),
        ({IMPORTING: True}, True),
        ({SENT_FIELDS: frozenset({"context"})}, True),
        ({SENT_FIELDS: frozenset({"soapUsername"})}, False),
        ({SENT_FIELDS: frozenset({"soapPassword", "context"})}, False),
        ({SENT_FIELDS: {"context"}}, False),  # only a frozenset says what a save sent
        ({}, False),
        (None, False),
    ],
)
def test_when_a_credential_may_be_half_set(context: object, may: bool) -> None:
    assert may_lack_secret(context, PAIR) is may
