"""Athena's cache TTLs are ISO 8601 durations as the standard writes them: a decimal fraction on
the last (smallest) unit, and an empty field meaning the spec's default of 20 hours. Zero,
negative and malformed durations are still refused, and so are those that read as zero: shorter
than a millisecond; and a fraction of a year or a month, which has no fixed length (isodate
reads P0.5Y, and then cannot add it to any date or time)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import isodate
import pytest

from tests.conftest import TEST_DATABASE, Gateway, gateway_config, open_gateway
from tests.documents import SELECT_PROVIDER
from tests.older_gateway import store_as_older_gateway

SAVE_CACHE_TTLS = """
mutation SaveCacheTtls($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""

CACHE_TTLS = """
query CacheTtls($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    ehr { ... on AthenaSettings { cacheProvidersDurationTtl cacheDepartmentsDurationTtl } }
  }
}
"""


async def athena_tenant(gateway: Gateway, tenant_id: str) -> None:
    data = await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="ATHENA")
    assert data["selectEhrProvider"]["__typename"] == "SettingsSaved"


async def save(gateway: Gateway, tenant_id: str, **ttls: Any) -> dict[str, Any]:
    data = await gateway.execute(SAVE_CACHE_TTLS, tenantId=tenant_id, input={"athena": ttls})
    result: dict[str, Any] = data["updateEhrSettings"]
    return result


async def ttls(gateway: Gateway, tenant_id: str) -> dict[str, str]:
    data = await gateway.execute(CACHE_TTLS, tenantId=tenant_id)
    ehr: dict[str, str] = data["integrationSettings"]["ehr"]
    return ehr


@pytest.mark.parametrize(
    "duration",
    ["PT0.5H", "P0.5D", "PT1.5S", "PT1,5S", "P1DT0.5H", "PT48H", "P2D", "P1.5W", "P1Y0.5D",
     "P1.0Y", "P2,0M"],
)  # fmt: skip
async def test_a_fraction_on_the_last_unit_is_saved(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(
        gateway, tenant_id, cacheProvidersDurationTtl=duration, cacheDepartmentsDurationTtl=duration
    )

    assert result["__typename"] == "SettingsSaved", result
    assert await ttls(gateway, tenant_id) == {
        "cacheProvidersDurationTtl": duration,
        "cacheDepartmentsDurationTtl": duration,
    }


@pytest.mark.parametrize("empty", ["", None])
async def test_an_empty_ttl_means_twenty_hours(
    gateway: Gateway, tenant_id: str, empty: str | None
) -> None:
    await athena_tenant(gateway, tenant_id)
    await save(gateway, tenant_id, cacheProvidersDurationTtl="PT48H")

    result = await save(
        gateway, tenant_id, cacheProvidersDurationTtl=empty, cacheDepartmentsDurationTtl=empty
    )

    assert result["__typename"] == "SettingsSaved", result
    assert await ttls(gateway, tenant_id) == {
        "cacheProvidersDurationTtl": "PT20H",
        "cacheDepartmentsDurationTtl": "PT20H",
    }


REFUSED = [
    pytest.param("P1.5DT2H", id="fraction-on-a-unit-that-is-not-the-last"),
    pytest.param("PT1.5H30M", id="fraction-on-hours-before-minutes"),
    pytest.param("PT0H", id="zero-hours"),
    pytest.param("P0D", id="zero-days"),
    pytest.param("PT0.0S", id="zero-with-a-fraction"),
    pytest.param("-PT20H", id="negative"),
    pytest.param("P", id="no-unit"),
    pytest.param("P1DT", id="time-designator-without-a-unit"),
    pytest.param("PT.5H", id="fraction-without-a-whole-part"),
    pytest.param("20 hours", id="words"),
    pytest.param("P0001-00-00", id="alternative-format"),
]


@pytest.mark.parametrize("duration", REFUSED)
async def test_a_malformed_zero_or_negative_duration_is_refused(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheDepartmentsDurationTtl=duration)

    assert result["__typename"] == "ValidationFailed"
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "cacheDepartmentsDurationTtl"], "INVALID_DURATION")
    ]
    assert (await ttls(gateway, tenant_id))["cacheDepartmentsDurationTtl"] == "PT20H"


# Positive as written, zero as read: isodate, with which the gateway checks the value, gives
# timedelta(0) for each, as would a runtime holding a TTL in a timedelta or in whole milliseconds.
ZERO_AS_READ = [
    pytest.param("PT0.0000001S", id="a-tenth-of-a-microsecond"),
    pytest.param("PT0.000000000000000000001H", id="a-vanishing-fraction-of-an-hour"),
    pytest.param("PT0.0009S", id="just-under-a-millisecond"),
]


