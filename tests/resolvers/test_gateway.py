"""resolvers/gateway.py called directly (its ``test_external_gateway_connection`` under another
name, which pytest would take for a test): the external gateway connection, its generated id, its
rotation, the id lookup, and the connection test against an EHR on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ehr_gateway.ehr.capability import Capability
from ehr_gateway.ehr.common import EhrProvider, ExternalGateway, SettingsBlock
from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.gateway import (
    GATEWAY_ID,
    ConnectionTest,
    create_external_gateway,
    regenerate_external_gateway_id,
    resolve_external_gateway,
)
from ehr_gateway.resolvers.gateway import check_connection as connection_test
from ehr_gateway.resolvers.settings import get_settings, select_provider, update_block
from ehr_gateway.runtime.access import Role
from tests.resolvers.conftest import PUBLIC_BASE_URL, as_caller
from tests.resolvers.helpers import failed, saved
from tests.servers import serve_on_loopback

CONNECTION: dict[str, Any] = {
    "name": "Cerner production",
    "baseUrl": "https://cerner.example.test/r4",
    "environment": "PRODUCTION",
}


async def gateway_of(context: Context, tenant_id: str, provider: EhrProvider) -> ExternalGateway:
    settings = await get_settings(context, tenant_id)
    assert settings is not None
    gateway = settings.provider_settings(provider).external_gateway
    assert gateway is not None
    return gateway


async def test_the_first_save_generates_the_id_and_later_saves_keep_it(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.CERNER, 0))
    assert saved(await create_external_gateway(context, tenant_id, CONNECTION, 1)) == 2
    first = await gateway_of(context, tenant_id, EhrProvider.CERNER)
    assert GATEWAY_ID.fullmatch(first.external_gateway_id)
    assert first.base_path_url == f"{PUBLIC_BASE_URL}/gateways/{first.external_gateway_id}"

    renamed = {**CONNECTION, "name": "Cerner (renamed)"}
    assert saved(await create_external_gateway(context, tenant_id, renamed, 2)) == 3
    second = await gateway_of(context, tenant_id, EhrProvider.CERNER)
    assert second.name == "Cerner (renamed)"
    assert (second.external_gateway_id, second.created_at) == (
        first.external_gateway_id, first.created_at,
    )  # fmt: skip


async def test_a_refused_connection_is_reported_under_connection(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.CERNER, 0))
    outcome = await create_external_gateway(
        context, tenant_id, {**CONNECTION, "baseUrl": "ftp://cerner.example.test"}, 1
    )
    assert failed(outcome) == [(("connection", "baseUrl"), "INVALID_URL")]
    no_provider = await create_external_gateway(context, f"{tenant_id}-new", CONNECTION, None)
    assert failed(no_provider) == [(("provider",), "PROVIDER_NOT_SELECTED")]


async def test_a_new_id_replaces_the_old_which_resolves_no_more(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.ATHENA, 0))
    saved(await create_external_gateway(context, tenant_id, CONNECTION, 1))
    old = await gateway_of(context, tenant_id, EhrProvider.ATHENA)
    assert await resolve_external_gateway(context, old.external_gateway_id) == (
        tenant_id, EhrProvider.ATHENA,
    )  # fmt: skip

    assert saved(await regenerate_external_gateway_id(context, tenant_id, 2)) == 3

    new = await gateway_of(context, tenant_id, EhrProvider.ATHENA)
    assert new.external_gateway_id != old.external_gateway_id
    assert new.base_url == old.base_url
    assert await resolve_external_gateway(context, old.external_gateway_id) is None
    assert await resolve_external_gateway(context, new.external_gateway_id) is not None


async def test_an_id_is_unknown_to_a_caller_of_another_tenant(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.ATHENA, 0))
    saved(await create_external_gateway(context, tenant_id, CONNECTION, 1))
    gateway = await gateway_of(context, tenant_id, EhrProvider.ATHENA)
    stranger = as_caller(context, [Role.VIEWER], ["tenant-elsewhere"])
    assert await resolve_external_gateway(stranger, gateway.external_gateway_id) is None
    assert await resolve_external_gateway(context, "not an id \ud800") is None


async def test_there_is_no_id_to_regenerate_before_a_connection(
    context: Context, tenant_id: str
) -> None:
    saved(await select_provider(context, tenant_id, EhrProvider.ATHENA, 0))
    assert failed(await regenerate_external_gateway_id(context, tenant_id, None)) == [
        (("externalGateway",), "NOT_CONFIGURED")
    ]


# --- The connection test, against a FHIR server on loopback -------------------------------------


def fhir_server(requested: list[str]) -> Starlette:
    async def metadata(request: Request) -> Response:
        requested.append(request.url.path)
        return JSONResponse(
            {
                "resourceType": "CapabilityStatement",
                "fhirVersion": "4.0.1",
                "software": {"name": "Loopback FHIR", "version": "1.0"},
            }
        )

    async def patient(request: Request) -> Response:
        return JSONResponse({"resourceType": "Patient"})

    return Starlette(
        routes=[Route("/api/FHIR/R4/metadata", metadata), Route("/plain/metadata", patient)]
    )


@pytest.fixture
async def fhir() -> AsyncIterator[tuple[str, list[str]]]:
    requested: list[str] = []
    async with serve_on_loopback(fhir_server(requested)) as url:
        yield url, requested


async def test_the_connection_test_reads_the_capability_statement_under_the_url_prefix(
    context: Context, tenant_id: str, fhir: tuple[str, list[str]]
) -> None:
    url, requested = fhir
    saved(await select_provider(context, tenant_id, EhrProvider.EPIC, 0))
    connection = {**CONNECTION, "baseUrl": f"{url}/api"}
    saved(await create_external_gateway(context, tenant_id, connection, 1))
    patch = {"urlPrefix": "/FHIR/R4"}
    saved(await update_block(context, tenant_id, SettingsBlock.FHIR, EhrProvider.EPIC, patch, 2))

    result = await connection_test(context, tenant_id)

    assert result == ConnectionTest(
        f"{url}/api/FHIR/R4/metadata", True, Capability("4.0.1", "Loopback FHIR", "1.0")
    )
    assert requested == ["/api/FHIR/R4/metadata"]


async def test_a_server_that_answers_with_no_capability_statement_is_reachable_not_fhir(
    context: Context, tenant_id: str, fhir: tuple[str, list[str]]
) -> None:
    url, _ = fhir
    saved(await select_provider(context, tenant_id, EhrProvider.ATHENA, 0))
    saved(
        await create_external_gateway(
            context, tenant_id, {**CONNECTION, "baseUrl": f"{url}/plain"}, 1
        )
    )
    result = await connection_test(context, tenant_id)
    assert isinstance(result, ConnectionTest)
    assert (result.reachable, result.failure_code) == (True, "NOT_FHIR")
    missing = await connection_test(context, tenant_id.replace("tenant", "t0"))
    assert failed(missing) == [(("tenantId",), "NOT_FOUND")]
