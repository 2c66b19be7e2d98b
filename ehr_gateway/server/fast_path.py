"""The request gate's way to the whole-request fast path for settings reads (gql.fast_reads):
a POSTed query it answers is sent as the response cache sends a hit, with the request's own
context (the caller the gate authenticated, the request's id and record); anything else is
left to Strawberry."""

from __future__ import annotations

from starlette.types import Scope, Send

from ehr_gateway.gql.fast_reads import FastReads
from ehr_gateway.resolvers.context import Context
from ehr_gateway.server.media import response_media_type
from ehr_gateway.server.state import Gateway


class FastPath:
    def __init__(self, gateway: Gateway, reads: FastReads) -> None:
        self._gateway = gateway
        self._reads = reads

    async def __call__(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Whether the request with ``body`` was answered here (nothing was sent otherwise)."""
        services = self._gateway.services
        if services is None:  # not started, or stopped: the generic path's answer
            return False
        state = scope["state"]

        def context_of() -> Context:
            return services.context.for_request(
                state["request_id"], state["principal"], state["record"]
            )

        answer = await self._reads.answer(body, context_of)
        if answer is None:
            return False
        await send_json(send, answer, response_media_type(scope))
        return True


async def send_json(send: Send, body: bytes, media_type: str) -> None:
    """A 200 with a GraphQL result, its headers as Strawberry's view writes them."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", media_type.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
