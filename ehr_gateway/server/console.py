"""The admin console, served whole by the gateway at /console: its page, its own ES modules and
stylesheet, the settings page's description (schema.json) and the vendored libraries
(console/vendor, refreshed by scripts/vendor-console), so that it works on a network without
internet and needs no Node and no build step.

The page's import map names every module with Subresource Integrity: the vendored ones by the
SHA-256 that SHA256SUMS records, the console's own by the hash of the file as served. The import
map is the only inline script, allowed by its hash in the Content-Security-Policy; the page may
connect to its own origin only (HTTP and WebSocket), and, behind an OpenID issuer, to the issuer's
origin for sign-in (its discovery document and token endpoint).

Behind an issuer the page carries its sign-in setup (issuer, client id, scopes) in a JSON data
element, so the console learns it without a route of its own."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ehr_gateway.server.config import GatewayConfig, url_origin

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}

# The bare module names the console's code and the vendored libraries import, and the vendored
# file each one resolves to.
IMPORTS = {
    "preact": "preact.module.js",
    "preact/hooks": "hooks.module.js",
    "htm": "htm.module.js",
    "htm/preact": "htm-preact.module.js",
    "wonka": "wonka.mjs",
    "@0no-co/graphql.web": "graphql.web.mjs",
    "@urql/core": "urql-core.mjs",
    "@urql/exchange-graphcache": "urql-exchange-graphcache.mjs",
    "graphql-ws": "graphql-ws.js",
}

# A Host header as a browser sends it: the CSP names the page's own WebSocket origin with it.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def console_dir() -> Path:
    """Where the console's files are: the one place that knows. Installed from a wheel, inside
    the package; in a checkout, the top-level console/ folder."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "console"
    return installed if installed.is_dir() else package.parent / "console"


def _vendor_dir() -> Path:
    return console_dir() / "vendor"


@cache
def vendored() -> dict[str, str]:
    """Each vendored file's SHA-256 (hex), as SHA256SUMS records it."""
    sums: dict[str, str] = {}
    for line in (_vendor_dir() / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    return sums


def _integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


@cache
def _own_files() -> dict[str, bytes]:
    """The console's own files it serves, by path under /console/ (read once: the page names
    their hashes, so a file must not change under a running gateway)."""
    root = console_dir()
    files = {"app.css": (root / "app.css").read_bytes()}
    files["schema.json"] = (root / "schema.json").read_bytes()
    for path in sorted((root / "js").glob("*.js")):
        files[f"js/{path.name}"] = path.read_bytes()
    return files


@dataclass(frozen=True)
class SignInSetup:
    """What the page needs to sign in through an OpenID issuer (None: development mode)."""

    issuer: str
    client_id: str
    scopes: str

    @property
    def origin(self) -> str:
        return url_origin(self.issuer)

    def as_json(self) -> str:
        """The setup as the page's JSON data element holds it: "<" escaped, so that no value
        can close the element and start markup of its own."""
        text = json.dumps(
            {"issuer": self.issuer, "clientId": self.client_id, "scopes": self.scopes},
            sort_keys=True,
        )
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sign_in_setup(config: GatewayConfig) -> SignInSetup | None:
    if config.auth_issuer is None:
        return None
    return SignInSetup(config.auth_issuer, config.console_client_id, config.console_scopes)


@cache
def _page(sign_in: SignInSetup | None = None) -> tuple[str, str]:
    """The page, and the Content-Security-Policy it is served with (less connect-src, which
    names the request's own host)."""
    own = _own_files()
    integrity = {
        f"./{name}": _integrity(data) for name, data in own.items() if name.endswith(".js")
    }
    for name, digest in vendored().items():
        if Path(name).suffix in (".js", ".mjs"):
            integrity[f"./vendor/{name}"] = "sha256-" + base64.b64encode(
                bytes.fromhex(digest)
            ).decode("ascii")
    import_map = json.dumps(
        {
            "imports": {module: f"./vendor/{file}" for module, file in IMPORTS.items()},
            "integrity": integrity,
        },
        indent=1,
        sort_keys=True,
    )
    page = (
        (console_dir() / "index.html")
        .read_text(encoding="utf-8")
        .replace("{{importmap}}", import_map)
        .replace("{{main_integrity}}", integrity["./js/main.js"])
        .replace("{{css_integrity}}", _integrity(own["app.css"]))
        .replace("{{sign_in}}", sign_in.as_json() if sign_in else "{}")
    )
    policy = "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' '{_integrity(import_map.encode('utf-8'))}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return page, policy


_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def _page_route(sign_in: SignInSetup | None) -> Route:
    # Sign-in talks to the issuer from the browser (discovery, code exchange, refresh): its
    # origin, and no other, joins connect-src. The authorization request is a navigation, not
    # a form post, so form-action stays 'none'.
    issuer = f" {sign_in.origin}" if sign_in else ""

    async def page(request: Request) -> Response:
        """GET /console/: the page."""
        body, policy = _page(sign_in)
        host = request.headers.get("host", "")
        # The page's own origin over WebSocket: 'self' covers it in current browsers, named as
        # well for those that read 'self' as http(s) only.
        sockets = f" ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""
        return Response(
            body,
            media_type="text/html",
            headers={
                "content-security-policy": f"{policy}; connect-src 'self'{sockets}{issuer}",
                "cache-control": "no-cache",
                **_HEADERS,
            },
        )

    return Route("/console/", page, methods=["GET"])


async def to_page(request: Request) -> Response:
    """GET /console: to the page at /console/, so that its relative URLs resolve under it."""
    return RedirectResponse(request.url.path + "/", status_code=308)


async def asset(request: Request) -> Response:
    """GET /console/{path}: a file the page loads (nothing else in the folder)."""
    path = request.path_params["path"]
    data = _own_files().get(path)
    if data is None and path.startswith("vendor/"):
        name = path.removeprefix("vendor/")
        if name in vendored() and Path(name).suffix in (".js", ".mjs"):
            data = (_vendor_dir() / name).read_bytes()
    suffix = Path(path).suffix
    if data is None or suffix not in _MEDIA_TYPES:
        return PlainTextResponse("not found", status_code=404)
    return Response(
        data,
        media_type=_MEDIA_TYPES[suffix],
        # Revalidated on each load: the page's integrity attributes change with the files.
        headers={"cache-control": "no-cache", **_HEADERS},
    )


def routes(config: GatewayConfig | None = None) -> list[BaseRoute]:
    """The console's routes, for the gateway's app (``config``: its sign-in setup)."""
    return [
        Route("/console", to_page, methods=["GET"]),
        _page_route(sign_in_setup(config) if config else None),
        Route("/console/{path:path}", asset, methods=["GET"]),
    ]
