"""A settings write's payload completed by a compiled read plan (gql.compiled_reads: the
``settings`` of ``SettingsSaved``) answers exactly what graphql-core answers: the same bytes,
status and headers, for every caller and every outcome of a write.

Two gateway apps share one database and one signing key: one compiles (the default), the other
runs every field through graphql-core (``compiled_reads=False``), both with the response cache
off. The writes select the whole settings in their payload (tests.documents.RESULT_FIELDS). A
write that changes nothing answers the settings as they are, so the same write sent to both
apps is compared byte for byte; a write that changes something is sent to one app and then, as
a write that now changes nothing, to the other: both answers carry the same stored settings.
An idempotent retry sent to the other app answers what the first attempt answered.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ehr_gateway.gql import compiled_reads, fast_writes
from tests.conftest import Gateway, gateway_app, gateway_config
from tests.documents import UPDATE_EHR, UPDATE_FHIR, UPDATE_PATIENT_RESTRICTION
from tests.gql.test_compiled_reads import ROLES, Answer, Apps, answers, seed
from tests.gql.test_round_trip import BLOCKS


@pytest.fixture
async def apps(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Apps]:
    """Seeded for each test: the tests write."""
    data_dir = tmp_path_factory.mktemp("compiled-write-payloads")
    tenant_id = f"tenant-{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as opened:
        compiled, generic = [
            await opened.enter_async_context(
                gateway_app(
                    gateway_config(
                        database_url, data_dir, response_cache=False, compiled_reads=flag
                    )
                )
            )
            for flag in (True, False)
        ]
        seeded = await seed(compiled, tenant_id)
        apps_ = Apps(compiled, generic, seeded, seeded.tenants[0])
        tenants = seeded.tenants
        apps_.tokens = [
            compiled.token,
            *(
                compiled.as_caller(tenants=tenants, roles=[role], subject=role).token
                for role in (*ROLES, "admin")
            ),
            compiled.as_caller(tenants=["someone-else"], roles=[*ROLES, "admin"]).token,
        ]
        yield apps_


def _as(gateway: Gateway, token: str) -> Gateway:
    return Gateway(gateway.client, gateway.config, token)


def _explain(document: str, variables: dict[str, Any], got: Answer, expected: Answer) -> str:
    return f"{document.splitlines()[1]}\n{json.dumps(variables)}\n{got!r}\n{expected!r}"


async def same_answers(apps: Apps, document: str, **variables: Any) -> list[bytes]:
    """The write sent to the compiled app and then to the generic one, as every caller; fails
    unless each pair of answers is the same. The answers' bodies."""
    bodies = []
    for token in apps.tokens:
        got = await answers(_as(apps.compiled, token), (document, variables))
        expected = await answers(_as(apps.generic, token), (document, variables))
        assert got == expected, _explain(document, variables, got, expected)
        bodies.append(got[1])
    return bodies


def _compiled() -> int:
    """Payloads completed by a compiled plan so far: in graphql-core's execution, or as a whole
    request by the fast path for writes (gql.fast_writes)."""
    return compiled_reads.outcomes["compiled"] + fast_writes.outcomes["answered"]


async def test_writes_that_change_nothing_answer_the_same_bytes(apps: Apps) -> None:
    before = _compiled()
    for provider, blocks in BLOCKS.items():
        tenant = f"{apps.epic.rsplit('-', 1)[0]}-{provider.lower()}"
        for _, document, fields in blocks:
            bodies = await same_answers(
                apps, document, tenantId=tenant, input={provider.lower(): fields}
            )
            assert b'"SettingsSaved"' in bodies[0], bodies[0]
            assert any(b'"FORBIDDEN"' in body for body in bodies), bodies
    # The payloads compared were completed by plans, not only by graphql-core.
    assert _compiled() > before, (compiled_reads.outcomes, fast_writes.outcomes)


async def test_writes_that_store_answer_what_the_stored_settings_answer(apps: Apps) -> None:
    """Stored by one app; the same write, then changing nothing, sent to the other."""
    staff = apps.compiled.token
    for round_, (first, second) in enumerate(
        [(apps.compiled, apps.generic), (apps.generic, apps.compiled)] * 2
    ):
        for tenant in apps.seeded.tenants[:4]:
            expression = f"age < {20 + round_}"
            variables = {"tenantId": tenant, "expression": expression}
            request = (UPDATE_PATIENT_RESTRICTION, variables)
            stored = await answers(_as(first, staff), request)
            again = await answers(_as(second, staff), request)
            assert stored == again, _explain(UPDATE_PATIENT_RESTRICTION, variables, stored, again)
            settings = json.loads(stored[1])["data"]["updatePatientRestriction"]["settings"]
            assert settings["patientRestriction"]["expression"] == expression
        context_write = {"tenantId": apps.epic, "input": {"epic": {"context": f"c-{round_}"}}}
        stored = await answers(_as(first, staff), (UPDATE_EHR, context_write))
        again = await answers(_as(second, staff), (UPDATE_EHR, context_write))
        assert stored == again, _explain(UPDATE_EHR, context_write, stored, again)
        assert json.loads(stored[1])["data"]["updateEhrSettings"]["settings"]["version"] > 1


async def test_refused_writes_answer_the_same_bytes(apps: Apps) -> None:
    """Invalid values, a version other than the stored one, a block of another EHR, a
    malformed idempotency key, variables that do not coerce."""
    tenant = apps.epic
    epic_fhir = {"epic": {"ssnIdentifier": "not an urn"}}
    for variables in (
        {"tenantId": tenant, "input": epic_fhir},
        {"tenantId": tenant, "input": {"epic": {"urlPrefix": "/r4"}}, "expectedVersion": 1},
        {"tenantId": tenant, "input": {"athena": {"urlPrefix": "/r4"}}},
        {"tenantId": tenant, "input": {"epic": {"urlPrefix": "x"}, "athena": {}}},
        {"tenantId": tenant, "input": {"epic": {"useBatch": "yes"}}},
        {"tenantId": tenant, "input": epic_fhir, "expectedVersion": "one"},
    ):
        bodies = await same_answers(apps, UPDATE_FHIR, **variables)
        assert b'"SettingsSaved"' not in bodies[0], bodies[0]
    bodies = await same_answers(
        apps, UPDATE_FHIR, tenantId=tenant, input={"epic": {"urlPrefix": "/r4"}}, expectedVersion=1
    )
    assert b'"VersionConflict"' in bodies[0]


async def test_an_idempotent_retry_to_the_other_app_answers_the_same(apps: Apps) -> None:
    staff = apps.compiled.token
    pairs = [(apps.compiled, apps.generic), (apps.generic, apps.compiled)]
    for round_, (first, second) in enumerate(pairs):
        key = uuid.uuid4().hex
        document = UPDATE_EHR.replace(
            "expectedVersion: $expectedVersion)",
            f'expectedVersion: $expectedVersion, idempotencyKey: "{key}")',
        )
        variables = {"tenantId": apps.epic, "input": {"epic": {"context": f"retry-{round_}"}}}
        stored = await answers(_as(first, staff), (document, variables))
        retried = await answers(_as(second, staff), (document, variables))
        assert b'"SettingsSaved"' in stored[1], stored
        assert stored == retried, _explain(document, variables, stored, retried)
