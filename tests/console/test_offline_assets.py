"""The console on a network without internet: the gateway serves the page and every module and
style it loads (vendored by scripts/vendor-console, each pinned by its SHA-256 and named with
Subresource Integrity in the import map), under a strict Content-Security-Policy, with the media
types browsers require for ES modules; the page, signed in and saving, sends no request to any
host but the gateway's."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
from playwright.async_api import Request, expect

from ehr_gateway.server import console
from tests.console.console import browser, choose_ehr, new_page, sign_in, token
from tests.processes import GatewayProcess
from tests.vendored import assert_files_are_the_recorded_ones

VENDORED = console.console_dir() / "vendor"


def test_each_vendored_file_is_the_one_recorded() -> None:
    assert_files_are_the_recorded_ones(VENDORED, console.vendored())


def test_each_vendored_package_keeps_its_licence() -> None:
    licences = {name for name in console.vendored() if name.endswith(".LICENSE")}
    assert licences == {
        "preact.LICENSE", "htm.LICENSE", "wonka.LICENSE", "graphql.web.LICENSE",
        "urql-core.LICENSE", "urql-exchange-graphcache.LICENSE", "graphql-ws.LICENSE",
    }  # fmt: skip
    for name in licences:
        text = (VENDORED / name).read_text()
        assert "MIT License" in text or "Apache License" in text, name


# An import or export statement's module name (not text that quotes one, as graphql-ws's
# message about Node's `ws` does), when it is bare: neither relative nor a URL.
BARE_IMPORT = re.compile(
    r"""(?:^|[;}])\s*(?:(?:import|export)\b[^;'"`]*?\bfrom|import)\s*["']([^"'./][^"']*)["']""",
    re.M,
)


def test_every_bare_import_of_the_vendored_modules_is_in_the_import_map() -> None:
    imported: set[str] = set()
    for path in [
        *VENDORED.glob("*.js"),
        *VENDORED.glob("*.mjs"),
        *Path(VENDORED.parent, "js").glob("*.js"),
    ]:
        imported |= set(BARE_IMPORT.findall(path.read_text()))
    assert imported <= set(console.IMPORTS), imported - set(console.IMPORTS)


def page_and_policy(gateway: GatewayProcess) -> tuple[str, str]:
    response = httpx.get(gateway.url + "/console", follow_redirects=True)
    assert response.status_code == 200, response.text
    assert str(response.url) == gateway.url + "/console/"
    assert response.headers["content-type"].startswith("text/html")
    return response.text, response.headers["content-security-policy"]


def test_the_page_names_every_module_by_its_checksum(gateway: GatewayProcess) -> None:
    page, policy = page_and_policy(gateway)
    import_map = json.loads(re.search(r'<script type="importmap">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
    # The import map is the page's only inline script, allowed by its hash and nothing else.
    allowed = re.search(r"script-src ([^;]+)", policy)[1].split()  # type: ignore[index]
    digest = base64.b64encode(
        hashlib.sha256(json.dumps(import_map, indent=1, sort_keys=True).encode()).digest()
    ).decode()
    assert allowed == ["'self'", f"'sha256-{digest}'"]
    assert "unsafe" not in policy
    assert "default-src 'self'" in policy
    connect = re.search(r"connect-src ([^;]+)", policy)[1].split()  # type: ignore[index]
    host = gateway.url.removeprefix("http://")
    assert connect == ["'self'", f"ws://{host}", f"wss://{host}"]
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page)  # nothing from elsewhere
    for url, integrity in import_map["integrity"].items():
        response = httpx.get(f"{gateway.url}/console/{url.removeprefix('./')}")
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "text/javascript; charset=utf-8", url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert (
            "sha256-" + base64.b64encode(hashlib.sha256(response.content).digest()).decode()
            == integrity
        ), url
    for module, url in import_map["imports"].items():
        assert url in import_map["integrity"], module


def test_only_the_pages_files_are_served(gateway: GatewayProcess) -> None:
    for name in ("vendor/SHA256SUMS", "vendor/preact.LICENSE", "index.html", "../pyproject.toml",
                 "vendor/../../server/console.py", "js/missing.js"):  # fmt: skip
        response = httpx.get(f"{gateway.url}/console/{name}")
        assert response.status_code == 404, name
    schema = httpx.get(f"{gateway.url}/console/schema.json")
    assert schema.headers["content-type"] == "application/json"
    assert (
        httpx.get(f"{gateway.url}/console/app.css").headers["content-type"].startswith("text/css")
    )


async def test_the_console_works_with_nothing_but_the_gateway(gateway: GatewayProcess) -> None:
    staff = token(gateway, tenant="*", roles=("editor",), subject="offline")
    elsewhere: list[str] = []
    violations: list[str] = []

    def only_the_gateway(request: Request) -> None:
        if not (
            request.url.startswith(gateway.url + "/") or request.url.startswith(gateway.ws_url)
        ):
            elsewhere.append(request.url)

    async with browser() as chromium:
        _, page = await new_page(chromium)
        page.on("request", only_the_gateway)
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        await sign_in(page, gateway, staff, tenant="offline")
        await choose_ehr(page, "EPIC")
        # The live view's WebSocket is the gateway's own.
        await expect(page.get_by_text("live updates: on")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]
    assert elsewhere == []
    assert violations == []
    assert sockets and all(url.startswith(gateway.ws_url) for url in sockets)
