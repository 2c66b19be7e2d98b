"""The request gate's way to the whole-request fast path for settings reads (gql.fast_reads):
the answer to a POSTed query it can answer, with the request's own context (the caller the gate
authenticated, the request's id and record), which the gate sends as it sends a cached response;
anything else is left to Strawberry."""

from __future__ import annotations

from starlette.types import Scope

from ehr_gateway.gql.fast_reads import FastReads
from ehr_gateway.resolvers.context import Context
from ehr_gateway.server.state import Gateway


class FastPath:
    def __init__(self, gateway: Gateway, reads: FastReads) -> None:
        self._gateway = gateway
        self._reads = reads

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

        return await self._reads.answer(body, context_of)
