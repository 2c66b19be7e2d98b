"""The admin console in Debian's Chromium against a real gateway process: signing in as a person
does (a token from ``ehr-gateway token``, pasted), found by role and label."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser import chromium
from tests.processes import GatewayProcess, environment

SELECT_EPIC = """
mutation SelectEpic($tenantId: ID!) {
  selectEhrProvider(tenantId: $tenantId, provider: EPIC) { __typename }
}
"""


def token(
    gateway: GatewayProcess,
    *,
    tenant: str,
    roles: tuple[str, ...],
    subject: str,
    ttl: int | None = None,
) -> str:
    """A token as the README says to get one: ``ehr-gateway token`` with the gateway's data dir
    (``ttl``: its lifetime in seconds)."""
    arguments = ["--tenant", tenant, "--subject", subject, "--data-dir", str(gateway.data_dir)]
    if ttl is not None:
        arguments += ["--ttl", str(ttl)]
    for role in roles:
        arguments += ["--role", role]
    done = subprocess.run(
        [sys.executable, "-m", "ehr_gateway.server.cli", "token", *arguments],
        capture_output=True,
        text=True,
        env=environment(),
        check=True,
    )
    return done.stdout.strip()


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def new_page(browser: Browser, **options: Any) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return context, page


async def paste_token(page: Page, gateway: GatewayProcess, token_text: str) -> None:
    """Open the console, paste the token and sign in."""
    await page.goto(gateway.url + "/console")
    await page.get_by_label("Token").fill(token_text)
    await page.get_by_role("button", name="Sign in").click()


async def sign_in(page: Page, gateway: GatewayProcess, token_text: str, tenant: str | None) -> None:
    """Open the console, paste the token, sign in, and open ``tenant`` (typed, for staff)."""
    await paste_token(page, gateway, token_text)
    if tenant is not None:
        await page.get_by_label("Tenant").fill(tenant)
        await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_role("heading", name="Provider Settings")).to_be_visible()


@asynccontextmanager
async def on_epic_tenant(
    gateway: GatewayProcess,
    tenant: str,
    *,
    subject: str,
    roles: tuple[str, ...] = ("editor",),
    watch: Callable[[Page], object] = lambda page: None,
) -> AsyncIterator[Page]:
    """A page signed in with a token of ``tenant`` alone, its EHR Epic, showing its settings;
    ``watch`` sees the page before it signs in (to listen to its requests)."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    own = token(gateway, tenant=tenant, roles=roles, subject=subject)
    async with browser() as chromium:
        _, page = await new_page(chromium)
        watch(page)
        await sign_in(page, gateway, own, tenant=None)
        yield page


async def choose_ehr(page: Page, provider: str) -> None:
    await page.get_by_label("EHR provider").select_option(provider)
    await page.get_by_role("button", name="Save Provider Settings").click()
    await expect(page.get_by_role("heading", name="FHIR Settings")).to_be_visible()


def setting(page: Page, section: str, label: str) -> Any:
    """The input labelled ``label`` (the spec's name) in the section headed ``section``."""
    region = page.get_by_role("region", name=section, exact=True)
    return region.get_by_label(label, exact=True)


async def save(page: Page, section: str) -> None:
    await page.get_by_role("button", name=f"Save {section}", exact=True).click()


def path(name: str) -> Path:
    return Path(__file__).parent / name
