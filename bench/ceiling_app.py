"""The ceilings of this machine: bare Starlette routes, no GraphQL, no database.

- Subscription fan-out (bench/subscribers.py): a WebSocket endpoint; POST /broadcast?size=N&repeat=R
  sends R copies of a message of about N bytes to every connection, stamped with the time it was
  sent.
- Reads (bench/reads.py): POST /graphql returns the gateway's response to the read query, read
  once at startup from the file named by BENCH_READ_RESPONSE, as pre-serialised JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

clients: set[WebSocket] = set()


async def subscribe(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        clients.discard(websocket)


async def broadcast(request: Request) -> JSONResponse:
    size = int(request.query_params.get("size", "2000"))
    repeat = int(request.query_params.get("repeat", "1"))  # messages per connection
    message = json.dumps({"sentAt": time.time(), "padding": "x" * size})
    for websocket in list(clients):
        for _ in range(repeat):
            await websocket.send_text(message)
    return JSONResponse({"sent": len(clients)})


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"subscribers": len(clients)})


_READ_RESPONSE = (
    Path(os.environ["BENCH_READ_RESPONSE"]).read_bytes()
    if "BENCH_READ_RESPONSE" in os.environ
    else b""
)


async def read_settings(request: Request) -> Response:
    await request.body()  # a real endpoint reads what it was sent
    return Response(_READ_RESPONSE, media_type="application/json")


app = Starlette(
    routes=[
        WebSocketRoute("/ws", subscribe),
        Route("/broadcast", broadcast, methods=["POST"]),
        Route("/graphql", read_settings, methods=["POST"]),
        Route("/healthz", count),
    ]
)
