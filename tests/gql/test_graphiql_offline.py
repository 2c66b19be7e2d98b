"""GraphiQL on a network without internet: the gateway serves the page and every script and
style it loads (vendored by scripts/vendor-graphiql, each pinned by its SHA-256 and named with
Subresource Integrity), and a token pasted into the Headers pane loads the schema."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from pathlib import Path

from playwright.async_api import Page, Request, Response, Route

from ehr_gateway.gql import graphiql
from tests.browser import chromium
from tests.conftest import Gateway, gateway_config, open_gateway
from tests.documents import SELECT_EPIC
from tests.processes import GatewayProcess
from tests.vendored import assert_files_are_the_recorded_ones

SETTINGS = 'query Settings { integrationSettings(tenantId: "acme") { version provider } }'

FOLLOW = (
    "subscription Follow { "
    'configurationChanged(tenantId: "acme", sinceVersion: 0) { version changedBlocks } }'
)

VENDORED = Path(graphiql.__file__).parent / "static" / "graphiql"


def test_each_vendored_file_is_the_one_recorded() -> None:
    assert_files_are_the_recorded_ones(VENDORED, graphiql.checksums())


def test_each_vendored_package_keeps_its_licence() -> None:
    for name in (*graphiql.SCRIPTS, *graphiql.STYLES):
        package = name.split(".")[0]
        assert (VENDORED / f"{package}.LICENSE").read_text().startswith("MIT License"), name


async def open_page(gateway: Gateway) -> str:
    response = await gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200, response.text
    return response.text


async def test_the_page_loads_only_the_gateways_files_by_their_checksums(
    gateway: Gateway,
) -> None:
    page = await open_page(gateway)
    loaded = re.findall(r'(?:src|href)="([^"]+)" integrity="sha256-([^"]+)"', page)
    assert len(loaded) == len(graphiql.SCRIPTS) + len(graphiql.STYLES)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page)  # nothing from elsewhere
    for url, integrity in loaded:
        response = await gateway.client.get("/" + url, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, url
        assert response.headers["content-encoding"] == "gzip"
        assert base64.b64encode(hashlib.sha256(response.content).digest()).decode() == integrity
        assert "immutable" in response.headers["cache-control"]


async def test_only_the_pages_assets_are_served(gateway: Gateway) -> None:
    for name in ("SHA256SUMS", "react.LICENSE", "../graphiql.py", "graphiql.min.js.map"):
        response = await gateway.client.get(f"/graphiql/{name}")
        assert response.status_code == 404, name


async def test_without_introspection_there_is_no_graphiql(
    database_url: str, tmp_path: Path
) -> None:
    async for gateway in open_gateway(gateway_config(database_url, tmp_path, introspection=False)):
        response = await gateway.client.get("/graphiql/graphiql.min.js")
    assert response.status_code == 404


# --- in a browser with no network but the gateway -----------------------------------------------


async def type_into(page: Page, editor: str, text: str) -> None:
    """Replace an editor's text as a person pasting would."""
    await page.locator(f"{editor} .graphiql-editor:not(.hidden) .CodeMirror").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(text)


async def run(page: Page, operation_name: str) -> None:
    """Run the operation in the query editor, once GraphiQL has read it: it takes in an edit a
    moment later (a person takes longer than that to reach the button), and until then would
    run the operation it knew before."""
    await page.wait_for_function(
        "(name) => document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror.operationName === name",
        arg=operation_name,
    )
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_works_with_nothing_but_the_gateway(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path)
    try:
        await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="acme")
        elsewhere: list[str] = []
        introspections: list[int] = []

        async def only_the_gateway(route: Route, request: Request) -> None:
            if request.url.startswith(gateway.url + "/"):
                await route.continue_()
            else:
                elsewhere.append(request.url)
                await route.abort("internetdisconnected")

        def note_introspection(response: Response) -> None:
            if "IntrospectionQuery" in (response.request.post_data or ""):
                introspections.append(response.status)

        async with chromium() as browser:
            context = await browser.new_context()
            await context.route("**/*", only_the_gateway)
            page = await context.new_page()
            page.on("response", note_introspection)
            violations: list[str] = []
            page.on(
                "console",
                lambda message: (
                    violations.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            await page.goto(gateway.url + "/graphql")

            # GraphiQL rendered: its editors are there (not "Loading...").
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for()
            # The schema was asked for without a token, and refused.
            await page.get_by_role("button", name="Show Documentation Explorer").click()
            docs = page.get_by_role("region", name="Documentation Explorer")
            await docs.locator(".graphiql-doc-explorer-error").wait_for()

            await page.get_by_role("button", name="Headers").click()
            await type_into(
                page,
                ".graphiql-editor-tool",
                '{"Authorization": "Bearer ' + gateway.token + '"}',
            )
            # The pasted token loads the schema: the Docs pane shows its root types.
            await docs.get_by_text("Mutation", exact=True).wait_for()
            await docs.get_by_text("Subscription", exact=True).wait_for()

            await type_into(page, ".graphiql-query-editor", SETTINGS)
            await run(page, "Settings")
            result = page.locator(".graphiql-response")
            await result.get_by_text('"provider": "EPIC"').wait_for()

            # A subscription runs over the gateway's WebSocket, authenticated by the same headers.
            await type_into(page, ".graphiql-query-editor", FOLLOW)
            await run(page, "Follow")
            await result.get_by_text('"changedBlocks"').wait_for()
            await result.get_by_text('"PROVIDER"').wait_for()
            await context.close()
    finally:
        gateway.stop()
    assert elsewhere == []
    assert introspections[0] == 401
    assert introspections[-1] == 200
    assert violations == []
