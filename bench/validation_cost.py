"""What validating a document can cost under the gateway's document limits: the worst documents
the limits admit, each parsed and validated afresh (as a document with a new comment is, every
time), beside the ceiling: the full settings query of every EHR. Times are CPU time of the
validating thread (what one request takes from all the others, however busy the machine is), the
median of the runs; the target is 50 ms for the worst admitted document.

    python bench/validation_cost.py            # writes bench/results/validation_cost.json
    python bench/validation_cost.py --runs 15

The wide document (1,200 times `ehr { __typename }`) is timed too: refused by the limits, and
validated without them, as it was before they existed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    GraphQLError,
    Lexer,
    Source,
    TokenKind,
    parse,
    specified_rules,
    validate,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from ehr_gateway.gql.limits import Limits, validation_rules  # noqa: E402
from ehr_gateway.gql.schema import gateway_schema  # noqa: E402
from ehr_gateway.gql.selection_limits import OPERATION_WEIGHT, SelectionLimits  # noqa: E402
from ehr_gateway.gql.validation_cache import validate_bounded  # noqa: E402
from ehr_gateway.server.config import GatewayConfig  # noqa: E402
from tests.documents import INTEGRATION_SETTINGS  # noqa: E402

TARGET_MS = 50.0
ROOT_FIELD = 'integrationSettings(tenantId: "acme")'
# The admin page's Epic settings: every field of the Epic members of the unions.
EPIC_FIELDS = """
  tenantId version provider updatedAt updatedBy
  externalGateway { externalGatewayId basePathUrl name baseUrl environment description }
  patientRestriction { expression }
  headers { __typename ... on EpicHeaderSettings { epicClientId epicUserId epicUserIdType } }
  fhir { __typename ... on EpicFhirSettings {
    urlPrefix ssnIdentifier mrnIdentifier practitionerExternalUrn locationExternalUrn
    selfServiceIdentifier legalSexSearch useBatch dayRangeForTemporalSearches useGtInDateRange
    useLtInDateRange useTelecom usePatientIdAsIdentifier categoryFilterArray
    directRescheduleUseCase } }
  ehr { __typename ... on EpicSettings {
    vipFlagType context jkuServerUrl enableDefaultJkuServerUrlPattern jwtIssuerUrl epicUserId
    epicUserIdType providerIdType locationIdType visitIdType soapUsername
    soapPassword { isSet fingerprint updatedAt } useOauth oauthBasePath
    receiveCommunicationVersion phoneSystemId phoneSystemType sendRecordingUrl } }
  oauth { __typename ... on EpicOAuthSettings { epicClientId oauthTokenUrl } }
"""
EPIC_SETTINGS_FIELDS = [
    "vipFlagType", "context", "jkuServerUrl", "enableDefaultJkuServerUrlPattern", "jwtIssuerUrl",
    "epicUserId", "epicUserIdType", "providerIdType", "locationIdType", "visitIdType",
    "soapUsername", "useOauth", "oauthBasePath", "receiveCommunicationVersion", "phoneSystemId",
    "phoneSystemType", "sendRecordingUrl", "sendDataAfterMissedCall",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    text: str


def wide_document() -> str:
    return f"{{ {ROOT_FIELD} {{ {'ehr { __typename } ' * 1200}}} }}"


def repeated_everywhere(limits: SelectionLimits, tokens: int) -> str:
    """Epic settings selected as many times as one field may be at one place, at every place,
    as many of them as fit: the most pairs of same-named fields the overlapping-fields rule
    compares."""
    best = ""
    for count in range(1, len(EPIC_SETTINGS_FIELDS) + 1):
        fields = " ".join(EPIC_SETTINGS_FIELDS[:count])
        one = (
            f"{ROOT_FIELD} {{ version ehr {{ __typename ... on EpicSettings {{ {fields} "
            "soapPassword { isSet fingerprint updatedAt } } } } "
        )
        text = f"query Repeated {{ {one * limits.max_repeats}}}"
        if not _admitted(text, limits) or _tokens(text) > tokens:
            break
        best = text
    return best


def repeated_page(limits: SelectionLimits, tokens: int) -> str:
    """The admin page's Epic settings query, repeated at the root as many times as fit."""
    one = f"{ROOT_FIELD} {{ {EPIC_FIELDS} }} "
    copies = 1
    while copies < limits.max_repeats:
        text = f"query Repeated {{ {one * (copies + 1)}}}"
        if not _admitted(text, limits) or _tokens(text) > tokens:
            break
        copies += 1
    return f"query Repeated {{ {one * copies}}}"


