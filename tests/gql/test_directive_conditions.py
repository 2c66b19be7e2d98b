"""A ``@skip`` or ``@include`` condition written as a variable with a default
(``$skip: Boolean = false``) and sent as an explicit null is the client's mistake wherever the
directive is in the document: on a root field, below it, in a fragment. The request is refused
as a whole with graphql-core's words and the code of a request refused before it ran, whether
the gateway compiles settings reads (and answers a document it has run before on its fast path)
or not; nothing is logged as an error, with no stack trace, so no caller can fill the log with
them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import SELECT_PROVIDER

SKIP_THE_ROOT = """
query SkipTheRoot($tenantId: ID!, $skip: Boolean = false) {
  integrationSettings(tenantId: $tenantId) @skip(if: $skip) { version }
}
"""
SKIP_THE_EHR_BLOCK = """
query SkipTheEhrBlock($tenantId: ID!, $skip: Boolean = false) {
  integrationSettings(tenantId: $tenantId) { version ehr @skip(if: $skip) { __typename } }
}
"""
INCLUDE_THE_PROVIDER = """
query IncludeTheProvider($tenantId: ID!, $include: Boolean = true) {
  integrationSettings(tenantId: $tenantId) { version provider @include(if: $include) }
}
"""
SKIP_INSIDE_A_FRAGMENT = """
query SkipInsideAFragment($tenantId: ID!, $skip: Boolean = false) {
  integrationSettings(tenantId: $tenantId) { ...Epic }
}
fragment Epic on IntegrationSettings {
  ehr { ... on EpicSettings @skip(if: $skip) { epicUserId } }
}
"""
REFUSED_BEFORE_IT_RAN = "GRAPHQL_VALIDATION_FAILED"


@pytest.fixture(params=[True, False], ids=["compiled-reads", "generic"])
async def gateway(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> AsyncIterator[Gateway]:
    config = gateway_config(database_url, tmp_path, compiled_reads=request.param)
    async for opened in open_gateway(config):
        yield opened


def _refusal(answer: dict[str, object]) -> tuple[str, str]:
    assert answer["data"] is None, answer
    [error] = answer["errors"]  # type: ignore[misc]
    return error["message"], error["extensions"]["code"]


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        pytest.param(SKIP_THE_EHR_BLOCK, {"skip": None}, id="skip-below-the-root"),
        pytest.param(INCLUDE_THE_PROVIDER, {"include": None}, id="include-below-the-root"),
        pytest.param(SKIP_INSIDE_A_FRAGMENT, {"skip": None}, id="skip-in-a-fragment"),
    ],
)
async def test_a_null_condition_below_the_root_is_refused_as_on_the_root(
    gateway: Gateway,
    tenant_id: str,
    caplog: pytest.LogCaptureFixture,
    document: str,
    variables: dict[str, object],
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")
    # Run once with the condition set, so a gateway with a fast path has admitted the document.
    await gateway.execute(document, tenantId=tenant_id, **{k: True for k in variables})
    name = next(iter(variables))
    on_the_root = _refusal(await gateway.post(SKIP_THE_ROOT, tenantId=tenant_id, skip=None))

    with caplog.at_level(logging.INFO):
        first = _refusal(await gateway.post(document, tenantId=tenant_id, **variables))
        again = _refusal(await gateway.post(document, tenantId=tenant_id, **variables))

    assert first == again == (on_the_root[0].replace("$skip", f"${name}"), REFUSED_BEFORE_IT_RAN)
    assert "Argument 'if' has invalid value" in first[0], first
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def test_a_condition_sent_as_true_or_false_still_applies(
    gateway: Gateway, tenant_id: str
) -> None:
    await gateway.execute(SELECT_PROVIDER, tenantId=tenant_id, provider="EPIC")

    skipped = await gateway.execute(SKIP_THE_EHR_BLOCK, tenantId=tenant_id, skip=True)
    kept = await gateway.execute(SKIP_THE_EHR_BLOCK, tenantId=tenant_id)

    assert "ehr" not in skipped["integrationSettings"]
    assert kept["integrationSettings"]["ehr"] == {"__typename": "EpicSettings"}
