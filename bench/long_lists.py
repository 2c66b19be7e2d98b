"""What a request with a long list in its variables costs the gateway: an editor's
``updateHeaderSettings`` with 9,000 custom headers (the most a 256 KB body holds; refused, as a
list longer than any argument accepts, before its variables are coerced), with 1,000 (the
longest list admitted: coerced, converted and refused by the settings' own rule, at most 50), 50
(saved), and nine aliased saves of 1,000 each in one body (each list admitted); beside the
ceiling measured in the same run: the save of 50 headers in a body that carries the 9,000 too,
under a variable the document does not declare (read as JSON, never coerced). Times are the gateway
process's CPU time per request (from /proc), the median of the runs, each run many requests one
after another.

    python bench/long_lists.py               # writes bench/results/long_lists.json
    python bench/long_lists.py --runs 9 --requests 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, machine, served_gateway  # noqa: E402
from ehr_gateway.storage.embedded import EmbeddedMongo  # noqa: E402

TENANT = "bench-lists"
SELECT = (
    "mutation Select($t: ID!) { selectEhrProvider(tenantId: $t, provider: ATHENA) { __typename } }"
)
SAVE = (
    "mutation SaveHeaders($tenantId: ID!, $input: HeaderSettingsInput!) { "
    "updateHeaderSettings(tenantId: $tenantId, input: $input) { __typename "
    "... on ValidationFailed { errors { path code } } } }"
)


def _body(query: str, variables: dict[str, Any]) -> bytes:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":")).encode()


def _headers(count: int) -> list[dict[str, str]]:
    return [{"name": f"H{i}", "value": "v"} for i in range(count)]


def save_headers(count: int) -> bytes:
    return _body(
        SAVE, {"tenantId": TENANT, "input": {"athena": {"customHeaders": _headers(count)}}}
    )


def aliased_saves(aliases: int, count: int) -> bytes:
    declared = ", ".join(f"$h{n}: [CustomHeaderInput!]" for n in range(aliases))
    fields = " ".join(
        f"a{n}: updateHeaderSettings(tenantId: $t, input: {{athena: {{customHeaders: $h{n}}}}})"
        " { __typename }"
        for n in range(aliases)
    )
    variables: dict[str, Any] = {"t": TENANT}
    variables.update({f"h{n}": _headers(count) for n in range(aliases)})
    return _body(f"mutation Saves($t: ID!, {declared}) {{ {fields} }}", variables)


def undeclared(count: int) -> bytes:
    """The save of 50 headers in a body that also carries ``count`` headers under a variable
    the document does not declare: read as JSON like any body, never coerced."""
    variables = {
        "tenantId": TENANT,
        "input": {"athena": {"customHeaders": _headers(50)}},
        "unused": {"athena": {"customHeaders": _headers(count)}},
    }
    return _body(SAVE, variables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/long_lists.json")
    args = parser.parse_args()

    refused = save_headers(9000)
    cases = {
        "ceiling: 50 headers saved, 9,000 more undeclared": undeclared(9000),
        "9,000 headers (refused before coercion)": refused,
        "1,000 headers (admitted, TOO_MANY)": save_headers(1000),
        "50 headers (saved)": save_headers(50),
        "9 aliased saves of 1,000 headers": aliased_saves(9, 1000),
    }
    results: dict[str, Any] = {"machine": machine(), "load_average": os.getloadavg(), "cases": {}}
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedMongo(Path(scratch) / "db") as db,
        served_gateway(db.url, "bench", Path(scratch) / "gateway", roles=("editor",)) as gateway,
        httpx.Client(
            base_url=gateway.url,
            timeout=60,
            headers={
                "authorization": f"Bearer {gateway.token}",
                "content-type": "application/json",
            },
        ) as client,
    ):
        assert client.post("/graphql", content=_body(SELECT, {"t": TENANT})).status_code == 200
        for name, body in cases.items():
            answer = client.post("/graphql", content=body)  # once before measuring
            assert answer.status_code == 200, answer.text[:200]
            runs = []
            for _ in range(args.runs):
                before = cpu_seconds(gateway.process.pid)
                for _ in range(args.requests):
                    client.post("/graphql", content=body)
                runs.append((cpu_seconds(gateway.process.pid) - before) / args.requests)
            results["cases"][name] = {
                "body_bytes": len(body),
                "cpu_ms_per_request": round(statistics.median(runs) * 1000, 1),
                "answer": answer.text[:160],
            }
            print(f"{name}: {len(body):,} bytes, {results['cases'][name]['cpu_ms_per_request']} ms")
    results["load_average_after"] = os.getloadavg()
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