def distinct_everywhere(limits: SelectionLimits, aliases: int) -> str:
    """The full settings query of every EHR under as many aliases as fit the selection limit:
    the most selections, none merged."""
    body = INTEGRATION_SETTINGS.split("fragment SettingsFields on SettingsView {", 1)[1]
    body = body.rsplit("}", 1)[0]
    per_copy = _selections(f"{{ {ROOT_FIELD} {{ {body} }} }}")
    copies = min(aliases, limits.max_selections // per_copy)
    fields = " ".join(f"a{n}: {ROOT_FIELD} {{ {body} }}" for n in range(copies))
    return f"query Distinct {{ {fields} }}"


def fragment_pairs(limits: SelectionLimits, aliases: int) -> str:
    """At each of many places, as many fragment spreads as are allowed, each of a different
    fragment: the most pairs of fragments the overlapping-fields rule compares."""
    fragments = [
        f"fragment E{n} on EpicSettings {{ {field} }}"
        for n, field in enumerate(EPIC_SETTINGS_FIELDS)
    ]
    count = len(fragments)
    per_place = min(limits.max_repeats, count)
    places = []
    for n in range(aliases):
        spreads = " ".join(f"...E{(n * 7 + k) % count}" for k in range(per_place))
        places.append(f"a{n}: {ROOT_FIELD} {{ ehr {{ {spreads} }} }}")
        if _selections("{" + " ".join(places) + "}" + " ".join(fragments)) > limits.max_selections:
            places.pop()
            break
    return f"query Spreads {{ {' '.join(places)} }} {' '.join(fragments)}"


def fragment_chain(limits: SelectionLimits) -> str:
    """Fragments that each spread the next one twice, as long a chain as the limits admit: the
    depth limiter walks a fragment at every spread of it."""
    best = ""
    for levels in range(1, 30):
        fragments = [
            f"fragment F{n} on EpicSettings {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)
        ]
        fragments.append(f"fragment F{levels} on EpicSettings {{ vipFlagType }}")
        text = f"{{ {ROOT_FIELD} {{ ehr {{ ...F0 }} }} }} {' '.join(fragments)}"
        if not _admitted(text, limits):
            break
        best = text
    return best


def many_operations(limits: SelectionLimits, tokens: int) -> str:
    """As many operations as the token limit allows, each with one selection."""
    count = min(limits.max_selections // (OPERATION_WEIGHT + 1), tokens // 5)
    while _tokens(text := " ".join(f"query Q{n} {{ __typename }}" for n in range(count))) > tokens:
        count -= 1
    return text


def directives_on_every_field(limits: SelectionLimits, tokens: int) -> str:
    """Fields under @include and @skip: as many as the token limit allows."""
    per_field = "__typename @include(if: true) @skip(if: false) "
    count = min(limits.max_repeats, tokens // 14)
    roots = []
    for n in range(30):
        roots.append(f"a{n}: {ROOT_FIELD} {{ {per_field * count} }}")
        text = f"{{ {' '.join(roots)} }}"
        if not _admitted(text, limits) or _tokens(text) > tokens:
            roots.pop()
            break
    return f"{{ {' '.join(roots)} }}"


def long_list_argument(tokens: int) -> str:
    """A mutation whose input holds a list literal as long as the token limit allows: work
    that no selection limit counts, bounded by the token limit alone."""
    count = tokens
    while True:
        items = ", ".join(['"PATIENT_CASE"'] * count)
        text = (
            'mutation Long { updateFhirSettings(tenantId: "acme", input: { epic: { '
            f"categoryFilterArray: [{items}] }} }}) {{ __typename }} }}"
        )
        if _tokens(text) <= tokens:
            return text
        count -= 1


def _tokens(text: str) -> int:
    """How many tokens the parser's token limit counts in ``text``."""
    lexer = Lexer(Source(text))
    count = 1  # the end of the document is a token too
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def _selections(text: str) -> int:
    """How many selections the limits count in ``text``."""
    low, high = 1, 1_000_000
    document = parse(text)
    while low < high:
        middle = (low + high) // 2
        if _exceeded(document, SelectionLimits(middle, 1_000_000)):
            low = middle + 1
        else:
            high = middle
    return low


def _exceeded(document: DocumentNode, limits: SelectionLimits) -> bool:
    from ehr_gateway.gql.selection_limits import exceeded

    return exceeded(document, limits) is not None


def _admitted(text: str, limits: SelectionLimits) -> bool:
    return not _exceeded(parse(text), limits)


def timed(validate_once: Callable[[], list[GraphQLError]], runs: int) -> dict[str, object]:
    """CPU time (what a request takes from the others, whatever else the machine runs) and
    wall time, in ms."""
    cpu, wall = [], []
    errors: list[GraphQLError] = []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        errors = validate_once()
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return {
        "median_ms": round(statistics.median(cpu) * 1000, 2),
        "max_ms": round(max(cpu) * 1000, 2),
        "wall_median_ms": round(statistics.median(wall) * 1000, 2),
        "errors": [error.message for error in errors[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/validation_cost.json")
    args = parser.parse_args()

    config = GatewayConfig(auth_issuer="https://issuer.example.test")  # production's defaults
    limits = Limits(
        config.max_query_depth, config.max_aliases, config.max_tokens,
        config.max_selections, config.max_repeated_selections,
    )  # fmt: skip
    selection_limits = SelectionLimits(limits.max_selections, limits.max_repeats)
    schema = gateway_schema(limits, introspection=False, suggestions=False)._schema
    # GraphQL's own rules first, as Strawberry runs them, then the gateway's.
    rules = (*specified_rules, *validation_rules(limits, introspection=False))

    def gateway_validation(text: str) -> Callable[[], list[GraphQLError]]:
        def once() -> list[GraphQLError]:
            # A new comment each time: no cache of the gateway's would help.
            try:
                document = parse(
                    f"# {time.perf_counter_ns()}\n{text}", max_tokens=limits.max_tokens
                )
            except GraphQLError as refused:  # past the token limit
                return [refused]
            return validate_bounded(
                schema, document, rules, selection_limits, hide_suggestions=True
            )

        return once

    ceiling = Case("ceiling", "the full settings query of every EHR", INTEGRATION_SETTINGS)
    worst = [
        Case("repeated_everywhere", repeated_everywhere.__doc__ or "",
             repeated_everywhere(selection_limits, limits.max_tokens)),
        Case("repeated_page", repeated_page.__doc__ or "",
             repeated_page(selection_limits, limits.max_tokens)),
        Case("distinct_everywhere", distinct_everywhere.__doc__ or "",
             distinct_everywhere(selection_limits, limits.max_aliases)),
        Case("fragment_pairs", fragment_pairs.__doc__ or "",
             fragment_pairs(selection_limits, limits.max_aliases)),
        Case("fragment_chain", fragment_chain.__doc__ or "", fragment_chain(selection_limits)),
        Case("many_operations", many_operations.__doc__ or "",
             many_operations(selection_limits, limits.max_tokens)),
        Case("directives", directives_on_every_field.__doc__ or "",
             directives_on_every_field(selection_limits, limits.max_tokens)),
        Case("long_list_argument", long_list_argument.__doc__ or "",
             long_list_argument(limits.max_tokens)),
    ]  # fmt: skip
    results: dict[str, object] = {
        "machine": machine(),
        # The other work on the machine, at the start (and, below, the end): a busy machine
        # shows as one.
        "load_average_before": os.getloadavg(),
        "command": "python bench/validation_cost.py " + " ".join(sys.argv[1:]),
        "limits": {
            "max_tokens": limits.max_tokens,
            "max_depth": limits.max_depth,
            "max_aliases": limits.max_aliases,
            "max_selections": limits.max_selections,
            "max_repeated_selections": limits.max_repeats,
        },
        "target_ms": TARGET_MS,
    }
    cases = {}
    for case in [ceiling, *worst]:
        measured = timed(gateway_validation(case.text), args.runs)
        measured["what"] = " ".join(case.what.split())
        measured["selections"] = _selections(case.text)
        measured["bytes"] = len(case.text)
        cases[case.name] = measured
        # Each document is admitted by the limits, so validation itself runs in full.
        assert _admitted(case.text, selection_limits), case.name
        print(f"{case.name:22} {measured['median_ms']:8.2f} ms (max {measured['max_ms']:.2f})")
    results["cases"] = cases
    worst_case = max(worst, key=lambda case: float(cases[case.name]["median_ms"]))  # type: ignore[arg-type]
    results["worst_admitted"] = {
        "case": worst_case.name,
        "median_ms": cases[worst_case.name]["median_ms"],
        "within_target": float(cases[worst_case.name]["median_ms"]) <= TARGET_MS,  # type: ignore[arg-type]
    }

    wide = wide_document()
    refused = timed(gateway_validation(wide), args.runs)
    document = parse(wide)
    started = time.thread_time()
    validate(schema, document, rules)
    unbounded_ms = round((time.thread_time() - started) * 1000, 1)
    results["wide_document"] = {
        "refused": refused,
        "validated_without_the_limits_ms": unbounded_ms,
        "bytes": len(wide),
    }
    print(f"{'wide document refused':22} {refused['median_ms']:8.2f} ms "
          f"(validated without the limits: {unbounded_ms} ms)")  # fmt: skip
    results["load_average_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"worst admitted: {worst_case.name}, {results['worst_admitted']}")


if __name__ == "__main__":
    main()
