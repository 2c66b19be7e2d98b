"""The admin console in Debian's Chromium against a real gateway process: signing in as a person
does (a token from ``ehr-gateway token``, pasted), found by role and label."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser import chromium
from tests.documents import SELECT_EPIC
from tests.processes import GatewayProcess, environment

# An external gateway connection, whose id and base path URL the gateway makes.
CONNECT = """
mutation Connect($tenantId: ID!) {
  createExternalGateway(
    tenantId: $tenantId
    connection: {
      name: "Epic", baseUrl: "https://fhir.hospital.example/api", environment: PRODUCTION
    }
  ) { ... on SettingsSaved { settings { externalGateway { basePathUrl } } } }
}
"""

SAVE_URL_PREFIX = """
mutation SavePrefix($tenantId: ID!, $prefix: String) {
  updateFhirSettings(tenantId: $tenantId, input: { epic: { urlPrefix: $prefix } }) { __typename }
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


async def new_page(
    browser: Browser, width: int = 1280, height: int = 800, **options: Any
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": width, "height": height}, **options)
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


async def clipboard(page: Page) -> str:
    """What the page's context has on its clipboard (it needs the clipboard-read permission)."""
    text: str = await page.evaluate("navigator.clipboard.readText()")
    return text


# Where the README's screenshots go: set by scripts/console-screenshots, unset in ordinary runs.
SCREENSHOTS = "EHRGW_CONSOLE_SCREENSHOTS"
ROOT = Path(__file__).parents[2]


async def screenshot(
    page: Page, name: str, centre: Locator | None = None, hide: Sequence[Locator] = ()
) -> None:
    """Save what the page shows as ``<name>.png`` in the folder ``EHRGW_CONSOLE_SCREENSHOTS``
    names, when it is set: the top of the page, or ``centre`` in the middle of the window. The
    page is 1280x800 (``new_page``); clock times, generated ids and what ``hide`` names are
    masked, so a refresh changes a picture only when the console changed."""
    folder = os.environ.get(SCREENSHOTS)
    if not folder:
        return
    if centre is None:
        await page.evaluate("window.scrollTo(0, 0)")
    else:
        await centre.evaluate("element => element.scrollIntoView({ block: 'center' })")
    target = ROOT / folder / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(
        path=target,
        animations="disabled",
        caret="hide",
        mask=[page.locator("time"), page.locator(".identity code"), *hide],
        mask_color="#c9d1da",
    )
    # A console screenshot has few colours: a palette of 256 keeps it legible at a fraction of
    # the size of Chromium's PNG.
    with Image.open(target) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(target, optimize=True)


async def open_view(page: Page, view: str) -> None:
    """Choose one of the tenant's views (Settings, History, Audit log, Export and import)."""
    await page.get_by_role("tab", name=view, exact=True).click()
    await expect(page.get_by_role("tab", name=view, exact=True)).to_have_attribute(
        "aria-selected", "true"
    )


async def epic_tenant(gateway: GatewayProcess, tenant: str, *prefixes: str) -> None:
    """``tenant`` on Epic (version 1), then one version per FHIR url prefix in ``prefixes``."""
    await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId=tenant)
    for prefix in prefixes:
        await asyncio.to_thread(gateway.graphql, SAVE_URL_PREFIX, tenantId=tenant, prefix=prefix)


@asynccontextmanager
async def console_page(
    gateway: GatewayProcess, tenant: str, role: str, subject: str, view: str | None = None
) -> AsyncIterator[Page]:
    """The console in Chromium, signed in with a token of ``tenant`` alone (so it opens
    directly) for ``subject`` as ``role``, showing ``view`` when given."""
    own = token(gateway, tenant=tenant, roles=(role,), subject=subject)
    async with browser() as chromium:
        _, page = await new_page(chromium)
        await sign_in(page, gateway, own, tenant=None)
        if view is not None:
            await open_view(page, view)
        yield page
