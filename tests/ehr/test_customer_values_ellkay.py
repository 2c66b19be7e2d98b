"""An ELLKAY customer's own values: its subscriber and site service keys as ELLKAY hands them
out, the account's UTC offset, the confirmation comment template; and what readiness says."""

from __future__ import annotations

import pytest

from tests.conftest import Gateway
from tests.documents import UPDATE_EHR
from tests.ehr.customer_values import (
    ELLKAY_EHR,
    ELLKAY_SITE_SERVICE_KEY,
    ELLKAY_SUBSCRIBER_KEY,
    connected,
    missing_paths,
    read,
    readiness,
    save_block,
    saved_block,
    select,
)

ELLKAY_BASE_URL = "https://api.ellkay.example-health.org/LKCloud/api/v2/"

SECRET_FINGERPRINTS = """
query SecretFingerprints($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    ehr { ... on EllkaySettings { subscriberKey { isSet fingerprint } } }
  }
}
"""


async def test_every_ellkay_setting_is_saved_and_read_back_as_typed(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "ELLKAY", ELLKAY_BASE_URL)
    keys = {"subscriberKey": ELLKAY_SUBSCRIBER_KEY, "siteServiceKey": ELLKAY_SITE_SERVICE_KEY}

    await saved_block(gateway, tenant_id, UPDATE_EHR, "ellkay", {**ELLKAY_EHR, **keys})
    ehr = (await read(gateway, tenant_id))["ehr"]

    assert {key: ehr[key] for key in ELLKAY_EHR} == ELLKAY_EHR
    assert ehr["subscriberKey"]["isSet"] and ehr["siteServiceKey"]["isSet"]


async def test_an_ellkay_tenant_is_ready_once_both_keys_are_set(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "ELLKAY", ELLKAY_BASE_URL)
    await saved_block(
        gateway, tenant_id, UPDATE_EHR, "ellkay", {"subscriberKey": ELLKAY_SUBSCRIBER_KEY}
    )
    before = await readiness(gateway, tenant_id)

    await saved_block(
        gateway, tenant_id, UPDATE_EHR, "ellkay", {"siteServiceKey": ELLKAY_SITE_SERVICE_KEY}
    )

    assert missing_paths(before) == [("ehr", "siteServiceKey")]
    assert (await readiness(gateway, tenant_id))["ready"] is True


@pytest.mark.parametrize(
    "offset",
    # New York in winter, India, Nepal, Newfoundland, the Chatham Islands, Kiribati's Line
    # Islands and Baker Island: the whole range, and the quarter hours.
    ["-05:00", "+05:30", "+05:45", "-03:30", "+12:45", "+14:00", "-12:00"],
)
async def test_every_real_utc_offset_is_saved(
    gateway: Gateway, tenant_id: str, offset: str
) -> None:
    await select(gateway, tenant_id, "ELLKAY")

    stored = await saved_block(
        gateway, tenant_id, UPDATE_EHR, "ellkay", {"accountTimeZoneOffset": offset}
    )

    assert stored["ehr"]["accountTimeZoneOffset"] == offset


async def test_a_key_pasted_with_a_trailing_space_is_refused_or_the_same_key(
    gateway: Gateway, tenant_id: str
) -> None:
    """Every text setting drops the spaces pasted around it; a key kept with its trailing space
    is another key, which ELLKAY's API refuses at every call, and the page cannot show it (the
    key is write-only): its fingerprint is the only sign. Either a refusal at the field or the
    key as ELLKAY issued it is fine for an engineer."""
    await select(gateway, tenant_id, "ELLKAY")
    await saved_block(
        gateway, tenant_id, UPDATE_EHR, "ellkay", {"subscriberKey": ELLKAY_SUBSCRIBER_KEY}
    )
    clean = await gateway.execute(SECRET_FINGERPRINTS, tenantId=tenant_id)

    result = await save_block(
        gateway, tenant_id, UPDATE_EHR, "ellkay", {"subscriberKey": ELLKAY_SUBSCRIBER_KEY + " "}
    )
    pasted = await gateway.execute(SECRET_FINGERPRINTS, tenantId=tenant_id)

    if result["__typename"] == "ValidationFailed":
        assert [tuple(error["path"]) for error in result["errors"]] == [
            ("input", "ellkay", "subscriberKey")
        ]
    assert pasted == clean
