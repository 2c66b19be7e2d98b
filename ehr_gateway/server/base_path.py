"""The external gateway's base path URL as a served route: where Epic sends its calls (click to
call, pause and resume) and, until the tenant's JKU is known, where the JKU they name is observed
(resolvers.jku_observations). Nothing a request carries is trusted or fetched here."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_gateway.resolvers.context import Context
from ehr_gateway.resolvers.jku_observations import Observed, observe_jku

# A JWT is at most 16 KiB (as verifyEpicJwt takes it); a body that carries one, at most this.
MAX_BODY_BYTES = 64 * 1024
MAX_URL_CHARS = 8192
# Where the token may be, besides `Authorization: Bearer`: a `jwt` member of a JSON body. Not a
# query parameter or form field: any web page can make a browser send those (a link, an image,
# a form post, no preflight), and Epic sends a bearer token.
TOKEN_FIELD = "jwt"


class BodyTooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The request body, read no further than MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return bytes(body)


def _field(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def find_token(request: Request) -> str | None:
    """The JWT a request carries: a bearer token, else the `jwt` member of a JSON body (a media
    type a cross-site page cannot send without a CORS preflight, which only the configured
    origins pass)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if request.method != "POST":
        return None
    body = await _body(request)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if media_type == "application/json" or media_type.endswith("+json"):
            document = json.loads(body)
            return _field(document.get(TOKEN_FIELD)) if isinstance(document, dict) else None
    except (ValueError, UnicodeError, RecursionError):
        return None
    return None


def _refusal(status: int, code: str, message: str) -> Response:
    headers = {"retry-after": "1"} if status == 429 else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def observe(request: Request, context: Context | None) -> Response:
    """The answer at /gateways/{gateway_id} (and below it): 202 when the request's JWT names a
    JKU, which is recorded for the tenant; 400/401/413 when it carries none, 404 for an unknown
    gateway, 429 over the rate limits, 503 before the gateway has started (``context`` None).
    Database errors are left to the caller."""
    if context is None:
        return _refusal(503, "unavailable", "starting")
    if len(str(request.url)) > MAX_URL_CHARS:
        return _refusal(414, "uri_too_long", f"the URL is longer than {MAX_URL_CHARS}")
    try:
        token = await find_token(request)
    except BodyTooLarge:
        return _refusal(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    address = request.client.host if request.client is not None else ""
    outcome = await observe_jku(context, request.path_params["gateway_id"], token, address)
    if isinstance(outcome, Observed):
        return JSONResponse({"status": "observed"}, status_code=202)
    return _refusal(outcome.status, outcome.code, outcome.message)
