"""An Epic customer's own values, saved through the API and read back as typed: the Interconnect
FHIR base, Epic's client id and user id type, the organisation's OIDs, the JKU, issuer and token
endpoint of its instance; and what readiness says of that configuration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway
from tests.documents import (
    EXPORT_SETTINGS,
    GENERATE_SIGNING_KEY,
    UPDATE_EHR,
    UPDATE_FHIR,
    UPDATE_HEADERS,
    UPDATE_OAUTH,
)
from tests.ehr.customer_values import (
    CERNER_FHIR_BASE_URL,
    EPIC_CLIENT_ID,
    EPIC_EHR,
    EPIC_FHIR,
    EPIC_FHIR_BASE_URL,
    EPIC_HEADERS,
    EPIC_INSTANCE,
    EPIC_ISSUER,
    EPIC_JKU,
    EPIC_OAUTH,
    SOAP_PASSWORD,
    connect,
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

EPIC_JKU_OVER_HTTP = (
    "http://fhir.example-health.org/interconnect-aocurprd-oauth/api/epic/2019/Security/Open/"
    "PublicKeys/530027/OIDC"
)
# An instance on a name that never resolves, so the connection test answers without calling out.
UNRESOLVABLE_INSTANCE = "https://fhir.example-health.invalid/interconnect-aocurprd-oauth"

TEST_CONNECTION = """
mutation TestConnection($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    __typename
    ... on GatewayConnectionTest { url ok }
  }
}
"""
DISCOVER_JKU_ERRORS = """
mutation DiscoverJkuErrors($tenantId: ID!) {
  discoverJku(tenantId: $tenantId) {
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
IMPORT_SETTINGS = """
mutation ImportSettings($tenantId: ID!, $exported: JSON!) {
  importSettings(tenantId: $tenantId, document: $exported) {
    __typename
    ... on ValidationFailed { errors { path code message } }
  }
}
"""
TEST_CONNECTION_FAILURE = """
mutation TestConnectionFailure($tenantId: ID!) {
  testExternalGatewayConnection(tenantId: $tenantId) {
    ... on GatewayConnectionTest { url failure { code } }
  }
}
"""


async def _configure_epic(gateway: Gateway, tenant_id: str) -> dict[str, Any]:
    """Every block of an Epic tenant, saved as its engineer fills the page in; the settings last
    stored."""
    await connected(gateway, tenant_id, "EPIC", EPIC_FHIR_BASE_URL)
    await saved_block(gateway, tenant_id, UPDATE_HEADERS, "epic", EPIC_HEADERS)
    await saved_block(gateway, tenant_id, UPDATE_FHIR, "epic", EPIC_FHIR)
    ehr = {**EPIC_EHR, "soapPassword": SOAP_PASSWORD}
    await saved_block(gateway, tenant_id, UPDATE_EHR, "epic", ehr)
    return await saved_block(gateway, tenant_id, UPDATE_OAUTH, "epic", EPIC_OAUTH)


async def test_every_epic_block_is_saved_and_read_back_as_the_engineer_typed_it(
    gateway: Gateway, tenant_id: str
) -> None:
    await _configure_epic(gateway, tenant_id)

    settings = await read(gateway, tenant_id)

    assert settings["externalGateway"]["baseUrl"] == EPIC_FHIR_BASE_URL
    assert {key: settings["headers"][key] for key in EPIC_HEADERS} == EPIC_HEADERS
    assert {key: settings["fhir"][key] for key in EPIC_FHIR} == EPIC_FHIR
    assert {key: settings["ehr"][key] for key in EPIC_EHR} == EPIC_EHR
    assert settings["ehr"]["soapPassword"]["isSet"] is True
    assert {key: settings["oauth"][key] for key in EPIC_OAUTH} == EPIC_OAUTH


async def test_a_complete_epic_configuration_lacks_only_what_the_gateway_must_fetch_or_make(
    gateway: Gateway, tenant_id: str
) -> None:
    """Every setting typed in: what is left is the key set (discovered from Epic's JKU, which
    this test cannot reach) and, with OAuth on, a signing key, until one is generated."""
    await _configure_epic(gateway, tenant_id)

    before = await readiness(gateway, tenant_id)
    await gateway.execute(GENERATE_SIGNING_KEY, tenantId=tenant_id)
    after = await readiness(gateway, tenant_id)

    assert before["ready"] is False
    assert missing_paths(before) == [("jkuKeySet",), ("oauthSigningKeys",)]
    assert missing_paths(after) == [("jkuKeySet",)]
    # The header and OAuth client ids are Epic's one client: no mismatch, nothing inert.
    assert warning_codes(after) == []


async def test_without_the_epic_headers_readiness_names_each_missing_one(
    gateway: Gateway, tenant_id: str
) -> None:
    """An engineer who has the FHIR and Epic blocks from the go-live sheet but not yet the
    web-service user: readiness says which headers are missing, and nothing else is invented."""
    await connected(gateway, tenant_id, "EPIC", EPIC_FHIR_BASE_URL)
    await saved_block(gateway, tenant_id, UPDATE_FHIR, "epic", EPIC_FHIR)
    ehr = {"context": "Scheduling", "jkuServerUrl": EPIC_EHR["jkuServerUrl"]}
    await saved_block(gateway, tenant_id, UPDATE_EHR, "epic", ehr)
    await saved_block(gateway, tenant_id, UPDATE_HEADERS, "epic", {"epicClientId": EPIC_CLIENT_ID})

    found = await readiness(gateway, tenant_id)

    assert missing_paths(found)[:2] == [("headers", "epicUserId"), ("headers", "epicUserIdType")]
    assert ("fhir", "mrnIdentifier") not in missing_paths(found)


# Base URLs of the shapes customers have: each is stored and shown as typed.
BASE_URLS = [
    pytest.param(EPIC_FHIR_BASE_URL, id="interconnect-trailing-slash"),
    pytest.param(
        "HTTPS://FHIR.EXAMPLE-HEALTH.ORG/Interconnect-FHIR-PRD/api/FHIR/R4/",
        id="upper-case-scheme-and-host",  # pasted from an all-caps go-live sheet
    ),
    pytest.param(
        "https://epicproxy.example-health.org:8443/Interconnect-PRD-FHIR/api/FHIR/R4/",
        id="port",  # an Epic proxy on a non-default port
    ),
    pytest.param("https://fhir.example-health.org:443/api/FHIR/R4", id="default-port-written"),
    pytest.param(
        "https://fhir.universitätsklinikum-beispiel.de/interconnect-prd/api/FHIR/R4/",
        id="idn-host",  # a German university hospital's own domain
    ),
    pytest.param(
        "https://krankenhaus-münchen.de/interconnect-prd/api/FHIR/R4/",
        id="idn-first-label",
    ),
    pytest.param(
        "https://fhir.xn--universittsklinikum-beispiel-enc.de/interconnect-prd/api/FHIR/R4/",
        id="idn-host-as-a-labels",  # the same host as a DNS console shows it
    ),
    pytest.param(
        "https://xn--hpital-exemple-0ob.fr/interconnect-prd/api/FHIR/R4/",
        id="idn-first-label-as-a-labels",
    ),
    pytest.param(
        "https://[2001:db8:10::25]:8443/interconnect-prd/api/FHIR/R4/",
        id="ipv6-literal",  # a site-to-site VPN endpoint without DNS
    ),
    pytest.param(
        "https://ehr.example-health.org/Interconnect%20PRD/api/FHIR/R4/",
        id="percent-encoded-path",  # an IIS virtual directory with a space
    ),
    pytest.param(CERNER_FHIR_BASE_URL, id="cerner-tenant-path"),
    pytest.param(
        "https://fhir.example-health.org/" + "segment/" * 250 + "api/FHIR/R4/",
        id="long-but-legal",
    ),
]


@pytest.mark.parametrize("base_url", BASE_URLS)
async def test_an_external_gateway_base_url_is_stored_as_typed(
    gateway: Gateway, tenant_id: str, base_url: str
) -> None:
    assert len(base_url) <= 2048
    await select(gateway, tenant_id, "EPIC")

    stored = await connect(gateway, tenant_id, base_url)

    assert stored["externalGateway"]["baseUrl"] == base_url
    assert (await read(gateway, tenant_id))["externalGateway"]["baseUrl"] == base_url


@pytest.mark.parametrize(
    ("field", "url"),
    [
        pytest.param(
            "jkuServerUrl",
            "https://fhir.universitätsklinikum-beispiel.de/interconnect-prd/api/epic/2019/"
            "Security/Open/PublicKeys/530027/OIDC",
            id="jku",
        ),
        pytest.param(
            "jwtIssuerUrl",
            "https://fhir.universitätsklinikum-beispiel.de/interconnect-prd/oauth2",
            id="issuer",
        ),
    ],
)
async def test_an_epic_instance_on_an_idn_host_keeps_its_jku_and_issuer(
    gateway: Gateway, tenant_id: str, field: str, url: str
) -> None:
    await select(gateway, tenant_id, "EPIC")

    stored = await saved_block(gateway, tenant_id, UPDATE_EHR, "epic", {field: url})

    assert stored["ehr"][field] == url


async def test_a_token_url_on_an_idn_host_is_saved(gateway: Gateway, tenant_id: str) -> None:
    url = "https://fhir.universitätsklinikum-beispiel.de/interconnect-prd/oauth2/token"
    await select(gateway, tenant_id, "EPIC")

    stored = await saved_block(gateway, tenant_id, UPDATE_OAUTH, "epic", {"oauthTokenUrl": url})

    assert stored["oauth"]["oauthTokenUrl"] == url


async def test_a_plain_http_token_url_is_refused_at_its_field(
    gateway: Gateway, tenant_id: str
) -> None:
    """Epic serves its token endpoint over TLS only: an http:// one could never work."""
    await select(gateway, tenant_id, "EPIC")

    result = await save_block(
        gateway,
        tenant_id,
        UPDATE_OAUTH,
        "epic",
        {"oauthTokenUrl": "http://fhir.example-health.org/oauth2/token"},
    )

    assert refusal(result) == [(("input", "epic", "oauthTokenUrl"), "INVALID_URL")]
    assert "https" in result["errors"][0]["message"]


async def test_a_plain_http_jku_is_refused_when_saved(gateway: Gateway, tenant_id: str) -> None:
    """Every outbound call is https only, so a key set at an http:// URL could never be
    discovered and no JWT of Epic's ever verified: refused at the field where the mistake is,
    with the code and words discoverJku would answer later, and nothing stored."""
    await select(gateway, tenant_id, "EPIC")
    before = await read(gateway, tenant_id)

    result = await save_block(
        gateway, tenant_id, UPDATE_EHR, "epic", {"jkuServerUrl": EPIC_JKU_OVER_HTTP}
    )

    assert refusal(result) == [(("input", "epic", "jkuServerUrl"), "INSECURE_URL")]
    assert "only https:// URLs are called" in result["errors"][0]["message"]
    assert "jkuServerUrl" in result["errors"][0]["message"]
    assert await read(gateway, tenant_id) == before


async def test_a_plain_http_jku_is_saved_where_the_deployment_calls_plain_http(
    local_gateway: Gateway, tenant_id: str
) -> None:
    """A deployment that allows plain http for outbound calls (EHRGW_ALLOW_INSECURE_HTTP, a
    test bench) can fetch such a key set, so it may save one."""
    await select(local_gateway, tenant_id, "EPIC")

    stored = await saved_block(
        local_gateway, tenant_id, UPDATE_EHR, "epic", {"jkuServerUrl": EPIC_JKU_OVER_HTTP}
    )

    assert stored["ehr"]["jkuServerUrl"] == EPIC_JKU_OVER_HTTP


@pytest.mark.parametrize(
    ("prefix", "called"),
    [
        pytest.param(
            None, f"{UNRESOLVABLE_INSTANCE}/api/FHIR/R4/metadata", id="base-has-the-fhir-path"
        ),
        pytest.param(
            "/api/FHIR/R4/", f"{UNRESOLVABLE_INSTANCE}/api/FHIR/R4/metadata", id="prefix-has-it"
        ),
    ],
)
async def test_the_fhir_url_is_the_instance_and_the_fhir_path_whichever_holds_the_path(
    gateway: Gateway, tenant_id: str, prefix: str | None, called: str
) -> None:
    """Customers split Epic's base two ways: the whole FHIR base in the connection, or the
    instance there and api/FHIR/R4 as the url prefix; both call the same metadata URL."""
    await select(gateway, tenant_id, "EPIC")
    base_url = f"{UNRESOLVABLE_INSTANCE}/" + ("api/FHIR/R4/" if prefix is None else "")
    await connect(gateway, tenant_id, base_url)
    if prefix is not None:
        await saved_block(gateway, tenant_id, UPDATE_FHIR, "epic", {"urlPrefix": prefix})

    data = await gateway.execute(TEST_CONNECTION, tenantId=tenant_id)

    assert data["testExternalGatewayConnection"]["url"] == called


async def test_an_upper_case_urn_prefix_is_refused_or_stored_as_fhir_compares_it(
    gateway: Gateway, tenant_id: str
) -> None:
    """FHIR compares Identifier.system values as exact strings, and every EHR sends
    urn:oid: in lower case: an MRN system saved as URN:OID:... never matches a patient's
    identifier. Either answer is fine for an engineer; storing it as typed is not."""
    typed = "URN:OID:1.2.840.114350.1.13.861.1.7.5.737384.14"
    await select(gateway, tenant_id, "EPIC")

    result = await save_block(gateway, tenant_id, UPDATE_FHIR, "epic", {"mrnIdentifier": typed})

    if result["__typename"] == "ValidationFailed":
        assert refusal(result) == [(("input", "epic", "mrnIdentifier"), "INVALID_URN")]
    else:
        assert result["settings"]["fhir"]["mrnIdentifier"] == typed.replace("URN:OID:", "urn:oid:")


async def test_surrounding_spaces_pasted_with_a_value_are_dropped_and_nothing_else_changes(
    gateway: Gateway, tenant_id: str
) -> None:
    """Values copied out of a spreadsheet carry spaces at their ends; inside, case and spaces
    are the customer's."""
    await select(gateway, tenant_id, "EPIC")

    stored = await saved_block(
        gateway,
        tenant_id,
        UPDATE_EHR,
        "epic",
        {"context": "  Scheduling ", "phoneSystemType": "Cisco  UCCE"},
    )

    assert (stored["ehr"]["context"], stored["ehr"]["phoneSystemType"]) == (
        "Scheduling",
        "Cisco  UCCE",
    )


@pytest.mark.parametrize(
    ("base_url", "called"),
    [
        pytest.param(
            "https://fhir.universitätsklinikum-beispiel.invalid/api/FHIR/R4/",
            "https://fhir.universitätsklinikum-beispiel.invalid/api/FHIR/R4/metadata",
            id="idn-host",
        ),
        pytest.param(
            "HTTPS://FHIR.EXAMPLE-HEALTH.INVALID/Interconnect-FHIR-PRD/api/FHIR/R4/",
            "HTTPS://FHIR.EXAMPLE-HEALTH.INVALID/Interconnect-FHIR-PRD/api/FHIR/R4/metadata",
            id="upper-case-scheme",
        ),
        pytest.param(
            "https://ehr.example-health.invalid:8443/Interconnect%20PRD/api/FHIR/R4",
            "https://ehr.example-health.invalid:8443/Interconnect%20PRD/api/FHIR/R4/metadata",
            id="port-and-percent-encoded-path",
        ),
    ],
)
async def test_a_base_url_of_a_real_shape_is_called_as_saved(
    gateway: Gateway, tenant_id: str, base_url: str, called: str
) -> None:
    """The connection test gets as far as resolving the host (.invalid never resolves): the
    outbound client took the URL as saved, with no INVALID_URL or INSECURE_URL on the way."""
    await connected(gateway, tenant_id, "EPIC", base_url)

    data = await gateway.execute(TEST_CONNECTION_FAILURE, tenantId=tenant_id)

    assert data["testExternalGatewayConnection"] == {
        "url": called,
        "failure": {"code": "UNREACHABLE"},
    }


async def test_a_sandbox_configuration_promoted_to_production_keeps_every_value(
    gateway: Gateway, tenant_id: str
) -> None:
    """The usual go-live: the non-production tenant's settings exported and imported into the
    production tenant, which keeps its own secrets and ids."""
    await _configure_epic(gateway, tenant_id)
    exported = await gateway.execute(EXPORT_SETTINGS, tenantId=tenant_id)
    production = f"{tenant_id}-prd"
    await select(gateway, production, "EPIC")

    imported = await gateway.execute(
        IMPORT_SETTINGS, tenantId=production, exported=exported["exportSettings"]
    )
    source, promoted = await read(gateway, tenant_id), await read(gateway, production)

    assert imported["importSettings"]["__typename"] == "SettingsSaved", imported
    for block in ("headers", "fhir", "oauth"):
        assert promoted[block] == source[block]
    assert {key: promoted["ehr"][key] for key in EPIC_EHR} == EPIC_EHR
    assert promoted["externalGateway"]["baseUrl"] == EPIC_FHIR_BASE_URL


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        pytest.param(f"{EPIC_INSTANCE}/", None, id="instance-root-no-prefix"),
        # The spec's own example prefix, /FHIR/R4, under an Epic instance: Epic serves FHIR
        # under api/FHIR/R4, so every call lands on .../interconnect-.../FHIR/R4/... and fails.
        pytest.param(f"{EPIC_INSTANCE}/", "/FHIR/R4", id="spec-example-prefix"),
        pytest.param(EPIC_FHIR_BASE_URL, "/api/FHIR/R4", id="fhir-path-twice"),
    ],
)
async def test_an_epic_fhir_url_without_epics_fhir_path_is_flagged_by_readiness(
    gateway: Gateway, tenant_id: str, base_url: str, prefix: str | None
) -> None:
    """Readiness cannot call Epic, but it can see that base URL + url prefix does not end in
    Epic's api/FHIR/<version>: a warning at the connection or the prefix tells the engineer
    before the first patient lookup fails."""
    await connected(gateway, tenant_id, "EPIC", base_url)
    if prefix is not None:
        await saved_block(gateway, tenant_id, UPDATE_FHIR, "epic", {"urlPrefix": prefix})

    found = await readiness(gateway, tenant_id)

    flagged = {path for path, _ in warning_codes(found)}
    assert flagged & {("externalGateway", "baseUrl"), ("fhir", "urlPrefix")}, found["warnings"]