@pytest.mark.parametrize("duration", ZERO_AS_READ)
async def test_a_ttl_shorter_than_a_millisecond_is_refused(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    """PT0.0000001S passes a "longer than zero" reading of its text, but a cache it enabled would
    never keep anything: refused as zero is."""
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheDepartmentsDurationTtl=duration)

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "cacheDepartmentsDurationTtl"], "INVALID_DURATION")
    ]
    assert "millisecond" in result["errors"][0]["message"]
    assert (await ttls(gateway, tenant_id))["cacheDepartmentsDurationTtl"] == "PT20H"


@pytest.mark.parametrize("duration", ["P0.5Y", "P1.5M", "P1Y0,5M", "P0.25Y", "P1.000001M"])
async def test_a_fraction_of_a_year_or_a_month_is_refused(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    with pytest.raises(ValueError, match="fractional years or months"):  # as a runtime reads it
        datetime(2026, 1, 31, tzinfo=UTC) + isodate.parse_duration(duration)
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheProvidersDurationTtl=duration)

    assert result == {
        "__typename": "ValidationFailed",
        "errors": [
            {
                "path": ["input", "athena", "cacheProvidersDurationTtl"],
                "code": "INVALID_DURATION",
                "message": "years and months must be whole numbers: a fraction of one has no "
                "fixed length; write the rest in weeks, days or hours, e.g. P1M15D or P6M "
                "rather than P0.5Y",
            }
        ],
    }
    assert (await ttls(gateway, tenant_id))["cacheProvidersDurationTtl"] == "PT20H"


async def test_a_ttl_of_a_millisecond_is_saved(gateway: Gateway, tenant_id: str) -> None:
    assert isodate.parse_duration("PT0.001S").total_seconds() == 0.001  # as a runtime reads it
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheDepartmentsDurationTtl="PT0.001S")

    assert result["__typename"] == "SettingsSaved", result
    assert (await ttls(gateway, tenant_id))["cacheDepartmentsDurationTtl"] == "PT0.001S"


async def test_a_ttl_stored_before_zero_or_sub_millisecond_ones_were_refused_stays_readable(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await athena_tenant(gateway, tenant_id)
    await store_as_older_gateway(
        database_url,
        TEST_DATABASE,
        tenant_id,
        {
            "providers.ATHENA.ehr.cacheProvidersDurationTtl": "PT0S",
            "providers.ATHENA.ehr.cacheDepartmentsDurationTtl": "PT0.0000001S",
        },
        data_dir=tmp_path,
    )

    async for gateway in open_gateway(config):  # a fresh process: nothing cached
        assert await ttls(gateway, tenant_id) == {
            "cacheProvidersDurationTtl": "PT0S",
            "cacheDepartmentsDurationTtl": "PT0.0000001S",
        }


@pytest.mark.parametrize("duration", ["P100Y", "P1200M", "P36525D", "PT876600H", "P99Y11M"])
async def test_a_ttl_of_up_to_a_century_is_saved(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheProvidersDurationTtl=duration)

    assert result["__typename"] == "SettingsSaved", result


@pytest.mark.parametrize(
    "duration",
    ["P" + "9" * 60 + "Y", "PT" + "9" * 40 + "S", "P1000000000D", "P100Y1D", "P36526D",
     "PT3155760001S", "P5218W"],
)  # fmt: skip
async def test_a_ttl_longer_than_a_century_is_refused(
    gateway: Gateway, tenant_id: str, duration: str
) -> None:
    """The pattern bounds the text, not the number: `P` and sixty nines and `Y` is 64
    characters, and a runtime turning it into a timedelta or int64 seconds overflows."""
    await athena_tenant(gateway, tenant_id)

    result = await save(gateway, tenant_id, cacheProvidersDurationTtl=duration)

    assert result["__typename"] == "ValidationFailed", result
    assert [(error["path"], error["code"]) for error in result["errors"]] == [
        (["input", "athena", "cacheProvidersDurationTtl"], "DURATION_TOO_LONG")
    ]
    assert (await ttls(gateway, tenant_id))["cacheProvidersDurationTtl"] == "PT20H"


async def test_a_ttl_of_a_fraction_of_a_year_stored_before_it_was_refused_stays_readable(
    database_url: str, tmp_path: Path, tenant_id: str
) -> None:
    config = gateway_config(database_url, tmp_path)
    async for gateway in open_gateway(config):
        await athena_tenant(gateway, tenant_id)
    await store_as_older_gateway(
        database_url, TEST_DATABASE, tenant_id,
        {"providers.ATHENA.ehr.cacheProvidersDurationTtl": "P0.5Y"}, data_dir=tmp_path,
    )  # fmt: skip

    async for gateway in open_gateway(config):  # a fresh process: nothing cached
        assert (await ttls(gateway, tenant_id))["cacheProvidersDurationTtl"] == "P0.5Y"
        result = await save(gateway, tenant_id, cacheProvidersDurationTtl="P6M")
        assert result["__typename"] == "SettingsSaved", result
