"""An Oracle Health (Cerner) customer's own values: the Millennium tenant's FHIR base, its
code-set URLs as identifier and coding systems, the send-interactive-records coding; and what
readiness says of that configuration."""

from __future__ import annotations

from tests.conftest import Gateway
from tests.documents import UPDATE_FHIR
from tests.ehr.customer_values import (
    CERNER_FHIR,
    CERNER_FHIR_BASE_URL,
    CERNER_TENANT,
    connected,
    missing_paths,
    read,
    readiness,
    refusal,
    save_block,
    saved_block,
    select,
    warning_codes,
)


async def test_a_cerner_fhir_block_is_saved_and_read_back_as_typed(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "CERNER", CERNER_FHIR_BASE_URL)

    await saved_block(gateway, tenant_id, UPDATE_FHIR, "cerner", CERNER_FHIR)
    settings = await read(gateway, tenant_id)

    assert settings["externalGateway"]["baseUrl"] == CERNER_FHIR_BASE_URL
    assert {key: settings["fhir"][key] for key in CERNER_FHIR} == CERNER_FHIR


async def test_a_cerner_tenant_with_its_connection_and_identifiers_is_ready(
    gateway: Gateway, tenant_id: str
) -> None:
    await connected(gateway, tenant_id, "CERNER", CERNER_FHIR_BASE_URL)
    await saved_block(gateway, tenant_id, UPDATE_FHIR, "cerner", CERNER_FHIR)

    found = await readiness(gateway, tenant_id)

    assert found["ready"] is True, found
    assert warning_codes(found) == []


async def test_a_cerner_tenant_relying_on_the_ssn_default_still_needs_its_mrn_system(
    gateway: Gateway, tenant_id: str
) -> None:
    """The SSN system has a deployment default (the US SSN OID); the MRN system is the
    customer's own and has none here."""
    await connected(gateway, tenant_id, "CERNER", CERNER_FHIR_BASE_URL)
    await saved_block(gateway, tenant_id, UPDATE_FHIR, "cerner", {"useBatch": True})

    found = await readiness(gateway, tenant_id)
    states = {tuple(check["path"]): check["state"] for check in found["checks"]}

    assert missing_paths(found) == [("fhir", "mrnIdentifier")]
    assert states[("fhir", "ssnIdentifier")] == "DEFAULT"


async def test_the_tenant_id_in_a_code_set_url_keeps_its_case(
    gateway: Gateway, tenant_id: str
) -> None:
    """Cerner's code-set URLs are compared as written: an upper-case tenant id an engineer
    copied from a console is kept as it is, not lower-cased into another system."""
    system = f"https://fhir.cerner.com/{CERNER_TENANT.upper()}/codeSet/4"
    await select(gateway, tenant_id, "CERNER")

    stored = await saved_block(gateway, tenant_id, UPDATE_FHIR, "cerner", {"mrnIdentifier": system})

    assert stored["fhir"]["mrnIdentifier"] == system


async def test_a_coding_system_that_is_not_a_uri_names_its_field(
    gateway: Gateway, tenant_id: str
) -> None:
    """The spec's own example, https://fhir.cerner.com/xxxxxx, is a URL; a bare code-set number
    (what the Millennium console shows) is not, and the error says what the field takes."""
    await select(gateway, tenant_id, "CERNER")

    result = await save_block(
        gateway, tenant_id, UPDATE_FHIR, "cerner", {"systemForSendInteractiveRecords": "72"}
    )

    assert refusal(result) == [
        (("input", "cerner", "systemForSendInteractiveRecords"), "INVALID_URL")
    ]
    assert "absolute URI" in result["errors"][0]["message"]
