"""GraphiQL served whole by the gateway: its page, and React's and GraphiQL's scripts and styles
vendored under gql/static/graphiql (scripts/vendor-graphiql), so that it works on a network
without internet. Each asset is pinned by the SHA-256 recorded in SHA256SUMS: the page names it
in a Subresource Integrity attribute, so a browser runs only the file that was vendored."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from html import escape
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

STATIC = Path(__file__).parent / "static"
ASSETS = STATIC / "graphiql"
CHECKSUMS = ASSETS / "SHA256SUMS"

# In the order the page loads them: GraphiQL's UMD build expects React on the window.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")
STYLES = ("graphiql.min.css",)

# Where the page fetches them from, relative to /graphql, so a path prefix in front of the
# gateway carries over.
ASSET_PATH = "graphiql"

_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


@cache
def checksums() -> dict[str, str]:
    """Each vendored file's SHA-256 (hex), as SHA256SUMS records it."""
    sums: dict[str, str] = {}
    for line in CHECKSUMS.read_text(encoding="ascii").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    return sums


def _integrity(digest_hex: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(digest_hex)).decode("ascii")


def _url(name: str) -> str:
    # The checksum in the URL: a browser that cached an earlier version asks again, instead of
    # failing the integrity check on its cached copy.
    return f"{ASSET_PATH}/{name}?v={checksums()[name][:16]}"


@cache
def _page() -> tuple[str, str]:
    """The page, and the Content-Security-Policy it is served with."""
    script = (STATIC / "graphiql.js").read_text(encoding="utf-8")
    sums = checksums()
    styles = "\n    ".join(
        f'<link rel="stylesheet" href="{escape(_url(name))}" '
        f'integrity="{_integrity(sums[name])}" />'
        for name in STYLES
    )
    scripts = "\n    ".join(
        f'<script src="{escape(_url(name))}" integrity="{_integrity(sums[name])}"></script>'
        for name in SCRIPTS
    )
    page = (
        (STATIC / "graphiql.html")
        .read_text(encoding="utf-8")
        .replace("{{styles}}", styles)
        .replace("{{scripts}}", scripts)
        .replace("{{page_script}}", script)
    )
    inline = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'sha256-{inline}'",
            # CodeMirror positions its widgets with style attributes.
            "style-src 'self' 'unsafe-inline'",
            # GraphiQL's fonts and icons are data: URLs inside its stylesheet.
            "font-src data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return page, policy


def page_response() -> Response:
    page, policy = _page()
    return Response(
        page,
        media_type="text/html",
        headers={
            "content-security-policy": policy,
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


def assets() -> ASGIApp:
    """The app to mount at /graphiql: the vendored files, compressed for browsers that accept
    it (GraphiQL's 4 MB are 1 MB gzipped; a browser fetches them once, see asset)."""
    return GZipMiddleware(Router(routes=[Route("/{name}", asset)]), compresslevel=6)


async def asset(request: Request) -> Response:
    """GET /graphiql/{name}: a vendored file the page loads (nothing else in the folder)."""
    name = request.path_params["name"]
    if name not in checksums() or Path(name).suffix not in _MEDIA_TYPES:
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(
        ASSETS / name,
        media_type=_MEDIA_TYPES[Path(name).suffix],
        headers={
            # Its URL carries its checksum (see _url): a new version has a new URL.
            "cache-control": "public, max-age=31536000, immutable",
            "x-content-type-options": "nosniff",
        },
    )
