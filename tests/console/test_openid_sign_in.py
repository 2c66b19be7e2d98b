"""Signing in to the console behind an OpenID issuer (a real one, oauth2-mock-server on
loopback): authorization code with PKCE (S256) as a public client, the code gone from the URL,
tokens in memory only, renewed with the refresh token before they expire; a renewal the issuer
refuses is said in words and signing in again (in a popup) keeps the unsaved edits on screen.

Attacks: a sign-in without PKCE (a stolen code redeemable by whoever holds it), a code left in
the URL (history, screenshots, a shared link), tokens left in web storage for a script or the
next user of the browser, and a page that goes on sending an expired token."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Page, Route, expect

from tests.console.console import browser, new_page
from tests.console.openid_issuer import OpenIdIssuer
from tests.processes import GatewayProcess

CLIENT_ID = "ehr-gateway-console"
# Tokens live a minute: renewed after half of it, which the tests wait for.
LIFETIME_S = 60
RENEWAL_WAIT_MS = 180_000


@pytest.fixture(scope="module")
def issuer() -> Iterator[OpenIdIssuer]:
    process = OpenIdIssuer(
        client_id=CLIENT_ID, subject="oidc-ana", tenants=["oidc-acme"], roles=["editor"],
        lifetime=LIFETIME_S,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, issuer: OpenIdIssuer
) -> Iterator[GatewayProcess]:
    """A gateway trusting the issuer (the console's client id is the default)."""
    process = GatewayProcess(tmp_path_factory.mktemp("openid"), EHRGW_AUTH_ISSUER=issuer.url)
    try:
        yield process
    finally:
        process.stop()


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def bearers(page: Page) -> list[str]:
    """The Authorization header of each GraphQL request the page sends, from now on."""
    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.headers.get("authorization", ""))
            if request.url.endswith("/graphql")
            else None
        ),
    )
    return sent


@asynccontextmanager
async def browsing(
    issuer: OpenIdIssuer, tenant: str, *, refuse_refresh: bool
) -> AsyncIterator[Page]:
    """A browser page; the issuer's next tokens name ``tenant``."""
    issuer.tell(tenants=[tenant], refuseRefresh=refuse_refresh)
    async with browser() as chromium:
        _, page = await new_page(chromium)
        yield page


async def sign_in_through_issuer(page: Page, gateway: GatewayProcess) -> None:
    await page.goto(gateway.url + "/console")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Provider Settings")).to_be_visible()


async def renewed(page: Page) -> bool:
    """Waits for the page's next renewal with the refresh token: whether the issuer granted it."""
    async with page.expect_response(
        lambda response: (
            response.url.endswith("/token")
            and "grant_type=refresh_token" in (response.request.post_data or "")
        ),
        timeout=RENEWAL_WAIT_MS,
    ) as renewal:
        pass
    return (await renewal.value).ok


async def save_epic(page: Page) -> None:
    """Chooses Epic and saves it: the tenant's first version, saved with the token held now."""
    await page.get_by_label("EHR provider").select_option("EPIC")
    await page.get_by_role("button", name="Save Provider Settings").click()
    await expect(page.get_by_text("Saved: version 1.")).to_be_visible()


async def test_sign_in_with_pkce_and_renewal_before_expiry(
    issuer: OpenIdIssuer, gateway: GatewayProcess
) -> None:
    async with browsing(issuer, "oidc-acme", refuse_refresh=False) as page:
        sent = bearers(page)
        opened = await page.goto(gateway.url + "/console")
        assert opened is not None
        # The page may talk to the issuer, and to no other host.
        policy = opened.headers["content-security-policy"]
        host = f"127.0.0.1:{gateway.port}"
        assert f"connect-src 'self' ws://{host} wss://{host} {issuer.url}" in policy
        assert "form-action 'none'" in policy

        await sign_in_through_issuer(page, gateway)
        await expect(page.get_by_text("Signed in as oidc-ana")).to_be_visible()
        await expect(
            page.get_by_text("No settings yet: start by choosing the EHR.")
        ).to_be_visible()

        # The authorization request carried a S256 challenge, a state and a nonce, and came
        # back to the console itself; the code was redeemed with the verifier, and no secret.
        authorize = issuer.requests("authorize")[-1]
        assert authorize["code_challenge_method"] == "S256"
        assert authorize["client_id"] == CLIENT_ID
        assert authorize["redirect_uri"] == gateway.url + "/console/"
        assert authorize["response_type"] == "code"
        assert len(authorize["state"]) >= 43 and len(authorize["nonce"]) >= 43
        exchange = issuer.requests("token")[-1]
        assert exchange["grant_type"] == "authorization_code"
        assert s256(exchange["code_verifier"]) == authorize["code_challenge"]
        assert "client_secret" not in exchange

        # The code is gone from the URL, and nothing is left in web storage.
        assert page.url == gateway.url + "/console/"
        assert await page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]
        first = sent[-1]

        # Before the token expires the page renews it with the refresh token, and goes on
        # with the new one.
        assert await renewed(page)
        await save_epic(page)
        assert sent[-1].startswith("Bearer ey") and sent[-1] != first
        assert await page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_refused_renewal_is_said_and_signing_in_again_keeps_the_edits(
    issuer: OpenIdIssuer, gateway: GatewayProcess
) -> None:
    async with browsing(issuer, "oidc-renew", refuse_refresh=True) as page:
        await sign_in_through_issuer(page, gateway)
        # An edit, not saved.
        await page.get_by_label("EHR provider").select_option("EPIC")

        again = page.get_by_role("region", name="Sign in again")
        await expect(again).to_be_visible(timeout=RENEWAL_WAIT_MS)
        await expect(again).to_contain_text(
            "Your sign-in could not be renewed "
            "(The sign-in service refused: the refresh token was revoked)."
        )
        await expect(again).to_contain_text("Your unsaved edits are kept")
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")

        issuer.tell(refuseRefresh=False)
        async with page.expect_popup() as popup:
            await again.get_by_role("button", name="Sign in again").click()
        # The popup hands the issuer's answer back and closes itself.
        await (await popup.value).wait_for_event("close")
        await expect(again).to_be_hidden()
        await expect(page.get_by_label("EHR provider")).to_have_value("EPIC")
        await page.get_by_role("button", name="Save Provider Settings").click()
        await expect(page.get_by_text("Saved: version 1.")).to_be_visible()
        assert await page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]
        assert page.errors == []  # type: ignore[attr-defined]


async def test_a_renewal_that_cannot_reach_the_issuer_is_tried_again(
    issuer: OpenIdIssuer, gateway: GatewayProcess
) -> None:
    """One dropped connection while renewing (a network switch) does not end the sign-in: the
    renewal is tried again after a pause. Signing out then leaves nothing in storage."""
    async with browsing(issuer, "oidc-retry", refuse_refresh=False) as page:
        dropped: list[str] = []

        async def drop_first_renewal(route: Route) -> None:
            if "grant_type=refresh_token" in (route.request.post_data or "") and not dropped:
                dropped.append(route.request.url)
                await route.abort("connectionreset")
            else:
                await route.continue_()

        await page.route(f"{issuer.url}/**", drop_first_renewal)
        await sign_in_through_issuer(page, gateway)
        assert await renewed(page) and len(dropped) == 1
        await expect(page.get_by_role("region", name="Sign in again")).to_have_count(0)
        await save_epic(page)

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        await expect(page.get_by_text("Signed in as oidc-ana")).to_have_count(0)
        assert await page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]
        assert page.errors == []  # type: ignore[attr-defined]
