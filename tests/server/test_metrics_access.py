"""Who may read /metrics. The metrics tell how the gateway is used and how its database fares;
with EHRGW_METRICS_TOKEN set a scraper must present it as a bearer token, and outside development
mode (which listens on loopback only) /metrics is closed until a token is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehr_gateway.server.config import ConfigError, load_config
from tests.conftest import gateway_config, open_gateway

METRICS_TOKEN = "scrape-3f9c1d7e8b2a4c6d"


async def test_metrics_need_the_configured_bearer_token(database_url: str, tmp_path: Path) -> None:
    config = gateway_config(database_url, tmp_path, metrics_token=METRICS_TOKEN)
    async for gateway in open_gateway(config):
        anonymous = await gateway.client.get("/metrics")
        wrong = await gateway.client.get(
            "/metrics", headers={"authorization": "Bearer scrape-0000000000000000"}
        )
        # A gateway API token is not the metrics token.
        api_token = await gateway.client.get(
            "/metrics", headers={"authorization": f"Bearer {gateway.token}"}
        )
        scraper = await gateway.client.get(
            "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
        )

    for refused in (anonymous, wrong, api_token):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "ehrgw_" not in refused.text
    assert scraper.status_code == 200
    assert "ehrgw_change_feed_up" in scraper.text


async def test_outside_development_mode_metrics_are_closed_without_a_token(
    database_url: str, tmp_path: Path
) -> None:
    config = gateway_config(database_url, tmp_path, auth_issuer="https://issuer.example.test")
    async for gateway in open_gateway(config):
        response = await gateway.client.get("/metrics")
        health = await gateway.client.get("/healthz")

    assert response.status_code == 401
    assert "ehrgw_" not in response.text
    assert health.status_code == 200  # the load balancer's checks stay open


async def test_development_mode_without_a_token_keeps_metrics_on_loopback_open(
    database_url: str, tmp_path: Path
) -> None:
    async for gateway in open_gateway(gateway_config(database_url, tmp_path)):
        response = await gateway.client.get("/metrics")

    assert response.status_code == 200


def test_a_guessable_metrics_token_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EHRGW_METRICS_TOKEN", "letmein")

    with pytest.raises(ConfigError) as refused:
        load_config()

    assert "EHRGW_METRICS_TOKEN" in str(refused.value)
    assert "letmein" not in str(refused.value)
