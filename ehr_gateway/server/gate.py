"""What every GraphQL HTTP request passes before Strawberry sees it: a request id, the body size
limit, the media type, authentication and the response cache, and the JSON depth limit on the
way in. (WebSocket connections authenticate in connection_init instead.)"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehr_gateway.gql.execution import SubscriptionOverHttp
from ehr_gateway.gql.persisted_documents import PersistedDocumentRefused
from ehr_gateway.resolvers.context import RequestRecord
from ehr_gateway.runtime.identity import TokenVerifier, Unauthenticated
from ehr_gateway.runtime.json_limits import DEFAULT_MAX_DEPTH, JsonTooDeep
from ehr_gateway.server import logs, media
from ehr_gateway.server.media import response_media_type
from ehr_gateway.server.metrics import GatewayMetrics
from ehr_gateway.server.response_cache import Cached, ResponseCache

logger = logging.getLogger("ehr_gateway.http")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Deepest nesting of arrays and objects in a request's JSON (body, or a GET's variables, and
# WebSocket messages): far beyond any settings document, and far short of what makes the parser
# recurse out of stack.
MAX_JSON_DEPTH = DEFAULT_MAX_DEPTH
# New request ids: this process's random prefix and a counter. Unique across replicas and
# restarts like a random id, without a call for randomness on every request.
_ID_PREFIX = secrets.token_hex(6)
_id_counter = itertools.count(1)
_ALLOW_GET_POST = {"allow": "GET, POST"}
# The answer to a POST with this body when the fast path has one (server.fast_path), else None.
FastAnswer = Callable[[Scope, bytes], Awaitable[bytes | None]]


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-Id when it is a sane one, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


def response_started(scope: Scope) -> bool:
    """Whether the gate began a response to the HTTP request in ``scope``."""
    response: _Capture | None = scope.get("state", {}).get("response")
    return response is not None and response.status != 0


def request_error(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A request refused before GraphQL ran it: a GraphQL response with one error and no
    ``data``, in the media type the client accepts (GraphQL over HTTP), so that a GraphQL
    client reads the code rather than a bare status."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(
        body, status_code=status, headers=headers, media_type=response_media_type(scope)
    )


class RequestGate:
    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        max_body_bytes: int,
        ide: bool,
        responses: ResponseCache | None = None,
        metrics: GatewayMetrics | None = None,
        access_log: bool = True,
        fast: FastAnswer | None = None,
    ) -> None:
        self._app = app
        self._verifier = verifier
        self._max_body = max_body_bytes
        self._ide = ide
        self._responses = responses
        self._metrics = metrics
        self._access_log = access_log
        self._fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = {k: v for k, v in scope.get("headers", ())}
        # The first X-Request-Id, as request_id_of takes it; looked for only when there is one.
        request_id = (
            request_id_of(scope)
            if b"x-request-id" in headers
            else f"{_ID_PREFIX}-{next(_id_counter):x}"
        )
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        current = logs.request_id.set(request_id)
        try:
            if scope["type"] != "http":
                await self._app(scope, receive, send)  # a WebSocket: for as long as it lasts
                return
            started = time.perf_counter()
            record = state["record"] = RequestRecord()
            added = [(b"x-request-id", request_id.encode("latin-1"))]
            if scope["method"] == "GET":
                # A GET's answer is the caller's settings, under a URL that carries no
                # credentials: no browser or proxy cache may keep it for the next user of the
                # URL (a version ETag would need Vary: Authorization and a revalidation per
                # read; the settings cache already makes a read cheap).
                added.append((b"cache-control", b"private, no-store"))
            response = state["response"] = _Capture(send, added)
            try:
                if len(headers) < len(scope["headers"]) and _repeated(scope, b"authorization"):
                    # Which one counts differs between readers (this gate takes the last,
                    # Starlette's Headers the first): a request naming two callers is refused.
                    message = "a request carries at most one Authorization header"
                    refusal = request_error(scope, 400, "BAD_REQUEST", message)
                    await refusal(scope, receive, response)
                    return
                await self._serve(scope, receive, response, record, headers)
            finally:
                elapsed = time.perf_counter() - started
                if self._metrics is not None:
                    self._metrics.request(record.operation, response.status, elapsed)
                if self._access_log:
                    logs.log_request(
                        scope["method"], scope["path"], response.status, elapsed,
                        record.operation, response.cache, request_id,
                    )  # fmt: skip
        finally:
            logs.request_id.reset(current)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: _Capture,
        record: RequestRecord,
        headers: dict[bytes, bytes],
    ) -> None:
        if scope["method"] not in ("GET", "POST"):
            message = "GraphQL is served over GET (queries) and POST"
            refusal = request_error(scope, 405, "METHOD_NOT_ALLOWED", message, _ALLOW_GET_POST)
            await refusal(scope, receive, send)
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self._max_body:
            await self._too_large(scope, receive, send)
            return
        if self._ide and _asks_for_the_ide(scope, headers):
            record.operation = "graphiql"
            await self._app(scope, receive, send)  # the GraphiQL page itself: no data in it
            return
        if scope["method"] == "POST" and not _accept_media_type(scope, headers):
            message = "a GraphQL POST must be sent as application/json"
            await request_error(scope, 415, "BAD_REQUEST", message)(scope, receive, send)
            return
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            principal = await self._verifier.principal(authorization)
        except Unauthenticated as refused:
            logger.info("unauthenticated request refused: %s", refused)
            # RFC 6750: no error code when the request carried no credentials at all.
            challenge = 'Bearer error="invalid_token"' if authorization else "Bearer"
            response = request_error(
                scope, 401, "UNAUTHENTICATED", f"not authenticated: {refused}",
                {"www-authenticate": challenge},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        body = await _read_body(receive, self._max_body)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        scope["state"]["principal"] = principal
        if b"idempotency-key" in headers:  # every one sent, in order
            record.idempotency_keys = [
                v.decode("latin-1") for k, v in scope["headers"] if k == b"idempotency-key"
            ]
        if self._responses is None or scope["method"] != "POST":
            await self._answer(scope, body, receive, send, headers)
            return
        # The body as sent (document, variables, operation name) and what the caller may see.
        key = (body, principal.access)
        cached = self._responses.get(key)
        if cached is not None:
            record.operation = cached.operation
            send.cache = "hit"
            await send.send_json(cached.body, _media_type(scope, headers))
            return
        send.keep_body()
        await self._answer(scope, body, receive, send, headers)
        if record.cacheable and send.status == 200:
            send.cache = "miss"
            self._responses.put(key, Cached(send.body, record.operation), record.versions)

    async def _answer(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: _Capture,
        headers: dict[bytes, bytes],
    ) -> None:
        """By the fast path for settings reads when it answers the request, else by Strawberry."""
        if self._fast is not None and scope["method"] == "POST":
            answer = await self._fast(scope, body)
            if answer is not None:
                await send.send_json(answer, _media_type(scope, headers))
                return
        await self._forward(scope, body, receive, send)

    async def _forward(self, scope: Scope, body: bytes, receive: Receive, send: _Capture) -> None:
        """To Strawberry. Its JSON parsing refuses JSON nested too deep (the body's, or the
        variables and extensions of a GET) with JsonTooDeep, and the schema a subscription with
        SubscriptionOverHttp, both answered here as JSON. (A cached
        response is never for such a body: it was parsed before.)"""
        try:
            await self._app(scope, _replay(body, receive), send)
        except JsonTooDeep as refused:
            if send.status:
                raise  # no longer answerable: a response has begun
            logger.info("request refused: %s", refused)
            message = f"the request's JSON nests deeper than {MAX_JSON_DEPTH} levels"
            await request_error(scope, 400, "BAD_REQUEST", message)(scope, receive, send)
        except PersistedDocumentRefused as refused:
            if send.status:
                raise
            response = request_error(
                scope, refused.status, refused.code, refused.message, dict(refused.headers)
            )
            await response(scope, receive, send)
        except SubscriptionOverHttp:
            if send.status:
                raise
            message = "subscriptions are served over WebSocket on /graphql, not over HTTP"
            await request_error(scope, 400, "BAD_REQUEST", message)(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body exceeds {self._max_body} bytes"
        await request_error(scope, 413, "BAD_REQUEST", message)(scope, receive, send)


class _Capture:
    """Passes a response on with the gate's headers added, noting its status (and its body,
    once asked to, for the response cache): the one wrapper around the server's ``send``."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self._send = send
        self._headers = headers
        self.status = 0  # 0: no response was started (the client went away)
        self.cache: str | None = None  # "hit" or "miss" when the response cache was asked
        self._chunks: list[bytes] | None = None

    def keep_body(self) -> None:
        self._chunks = []

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks or ())

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), *self._headers]
        elif message["type"] == "http.response.body" and self._chunks is not None:
            self._chunks.append(message.get("body", b""))
        await self._send(message)

    async def send_json(self, body: bytes, media_type: str) -> None:
        """A 200 with a GraphQL result (a cached one, or the fast path's) straight to the
        server: its headers as Strawberry's view writes them (Starlette's Response: the length,
        then the type; tests/server/test_cached_answers.py compares them), then the gate's."""
        self.status = 200
        if self._chunks is not None:
            self._chunks.append(body)
        send = self._send
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", b"%d" % len(body)),
                    media.CONTENT_TYPE_HEADERS[media_type],
                    *self._headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _repeated(scope: Scope, name: bytes) -> bool:
    return sum(1 for key, _ in scope["headers"] if key == name) > 1


def _media_type(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """response_media_type, without looking through the headers for an Accept there is not."""
    return response_media_type(scope) if b"accept" in headers else media.JSON


def _accept_media_type(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Whether a POST's media type is application/json (in any case, with any parameters).

    Decided here rather than by Strawberry, so that a response cached for a body is never the
    answer to the same body sent as something else; Strawberry then gets the plain media type,
    so it never refuses what the gate (and the cache) took."""
    content_type = headers.get(b"content-type", b"")
    if content_type == b"application/json":  # what nearly every client sends
        return True
    if content_type.partition(b";")[0].strip().lower() != b"application/json":
        return False
    scope["headers"] = [
        (name, b"application/json" if name == b"content-type" else value)
        for name, value in scope["headers"]
    ]
    return True


def _asks_for_the_ide(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A browser opening /graphql: a GET for HTML without a query (which would be executed)."""
    if scope["method"] != "GET" or b"text/html" not in headers.get(b"accept", b""):
        return False
    return "query" not in parse_qs(scope.get("query_string", b"").decode("latin-1"))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body (None past ``limit``): a chunked body has no Content-Length to check."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def receiver() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # what follows the body: the client's disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receiver
