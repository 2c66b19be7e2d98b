"""The integration actions beside their sections, used by an integrator in Chromium against a
real gateway process and real loopback servers: the EHR's FHIR endpoint for the connection test,
Epic's token endpoint (which checks the client assertion against the JWKS URL the person copied
and registered), and Epic's key server for the JKU. Outcomes are read in words; no token the
gateway was issued, and no JWT the person pasted, is ever on the page. The token exchange test
runs on the saved settings: with OAuth settings typed and not saved, it says to save them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey
from playwright.async_api import Page, expect

from tests.console.console import (
    CONNECT,
    SELECT_EPIC,
    browser,
    clipboard,
    new_page,
    save,
    setting,
    sign_in,
    token,
)
from tests.documents import SET_UP_EPIC_OAUTH
from tests.epic_issuer import AUDIENCE, serve_issuer
from tests.gql.test_external_gateway import FHIR_SERVER
from tests.gql.test_oauth import TOKEN, TokenEndpoint, serve_token_endpoint
from tests.processes import GatewayProcess
from tests.servers import serve_on_loopback

STORED_GATEWAY = """
query Gateway($tenantId: ID!) {
  integrationSettings(tenantId: $tenantId) {
    version externalGateway { externalGatewayId basePathUrl } oauthJwksUrl
  }
}
"""
TRUST_EPIC = """
mutation TrustEpic($tenantId: ID!, $input: EhrSettingsInput!) {
  updateEhrSettings(tenantId: $tenantId, input: $input) { __typename }
}
"""
RESTRICT = """
mutation Restrict($tenantId: ID!) {
  updatePatientRestriction(tenantId: $tenantId, expression: "age < 18") { __typename }
}
"""


async def _stored(gateway: GatewayProcess, tenant: str) -> dict[str, Any]:
    settings: dict[str, Any] = (await gateway.call(STORED_GATEWAY, tenantId=tenant))[
        "integrationSettings"
    ]
    return settings


@pytest.fixture
async def token_endpoint() -> AsyncIterator[TokenEndpoint]:
    async with serve_token_endpoint() as endpoint:
        yield endpoint


async def _as_integrator(page: Page, gateway: GatewayProcess, tenant: str) -> None:
    integrator = token(gateway, tenant=tenant, roles=("integrator",), subject="ines")
    await sign_in(page, gateway, integrator, tenant=None)


async def test_create_the_external_gateway_copy_its_urls_and_test_the_connection(
    loopback_gateway: GatewayProcess,
) -> None:
    await loopback_gateway.call(SELECT_EPIC, tenantId="acts-gateway")
    async with serve_on_loopback(FHIR_SERVER) as fhir, browser() as chromium:
        _, page = await new_page(chromium, permissions=["clipboard-read", "clipboard-write"])
        await _as_integrator(page, loopback_gateway, "acts-gateway")
        region = page.get_by_role("region", name="External Gateway", exact=True)
        await expect(region.get_by_text("None yet: saving this section creates")).to_be_visible()

        await setting(page, "External Gateway", "A name for the connection").fill("Epic")
        await setting(page, "External Gateway", "The EHR's API base URL").fill(
            f"{fhir}/api/FHIR/R4"
        )
        await setting(
            page, "External Gateway", "Whether the EHR environment is production or non-production"
        ).select_option("NON_PRODUCTION")
        await save(page, "External Gateway")
        stored = (await _stored(loopback_gateway, "acts-gateway"))["externalGateway"]

        await region.get_by_role("button", name="Copy the external gateway id").click()
        await expect(region.get_by_text("Copied the external gateway id.")).to_be_visible()
        assert await clipboard(page) == stored["externalGatewayId"]
        await region.get_by_role("button", name="Copy the base path URL").click()
        await expect(region.get_by_text("Copied the base path URL.")).to_be_visible()
        assert await clipboard(page) == stored["basePathUrl"]

        await region.get_by_role("button", name="Test the connection").click()
        await expect(region.get_by_text("Connected:")).to_have_text(
            "Connected: the EHR answered with a FHIR 4.0.1 CapabilityStatement from Loopback "
            f"EHR 2.5 (called {fhir}/api/FHIR/R4/metadata)."
        )
        # An EHR that does not answer with FHIR: the outcome says so, in words.
        await setting(page, "External Gateway", "The EHR's API base URL").fill(f"{fhir}/html")
        await save(page, "External Gateway")
        await region.get_by_role("button", name="Test the connection").click()
        await expect(region.get_by_text("Not connected:")).to_contain_text(
            f"(called {fhir}/html/metadata)."
        )

        # A new id (the old one revoked), after a confirmation; the page shows the new version.
        regenerate = region.get_by_role("button", name="Regenerate the external gateway id")
        await regenerate.click()
        # Asked first, the keyboard on the safe choice; keeping the id changes nothing.
        await expect(region.get_by_role("button", name="Keep the current id")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(regenerate).to_be_focused()
        await page.keyboard.press("Enter")
        await region.get_by_role("button", name="Yes, regenerate the id").click()
        await expect(region.get_by_text("Done: version 4.")).to_be_visible()
        await expect(page.get_by_text("Version 4, last changed by ines")).to_be_visible()
        renewed = (await _stored(loopback_gateway, "acts-gateway"))["externalGateway"]
        assert renewed["externalGatewayId"] != stored["externalGatewayId"]
        await expect(region.get_by_text(renewed["basePathUrl"], exact=True)).to_be_visible()

        # On a narrow window (one column) the long URLs wrap: nothing needs scrolling sideways.
        await page.set_viewport_size({"width": 560, "height": 800})
        await expect(region.get_by_role("button", name="Copy the base path URL")).to_be_visible()
        assert await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert page.errors == []  # type: ignore[attr-defined]


async def test_generate_the_signing_key_register_its_jwks_url_and_test_the_token_exchange(
    loopback_gateway: GatewayProcess, token_endpoint: TokenEndpoint
) -> None:
    await loopback_gateway.call(
        SET_UP_EPIC_OAUTH, tenantId="acts-oauth", tokenUrl=token_endpoint.url
    )
    async with browser() as chromium:
        _, page = await new_page(chromium, permissions=["clipboard-read", "clipboard-write"])
        await _as_integrator(page, loopback_gateway, "acts-oauth")
        region = page.get_by_role("region", name="Epic OAuth Settings", exact=True)
        await expect(region.get_by_text("No signing key yet")).to_be_visible()

        await region.get_by_role("button", name="Generate a signing key").click()
        await expect(region.get_by_text("Done: version 3.")).to_be_visible()
        await expect(page.get_by_text("Version 3, last changed by ines")).to_be_visible()
        await region.get_by_role("button", name="Copy the JWKS URL to register with Epic").click()
        await expect(
            region.get_by_text("Copied the JWKS URL to register with Epic.")
        ).to_be_visible()
        jwks_url = await clipboard(page)
        assert jwks_url == (await _stored(loopback_gateway, "acts-oauth"))["oauthJwksUrl"]

        # Before the JWKS URL is registered with Epic, Epic refuses the client's assertion.
        test = region.get_by_role("button", name="Test the token exchange")
        await test.click()
        await expect(region.get_by_text("Refused (HTTP 401)")).to_have_text(
            "Refused (HTTP 401): the token URL did not accept the client's signed assertion "
            "(is the JWKS URL registered with Epic for this Epic Client ID?)."
        )
        token_endpoint.jwks_url = jwks_url  # registered: what the person pasted into Epic
        await test.click()
        await expect(region.get_by_text("Epic issued")).to_have_text(
            "Epic issued a Bearer token for the scope system/Patient.read, valid for 3600 "
            "seconds. The token is not shown or kept."
        )
        assert TOKEN not in await page.content()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_discover_the_jku_then_verify_a_pasted_jwt_and_refuse_a_forged_one(
    loopback_gateway: GatewayProcess,
) -> None:
    async with serve_issuer() as epic, browser() as chromium:
        await loopback_gateway.call(SELECT_EPIC, tenantId="acts-jku")
        trust = {"jkuServerUrl": epic.jwks_url, "jwtIssuerUrl": epic.url, "jwtAudience": AUDIENCE}
        await loopback_gateway.call(TRUST_EPIC, tenantId="acts-jku", input={"epic": trust})
        _, page = await new_page(chromium)
        await _as_integrator(page, loopback_gateway, "acts-jku")
        region = page.get_by_role("region", name="Epic Settings", exact=True)
        await expect(region.get_by_text("No key set yet")).to_be_visible()

        await region.get_by_label("Issuer URL to discover from").fill(epic.url)
        await region.get_by_role("button", name="Discover the JKU").click()
        await expect(region.get_by_text("Done: version 3.")).to_be_visible()
        await expect(region.get_by_text(f"Keys k1 from {epic.jwks_url}")).to_be_visible()
        epic.rotate()
        await region.get_by_role("button", name="Refresh the JKU").click()
        await expect(region.get_by_text(f"Keys k1, k2 from {epic.jwks_url}")).to_be_visible()
        await expect(page.get_by_text("Version 4, last changed by ines")).to_be_visible()

        pasted = region.get_by_label("JWT to verify")
        genuine = epic.token(epic.keys[1], header={"typ": "JWT"})
        await pasted.fill(genuine)
        await region.get_by_role("button", name="Verify the JWT").click()
        await expect(region.get_by_label("Verdict of the pasted JWT").locator("dd")).to_have_text(
            ["Accepted", epic.url, "k2"]
        )
        await expect(pasted).to_have_value("")
        assert genuine not in await page.content()

        # Mallory signs with a key of her own under Epic's kid and issuer.
        mallory = RSAKey.generate_key(2048, parameters={"kid": "k2"})
        forged = epic.token(mallory, header={"typ": "JWT"})
        await pasted.fill(forged)
        await region.get_by_role("button", name="Verify the JWT").click()
        await expect(region.get_by_label("Verdict of the pasted JWT").locator("dd")).to_have_text(
            ["Refused", epic.url, "k2", "The signature does not verify."]
        )
        assert forged not in await page.content()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_evaluate_the_patient_restriction_for_two_ages(
    loopback_gateway: GatewayProcess,
) -> None:
    await loopback_gateway.call(SELECT_EPIC, tenantId="acts-restrict")
    await loopback_gateway.call(RESTRICT, tenantId="acts-restrict")
    editor = token(loopback_gateway, tenant="acts-restrict", roles=("editor",), subject="ed")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, loopback_gateway, editor, tenant=None)
        region = page.get_by_role("region", name="Patient Restriction Information Expression")
        age = region.get_by_label("Patient age")
        evaluate = region.get_by_role("button", name="Evaluate for this age")

        await age.fill("15")
        await evaluate.click()
        await expect(region.get_by_role("status").filter(has_text="aged 15")).to_have_text(
            "Refused: a patient aged 15 is restricted by the saved expression age < 18."
        )
        await age.fill("30")
        await evaluate.click()
        await expect(region.get_by_role("status").filter(has_text="aged 30")).to_have_text(
            "Allowed: a patient aged 30 is not restricted by the saved expression age < 18."
        )
        # What is not an age is refused beside the field, in words.
        await age.fill("fifteen")
        await evaluate.click()
        await expect(age).to_have_attribute("aria-invalid", "true")
        await expect(region.locator("#a-age-error")).to_have_text(
            "Type the patient's age in whole years, e.g. 15."
        )
        assert page.errors == []  # type: ignore[attr-defined]


async def test_adopt_the_jku_a_request_named_then_its_token_verifies(
    loopback_gateway: GatewayProcess,
) -> None:
    async with serve_issuer() as epic, browser() as chromium:
        # The JKU is not known yet: the JKU Server URL is a placeholder, the base path URL.
        await loopback_gateway.call(SELECT_EPIC, tenantId="acts-adopt")
        connected = await loopback_gateway.call(CONNECT, tenantId="acts-adopt")
        base_path_url = connected["createExternalGateway"]["settings"]["externalGateway"][
            "basePathUrl"
        ]
        placeholder = {"epic": {"jkuServerUrl": base_path_url}}
        await loopback_gateway.call(TRUST_EPIC, tenantId="acts-adopt", input=placeholder)
        # Epic's click-to-call request names its key set; the gateway only observes it.
        click_to_call = epic.token(
            epic.keys[0], aud=base_path_url, header={"typ": "JWT", "jku": epic.jwks_url}
        )
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                base_path_url, headers={"authorization": f"Bearer {click_to_call}"}
            )
        assert answer.status_code == 202, answer.text

        _, page = await new_page(chromium)
        await _as_integrator(page, loopback_gateway, "acts-adopt")
        region = page.get_by_role("region", name="Epic Settings", exact=True)
        await expect(
            region.get_by_text(f"{epic.jwks_url}, key k1, issuer {epic.url}, named 1 time")
        ).to_be_visible()
        await region.get_by_role("button", name=f"Adopt {epic.jwks_url}").click()
        await expect(region.get_by_text("Done: version 4.")).to_be_visible()
        await expect(region.get_by_text(f"Keys k1 from {epic.jwks_url}")).to_be_visible()
        jku = setting(page, "Epic Settings", "JKU Server URL")
        await expect(jku).to_have_value(epic.jwks_url)

        await region.get_by_label("JWT to verify").fill(click_to_call)
        await region.get_by_role("button", name="Verify the JWT").click()
        await expect(region.get_by_label("Verdict of the pasted JWT").locator("dd")).to_have_text(
            ["Accepted", epic.url, "k1"]
        )
        assert page.errors == []  # type: ignore[attr-defined]


async def test_the_token_exchange_test_with_typed_oauth_settings_says_to_save_them(
    gateway: GatewayProcess,
) -> None:
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="oauth-typed")
    integrator = token(gateway, tenant="oauth-typed", roles=("integrator",), subject="eng")
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, integrator, tenant=None)
        section = page.get_by_role("region", name="Epic OAuth Settings", exact=True)
        await setting(page, "Epic OAuth Settings", "The Epic Client ID of the OAuth client").fill(
            "a1b2c3d4-5e6f-7081-92a3-b4c5d6e7f809"
        )
        await setting(
            page, "Epic OAuth Settings", "The OAuth Token URL of Epic's authorization server"
        ).fill("https://fhir.stmarys-health.org/interconnect-fhir-oauth/oauth2/token")
        await section.get_by_role("button", name="Test the token exchange").click()
        await expect(section.get_by_text("Not tested:")).to_have_text(
            "Not tested: save the Epic OAuth Settings first; the test runs on the saved "
            "settings, not on the ones typed above."
        )
        assert page.errors == []  # type: ignore[attr-defined]
