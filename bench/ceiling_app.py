"""The ceiling for subscription fan-out on this machine: a bare Starlette WebSocket endpoint that
sends one pre-serialised message to every connected client. No GraphQL, no database.

Run by subscribers.py beside the gateway; POST /broadcast?size=N&repeat=R sends R copies of a
message of about N bytes to every connection, stamped with the time it was sent."""

from __future__ import annotations

import json
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
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


app = Starlette(
    routes=[
        WebSocketRoute("/ws", subscribe),
        Route("/broadcast", broadcast, methods=["POST"]),
        Route("/healthz", count),
    ]
)
