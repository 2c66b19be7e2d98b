"""GraphiQL keeps nothing in the browser: a bearer token pasted into the Headers pane and a
password typed into a mutation are gone with the tab. GraphiQL's history (localStorage
`graphiql:queries`) used to keep every run with its headers whatever shouldPersistHeaders said,
and its editors and tabs what was typed: readable by anyone using that browser profile and by
any script of the gateway's origin. The page gives GraphiQL a storage in its memory, and clears
what earlier pages left."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.browser import chromium
from tests.documents import SELECT_EPIC
from tests.gql.test_graphiql_offline import run, type_into
from tests.processes import GatewayProcess

PASSWORD = "Canary-Soap-Pass-7731"
SAVE_PASSWORD = (
    'mutation SavePassword { updateEhrSettings(tenantId: "acme", input: {epic: {'
    f'soapUsername: "svc", soapPassword: "{PASSWORD}"'
    "}}) { __typename } }"
)
LOCAL_STORAGE = "JSON.stringify(Object.assign({}, window.localStorage))"


async def test_a_token_and_a_password_typed_into_graphiql_are_not_kept_by_the_browser(
    tmp_path: Path,
) -> None:
    gateway = GatewayProcess(tmp_path)
    try:
        await asyncio.to_thread(gateway.graphql, SELECT_EPIC, tenantId="acme")
        async with chromium() as browser:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(gateway.url + "/graphql")
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for()
            await page.get_by_role("button", name="Headers").click()
            await type_into(
                page, ".graphiql-editor-tool", '{"Authorization": "Bearer ' + gateway.token + '"}'
            )
            await type_into(page, ".graphiql-query-editor", SAVE_PASSWORD)
            await run(page, "SavePassword")
            await page.locator(".graphiql-response").get_by_text("SettingsSaved").wait_for()

            stored = await page.evaluate(LOCAL_STORAGE)
            await context.close()
    finally:
        gateway.stop()

    assert gateway.token not in stored, "the bearer token is in localStorage"
    assert PASSWORD not in stored, "the SOAP password is in localStorage"


async def test_what_an_earlier_page_left_in_the_browser_is_cleared(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path)
    try:
        async with chromium() as browser:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(gateway.url + "/graphql")
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for()
            # What GraphiQL's own storage kept on the earlier page, and a key not its own.
            await page.evaluate(
                "window.localStorage.setItem('graphiql:queries', "
                f"JSON.stringify({{queries: [{{headers: 'Bearer {gateway.token}'}}]}}));"
                "window.localStorage.setItem('unrelated', 'kept');"
            )
            await page.reload()
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for()

            stored = await page.evaluate(LOCAL_STORAGE)
            await context.close()
    finally:
        gateway.stop()

    assert gateway.token not in stored
    assert "graphiql:" not in stored
    assert '"unrelated":"kept"' in stored
