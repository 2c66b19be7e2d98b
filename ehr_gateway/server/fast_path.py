"""The request gate's way to the whole-request fast paths for settings reads (gql.fast_reads)
and block updates (gql.fast_writes): the answer to a POSTed query or mutation one of them can
answer, with the request's own context (the caller the gate authenticated, the request's id
and record), which the gate sends as it sends a cached response; anything else is left to
Strawberry."""

from __future__ import annotations

from starlette.types import Scope

from ehr_gateway.gql import fast_reads
from ehr_gateway.gql.fast_reads import FastReads, plain_request
from ehr_gateway.resolvers.context import Context
from ehr_gateway.server.state import Gateway


class FastPath:
    def __init__(self, gateway: Gateway, reads: FastReads) -> None:
        self._gateway = gateway
        self._reads = reads
        # Built with the reads' (schema.gateway_schema), and off with them.
        self._writes = gateway.schema.fast_writes

    async def __call__(self, scope: Scope, body: bytes) -> bytes | None:
        """The response body to the request with ``body``; None: not answered here."""
        services = self._gateway.services
        if services is None:  # not started, or stopped: the generic path's answer
            return None
        state = scope["state"]

        def context_of() -> Context:
            return services.context.for_request(
                state["request_id"], state["principal"], state["record"]
            )

        request = plain_request(body)
        if request is None:  # not JSON, nested too deep, other members: the generic path's
            fast_reads.outcomes["not a plain request"] += 1
            return None
        text, name, _ = request
        writes = self._writes
        if writes is not None and writes.knows(text, name):
            return await writes.answer(body, text, name, context_of)
        return await self._reads.answer_plain(body, request, context_of)
