"""What a trusted document saves a request: the admin page's full Epic settings query, found by
the gateway's trusted-document lookup (gql.persisted_documents: parsed and validated once, at
startup), beside the ceiling measured in the same run: the same document parsed and validated
with the request rules and limits, as a document the gateway has not seen is on every request.
Times are CPU time of the measuring thread per request, the median of the runs.

    python bench/persisted_cost.py             # writes bench/results/persisted_cost.json
    python bench/persisted_cost.py --runs 15

The target: the lookup costs at most 1% of parsing and validating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

from graphql import parse, specified_rules

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bench.validation_cost import EPIC_FIELDS  # noqa: E402
from ehr_gateway.gql.limits import Limits, validation_rules  # noqa: E402
from ehr_gateway.gql.persisted_documents import PersistedDocumentsSetup, sha256_hex  # noqa: E402
from ehr_gateway.gql.schema import gateway_schema  # noqa: E402
from ehr_gateway.gql.selection_limits import SelectionLimits  # noqa: E402
from ehr_gateway.gql.validation_cache import validate_bounded  # noqa: E402

TARGET_SHARE = 0.01
PAGE = f"query EpicSettings($tenantId: ID!) {{ integrationSettings(tenantId: $tenantId) {{ {EPIC_FIELDS} }} }}"  # noqa: E501


def per_request_ms(step: Callable[[], object], requests: int, runs: int) -> float:
    """The median, over ``runs``, of the CPU time per request of ``requests`` calls."""
    times = []
    for _ in range(runs):
        started = time.thread_time()
        for _ in range(requests):
            step()
        times.append((time.thread_time() - started) / requests)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/persisted_cost.json")
    args = parser.parse_args()

    limits = Limits()
    schema = gateway_schema(
        limits, persisted=PersistedDocumentsSetup({sha256_hex(PAGE): (PAGE, "bench")})
    )
    rules = (*specified_rules, *validation_rules(limits, introspection=True))
    selection_limits = SelectionLimits(limits.max_selections, limits.max_repeats)
    persisted = schema.persisted
    fresh_texts = (f"{PAGE}\n# {n}" for n in count())

    def trusted() -> object:
        document = persisted.trusted(PAGE)
        assert document is not None
        return document

    def parsed_and_validated() -> object:
        document = parse(next(fresh_texts), max_tokens=limits.max_tokens)
        errors = validate_bounded(
            schema._schema, document, rules, selection_limits, hide_suggestions=False
        )
        assert not errors, errors
        return document

    ceiling_ms = per_request_ms(parsed_and_validated, 50, args.runs)
    trusted_ms = per_request_ms(trusted, 50_000, args.runs)
    share = trusted_ms / ceiling_ms
    results = {
        "machine": machine(),
        "document_chars": len(PAGE),
        "parse_and_validate_ms": round(ceiling_ms, 4),
        "trusted_lookup_ms": round(trusted_ms, 6),
        "share_of_ceiling": round(share, 6),
        "target_share": TARGET_SHARE,
        "met": share <= TARGET_SHARE,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))
    if share > TARGET_SHARE:
        sys.exit(f"a trusted document costs {share:.2%} of parsing and validating it")


if __name__ == "__main__":
    main()