async def test_a_slot_search_total_below_the_per_search_default_names_both_fields(
    gateway: Gateway, tenant_id: str
) -> None:
    """A practice that allows 14 days in all, set without touching the per-search maximum
    (default 30): refused at the field sent, and the message names the other one."""
    await select(gateway, tenant_id, "EPIC")

    result = await save_block(
        gateway, tenant_id, UPDATE_EHR, "epic", {"maxAllowedSlotSearchDateRangeDays": 14}
    )

    assert refusal(result) == [
        (("input", "epic", "maxAllowedSlotSearchDateRangeDays"), "SLOT_SEARCH_RANGE_EXCEEDS_TOTAL")
    ]
    assert "epicMaximumSlotSearchDateRangeInDays" in result["errors"][0]["message"]


async def test_a_plain_http_jku_stored_before_the_rule_is_read_and_never_called(
    local_gateway: Gateway, gateway: Gateway, tenant_id: str
) -> None:
    """An http:// JKU saved before it was refused (here by a deployment that allowed plain
    http, on the same database) stays readable, so the tenant's settings load and the URL can
    be replaced; discoverJku still refuses to call it, at the JKU Server URL, and readiness
    keeps the key set missing."""
    await select(local_gateway, tenant_id, "EPIC")
    await saved_block(
        local_gateway,
        tenant_id,
        UPDATE_EHR,
        "epic",
        {"jkuServerUrl": EPIC_JKU_OVER_HTTP, "jwtIssuerUrl": EPIC_ISSUER},
    )

    settings = await read(gateway, tenant_id)
    data = await gateway.execute(DISCOVER_JKU_ERRORS, tenantId=tenant_id)
    found = await readiness(gateway, tenant_id)
    replaced = await saved_block(gateway, tenant_id, UPDATE_EHR, "epic", {"jkuServerUrl": EPIC_JKU})

    assert settings["ehr"]["jkuServerUrl"] == EPIC_JKU_OVER_HTTP
    assert data["discoverJku"]["errors"] == [
        {
            "path": ["jkuServerUrl"],
            "code": "INSECURE_URL",
            "message": "only https:// URLs are called",
        }
    ]
    assert ("jkuKeySet",) in missing_paths(found)
    assert replaced["ehr"]["jkuServerUrl"] == EPIC_JKU
